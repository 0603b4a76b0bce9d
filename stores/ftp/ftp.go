// Package ftp is the FTP store driver (ftp://[user[:password]@]host[:port]/path)
// on github.com/jlaffaye/ftp: passive mode (EPSV, then PASV), explicit or
// implicit FTPS when asked for (see EnvTLS), MLSD listings where the
// server offers them and "LIST -a" otherwise.
//
// Uploads stream into a hidden temporary file beside the target
// (".ferry-upload-*", never listed) that is renamed over it (RNFR/RNTO) at
// the end, so readers see the old object or the whole new one on servers
// whose rename replaces atomically (vsftpd, ProFTPD and Pure-FTPd use
// rename(2)). FTP carries one transfer per control connection, so every
// operation checks a connection out of a bounded pool; a connection that
// breaks is discarded and an operation that had not started moving data is
// retried once on a new one, so a restarted server is used again without
// restarting Ferry.
//
// Unlike upstream MLflow, whose FTP delete raises "Not implemented yet",
// Delete works, recursively for directories.
package ftp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/connpool"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

func init() {
	stores.Register("ftp", func(ctx context.Context, u *url.URL) (stores.Store, error) {
		cfg, err := ConfigFromURL(u)
		if err != nil {
			return nil, err
		}
		return New(ctx, cfg)
	})
}

// TempPrefix starts the name of every upload in progress. Listings hide
// such names and keys using them are refused, so they are never objects.
const TempPrefix = ".ferry-upload-"

// defaultPageSize is the listing page size when the caller sets none.
const defaultPageSize = 1000

// idleTimeout drops pooled connections idle that long (vsftpd's own idle
// timeout is 300 s).
const idleTimeout = 2 * time.Minute

// conn is one logged-in control connection.
type conn struct {
	sc  *ftp.ServerConn
	raw net.Conn
	// data is the plain TCP data connection the library last dialled on
	// it (nil over TLS), so that a download can hand the socket itself
	// to the destination's ReadFrom: the kernel then splices the bytes
	// from socket to socket instead of copying them through Ferry.
	data *net.TCPConn
}

// noop is the pool's keep-alive: a NOOP, bounded by the timeout (at most
// 10 s: a server that slow is treated as gone).
func (s *Store) noop(c *conn) error {
	_ = c.raw.SetDeadline(time.Now().Add(min(s.cfg.Timeout, 10*time.Second)))
	err := c.sc.NoOp()
	_ = c.raw.SetDeadline(time.Time{})
	if err != nil {
		s.log.Debug("ftp: keep-alive failed; connection closed", "addr", s.cfg.Addr(), "err", err)
	}
	return err
}

func (c *conn) close() {
	_ = c.raw.SetDeadline(time.Now().Add(2 * time.Second))
	_ = c.sc.Quit()
	_ = c.raw.Close()
}

// Store is a directory on an FTP server used as an artifact store.
type Store struct {
	cfg  Config
	root string
	pool *connpool.Pool[*conn]
	log  *slog.Logger
	// listHidden is set when the server lacks MLSD: its LIST then needs
	// "-a" to show dotfiles (".hidden" is a legal key).
	listHidden bool

	// dials counts the control connections made (tests read it).
	dials atomic.Int64

	mu sync.Mutex
	// left tracks the directories uploads in progress use and what failed
	// uploads could not remove (see stores/internal/leftovers).
	left leftovers.Tracker
}

// cleanOrphans removes the leftovers of failed uploads over c, which has
// just served an operation.
func (s *Store) cleanOrphans(c *conn) {
	s.left.Clean(func(o leftovers.Orphan) error {
		if o.Dir {
			return c.sc.RemoveDir(s.remote(o.Key))
		}
		return c.sc.Delete(s.remote(o.Key))
	}, connectionLost)
}

var _ stores.Store = (*Store)(nil)

// New logs in once, to fail early on a wrong host or credentials. A
// missing root directory is made by the first upload, not here: opening a
// store only to list it writes nothing.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.MaxConnections < 1 {
		cfg.MaxConnections = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	s := &Store{
		cfg:  cfg,
		root: strings.TrimSuffix(cfg.Root, "/"),
		log:  slog.New(slog.DiscardHandler),
	}
	if s.root == "" {
		s.root = "/"
	}
	// Probe for MLSD with a first connection; later ones are dialled
	// knowing the answer.
	first, err := s.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("ftp store %s@%s: %w", cfg.User, cfg.Addr(), classify(err))
	}
	s.listHidden = !first.sc.IsTimePreciseInList()
	first.close()
	s.pool = connpool.New(cfg.MaxConnections, idleTimeout, s.dial, (*conn).close)
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	s.pool.SetKeepAlive(cfg.KeepAlive, s.noop)
	err = s.with(ctx, "open store", "", always, func(c *conn) error {
		k, _, err := s.stat(c, s.root)
		if err == nil && k == file {
			return fmt.Errorf("%s is not a directory: %w", s.root, stores.ErrInvalidKey)
		}
		return err
	})
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("ftp store %s@%s:%s: %w", cfg.User, cfg.Addr(), s.root, err)
	}
	return s, nil
}

func (s *Store) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var raw net.Conn
	first := true
	c := &conn{}
	nd := &net.Dialer{Timeout: s.cfg.Timeout}
	opts := []ftp.DialOption{
		ftp.DialWithContext(ctx),
		ftp.DialWithShutTimeout(s.cfg.Timeout),
		ftp.DialWithForceListHidden(s.listHidden),
		// The first dial is the control connection; later ones are data
		// connections, which outlive ctx. With a dial function of its
		// own the library leaves TLS on data connections (and on an
		// implicit-TLS control connection) to it.
		ftp.DialWithDialFunc(func(network, address string) (net.Conn, error) {
			if first {
				first = false
				c, err := nd.DialContext(ctx, network, address)
				if err != nil {
					return nil, err
				}
				raw = c
				if s.cfg.TLS == TLSImplicit {
					return tls.Client(c, s.cfg.TLSConfig), nil
				}
				return c, nil
			}
			d, err := nd.Dial(network, address)
			if err != nil {
				return nil, err
			}
			stalled := &stallConn{Conn: d, timeout: s.cfg.Timeout}
			if s.cfg.TLS == TLSOff {
				c.data, _ = d.(*net.TCPConn)
				return stalled, nil
			}
			// The handshake starts on the first read or write: some
			// servers (proftpd, pure-ftpd) hang on an early one.
			return &tlsData{Conn: tls.Client(stalled, s.cfg.TLSConfig)}, nil
		}),
	}
	switch s.cfg.TLS {
	case TLSExplicit:
		opts = append(opts, ftp.DialWithExplicitTLS(s.cfg.TLSConfig))
	case TLSImplicit:
		opts = append(opts, ftp.DialWithTLS(s.cfg.TLSConfig))
	}
	sc, err := ftp.Dial(s.cfg.Addr(), opts...)
	if err != nil {
		return nil, err
	}
	if err := sc.Login(s.cfg.User, s.cfg.Password); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("login as %q: %w", s.cfg.User, err)
	}
	s.dials.Add(1)
	c.sc, c.raw = sc, raw
	return c, nil
}

// tlsData is a TLS data connection whose Close, after an upload, waits
// for the server to close its side. TLS 1.3 servers send session tickets
// after the handshake; an uploading client never reads them, and closing
// a socket with unread data sends a reset, which makes the server fail
// the transfer (vsftpd: "426 Failure reading network stream").
type tlsData struct {
	*tls.Conn
	read bool
}

func (d *tlsData) Read(p []byte) (int, error) {
	d.read = true
	return d.Conn.Read(p)
}

func (d *tlsData) Close() error {
	if d.read {
		return d.Conn.Close()
	}
	// One bound for the whole close. An upload whose body failed before
	// its first byte has not started the handshake: without one, CloseWrite
	// fails and the wait below would start it and then wait, as the server
	// does, until the deadline (60 s in all per failed upload, before
	// 2026-12-05); closing without one makes vsftpd drop the whole session.
	// So shake hands first (a no-op once done), then wait for the server.
	_ = d.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := d.Conn.Handshake(); err != nil {
		return d.Conn.Close()
	}
	_ = d.Conn.CloseWrite()
	_, _ = io.Copy(io.Discard, io.LimitReader(d.Conn, 1<<20))
	return d.Conn.Close()
}

// DriverName implements stores.Driver.
func (s *Store) DriverName() string { return "ftp" }

// SetLogger sets the logger for background failures.
func (s *Store) SetLogger(l *slog.Logger) { s.log = l }

// Close closes the pooled connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func (s *Store) remote(key string) string {
	if key == "" {
		return s.root
	}
	if s.root == "/" {
		return "/" + key
	}
	return s.root + "/" + key
}

// always lets with retry: the operation can be repeated.
func always() bool { return true }

// with runs fn on a pooled connection. A connection fn finds broken is
// discarded with its idle siblings; when it had been idle in the pool and
// retry says so, fn runs once more on a newly dialled one.
func (s *Store) with(ctx context.Context, op, key string, retry func() bool, fn func(*conn) error) error {
	for attempt := 0; ; attempt++ {
		get := s.pool.Get
		if attempt > 0 {
			get = s.pool.GetFresh
		}
		pc, err := get(ctx)
		if err != nil {
			return s.fail(op, key, err)
		}
		err = fn(pc.C)
		if err != nil && connectionLost(err) {
			pc.Discard()
			s.pool.DropIdle()
			if retry() && pc.Reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return s.fail(op, key, err)
		}
		if err == nil {
			s.cleanOrphans(pc.C)
		}
		pc.Release()
		if err != nil {
			return s.fail(op, key, err)
		}
		return nil
	}
}

func (s *Store) fail(op, key string, err error) error {
	return fmt.Errorf("ftp %s %q: %w", op, key, classify(err))
}

func reserved(key string) bool {
	return strings.HasPrefix(key, TempPrefix) || strings.Contains(key, "/"+TempPrefix)
}

// kind is what a path names on the server.
type kind int

const (
	missing kind = iota
	file
	directory
)

// stat finds what p is: SIZE answers for files only (in binary mode),
// CWD for directories only. Any other failure of both is "missing";
// a lost connection is returned.
func (s *Store) stat(c *conn, p string) (kind, int64, error) {
	size, err := c.sc.FileSize(p)
	if err == nil {
		return file, size, nil
	}
	if connectionLost(err) {
		return missing, 0, err
	}
	if err := c.sc.ChangeDir(p); err != nil {
		if connectionLost(err) {
			return missing, 0, err
		}
		return missing, 0, nil
	}
	return directory, 0, nil
}

// Stat implements stores.Store.
func (s *Store) Stat(ctx context.Context, key string) (stores.Entry, error) {
	if reserved(key) {
		return stores.Entry{}, fmt.Errorf("stat %q: %w", key, stores.ErrNotFound)
	}
	var e stores.Entry
	err := s.with(ctx, "stat", key, always, func(c *conn) error {
		k, size, err := s.stat(c, s.remote(key))
		if err != nil {
			return err
		}
		switch {
		case k == missing && key == "":
			// The root exists for clients before the first upload makes it.
			e = stores.Entry{IsDir: true}
		case k == missing:
			return fmt.Errorf("%q: %w", key, stores.ErrNotFound)
		case k == directory:
			e = stores.Entry{Key: key, IsDir: true}
		default:
			e = stores.Entry{Key: key, Size: size}
			if c.sc.IsGetTimeSupported() {
				if t, err := c.sc.GetTime(s.remote(key)); err == nil {
					e.ModTime = t
				}
			}
		}
		return nil
	})
	return e, err
}

// List implements stores.Store. The directory is entered (CWD, which also
// tells a directory from a file) and listed whole; the page is cut from
// the sorted names.
func (s *Store) List(ctx context.Context, dir string, page stores.ListPage) (stores.Listing, error) {
	if reserved(dir) {
		return stores.Listing{}, nil
	}
	limit := page.Limit
	if limit <= 0 || limit > defaultPageSize {
		limit = defaultPageSize
	}
	var out stores.Listing
	err := s.with(ctx, "list", dir, always, func(c *conn) error {
		out = stores.Listing{}
		entries, ok, err := s.readDir(c, s.remote(dir))
		if err != nil || !ok {
			return err
		}
		for _, fe := range entries {
			key := stores.JoinKey(dir, fe.Name)
			if page.After != "" && key <= page.After {
				continue
			}
			if len(out.Entries) == limit {
				out.NextAfter = out.Entries[len(out.Entries)-1].Key
				break
			}
			e := stores.Entry{Key: key, IsDir: fe.Type == ftp.EntryTypeFolder, ModTime: fe.Time}
			if fe.Type == ftp.EntryTypeLink {
				// Listed as what the link points to; dangling links are
				// skipped.
				k, size, err := s.stat(c, s.remote(key))
				if err != nil {
					return err
				}
				if k == missing {
					continue
				}
				e.IsDir, fe.Size = k == directory, uint64(size)
			}
			if !e.IsDir {
				e.Size = int64(fe.Size)
			}
			out.Entries = append(out.Entries, e)
		}
		return nil
	})
	return out, err
}

// readDir lists the directory p, sorted by name, without ".", ".." and
// uploads in progress; ok is false when p is not a directory.
func (s *Store) readDir(c *conn, p string) (entries []*ftp.Entry, ok bool, err error) {
	if err := c.sc.ChangeDir(p); err != nil {
		if connectionLost(err) {
			return nil, false, err
		}
		return nil, false, nil
	}
	// Listing the current directory: no path for the server to parse
	// (vsftpd reads "LIST -a /a b" as options and a path at the first
	// space).
	all, err := c.sc.List("")
	if err != nil {
		return nil, false, err
	}
	for _, e := range all {
		if e.Name == "." || e.Name == ".." || e.Name == "" || strings.HasPrefix(e.Name, TempPrefix) {
			continue
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, true, nil
}

// Open implements stores.Store: SIZE, then REST and RETR. The reader keeps
// its connection until closed.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	if key == "" {
		return nil, stores.Entry{}, fmt.Errorf("open root: %w", stores.ErrIsDir)
	}
	if reserved(key) {
		return nil, stores.Entry{}, fmt.Errorf("open %q: %w", key, stores.ErrNotFound)
	}
	for attempt := 0; ; attempt++ {
		get := s.pool.Get
		if attempt > 0 {
			get = s.pool.GetFresh
		}
		pc, err := get(ctx)
		if err != nil {
			return nil, stores.Entry{}, s.fail("open", key, err)
		}
		rc, e, err := s.open(pc, key, offset, length)
		if err == nil {
			return rc, e, nil
		}
		if connectionLost(err) {
			pc.Discard()
			s.pool.DropIdle()
			if pc.Reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
		} else {
			pc.Release()
		}
		if errors.Is(err, stores.ErrIsDir) || errors.Is(err, stores.ErrInvalidRange) || errors.Is(err, stores.ErrNotFound) {
			return nil, e, err
		}
		return nil, e, s.fail("open", key, err)
	}
}

func (s *Store) open(pc *connpool.Conn[*conn], key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	c := pc.C
	p := s.remote(key)
	k, size, err := s.stat(c, p)
	if err != nil {
		return nil, stores.Entry{}, err
	}
	e := stores.Entry{Key: key, Size: size, IsDir: k == directory}
	switch k {
	case missing:
		return nil, e, fmt.Errorf("open %q: %w", key, stores.ErrNotFound)
	case directory:
		return nil, e, fmt.Errorf("open %s: %w", key, stores.ErrIsDir)
	}
	if offset < 0 || offset > e.Size || (offset == e.Size && e.Size > 0) {
		return nil, e, fmt.Errorf("open %s at %d of %d: %w", key, offset, e.Size, stores.ErrInvalidRange)
	}
	if length < 0 || length > e.Size-offset {
		length = e.Size - offset
	}
	c.data = nil // set again by the dial RetrFrom makes
	resp, err := c.sc.RetrFrom(p, uint64(offset))
	if err != nil {
		return nil, e, err
	}
	r := &reader{s: s, pc: pc, resp: resp, key: key, left: length, toEnd: offset+length == e.Size}
	if c.data != nil {
		return &splicingReader{reader: r, data: c.data}, e, nil
	}
	return r, e, nil
}

// reader streams a byte range of a RETR and returns the connection on
// Close.
type reader struct {
	s     *Store
	pc    *connpool.Conn[*conn]
	resp  *ftp.Response
	key   string
	left  int64
	toEnd bool // the range ends where the file does
	// broken: the connection failed or the transfer was cut short; its
	// state is unknown, so it is not reused.
	broken bool
	closed bool
}

func (r *reader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.resp.Read(p)
	r.left -= int64(n)
	if err == io.EOF {
		if r.left > 0 {
			r.broken = true
			return n, r.s.fail("read", r.key, io.ErrUnexpectedEOF)
		}
		return n, io.EOF
	}
	if err != nil {
		r.broken = true
		return n, r.s.fail("read", r.key, err)
	}
	return n, nil
}

// stallConn is a data connection on which every read and write must make
// progress within timeout (Config.Timeout): a server that stops sending
// or taking data mid-transfer (hung, stopped, a dead link without a
// reset) fails the transfer, instead of holding the request, its
// goroutine and a pooled connection forever. It sits under TLS for FTPS,
// so every record's I/O is bounded.
type stallConn struct {
	net.Conn
	timeout time.Duration
}

func (c *stallConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *stallConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

// spliceChunk is how much one splice may move before the data
// connection's read deadline is pushed on: the stall bound of a spliced
// download is Config.Timeout per chunk.
const spliceChunk = 4 << 20

// splicingReader is a reader over a plain TCP data connection. Its WriteTo
// offers the socket itself, bounded to the range, to the destination: when
// that is a TCP connection (fasthttp's response writer ends in one), Go's
// ReadFrom splices from socket to socket in the kernel, and Ferry neither
// copies nor touches the bytes. Other destinations get an ordinary copy.
type splicingReader struct {
	*reader
	data *net.TCPConn
}

// WriteTo copies the rest of the range to w. An error is either side's
// (splice cannot tell which); either way the transfer is cut short and the
// connection is not reused.
func (r *splicingReader) WriteTo(w io.Writer) (int64, error) {
	if r.left <= 0 {
		return 0, nil
	}
	// Chunks, so the read deadline moves on as data flows (a stalled
	// server fails within the timeout); each chunk is still spliced.
	var n int64
	var err error
	for r.left > 0 && err == nil {
		_ = r.data.SetReadDeadline(time.Now().Add(r.s.cfg.Timeout))
		var m int64
		m, err = io.Copy(w, &io.LimitedReader{R: r.data, N: min(r.left, spliceChunk)})
		n += m
		r.left -= m
		if m == 0 && err == nil {
			break // the server closed the data connection early
		}
	}
	switch {
	case err != nil:
		r.broken = true
		return n, r.s.fail("copy", r.key, err)
	case r.left > 0: // the server closed the data connection early
		r.broken = true
		return n, r.s.fail("read", r.key, io.ErrUnexpectedEOF)
	}
	return n, nil
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	// Cut short (a range before the end, or the client went away): the
	// server answers 426 or 226 depending on timing, so the control
	// connection is not trusted for reuse.
	if r.left > 0 || !r.toEnd {
		r.broken = true
	}
	err := r.resp.Close()
	if r.broken || err != nil {
		r.pc.Discard()
		return nil
	}
	r.pc.Release()
	return nil
}

// Put implements stores.Store: STOR to a temporary name, RNFR/RNTO.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	dir, base := splitKey(key)
	if base == "" {
		return fmt.Errorf("put: %w: an object needs a name", stores.ErrInvalidKey)
	}
	if reserved(key) {
		return fmt.Errorf("put %q: %w: names starting with %q are reserved for uploads in progress",
			key, stores.ErrInvalidKey, TempPrefix)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	s.left.Begin(dir)
	var created []string
	committed := false
	defer func() { s.endUpload(dir, created, committed) }()

	body := &countingReader{r: stores.ContextReader(ctx, r)}
	return s.with(ctx, "put", key, func() bool { return body.n == 0 && body.err == nil }, func(c *conn) error {
		made, err := s.mkdirs(c, dir)
		created = append(created, made...)
		if err != nil {
			return err
		}
		tmpKey := stores.JoinKey(dir, TempPrefix+randomSuffix())
		tmp := s.remote(tmpKey)
		stored := false
		defer func() {
			if stored && !committed {
				if err := c.sc.Delete(tmp); err != nil {
					if connectionLost(err) {
						s.left.Add(leftovers.Orphan{Key: tmpKey})
					} else {
						s.log.Warn("ftp: could not remove a failed upload's temporary file", "path", tmp, "err", err)
					}
				}
			}
		}()
		err = c.sc.Stor(tmp, body)
		stored = true
		if body.err != nil {
			if err != nil && connectionLost(err) {
				return fmt.Errorf("after %d bytes: %w (and %w)", body.n, body.err, err)
			}
			return fmt.Errorf("after %d bytes: %w", body.n, body.err)
		}
		if err != nil {
			return err
		}
		if size >= 0 && body.n != size {
			return fmt.Errorf("got %d of %d bytes: %w", body.n, size, stores.ErrIncomplete)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		target := s.remote(key)
		if err := c.sc.ChangeDir(target); err == nil {
			return fmt.Errorf("put %s: %w", key, stores.ErrIsDir)
		} else if connectionLost(err) {
			return err
		}
		if err := c.sc.Rename(tmp, target); err != nil {
			return err
		}
		committed = true
		return nil
	})
}

// countingReader counts the bytes read and keeps r's own error apart
// from the connection's.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// copyBufferSize is the size of an upload's writes to the data
// connection. The library copies with io.Copy, which would write
// whatever each read of the HTTP body returned (often a few KiB);
// filling 1 MiB first means few large writes, measured in
// test/bench/sftpftp (see the README).
const copyBufferSize = 1 << 20

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// WriteTo is what io.Copy in the library's STOR uses: it fills the buffer
// before each write (stores.CopyFilled).
func (c *countingReader) WriteTo(w io.Writer) (int64, error) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	return stores.CopyFilled(w, c, *bufp)
}

// mkdirs makes the root and dir below it with their missing parents and
// returns the directories below the root it made, deepest first. A parent
// that is a file makes the key invalid.
func (s *Store) mkdirs(c *conn, dir string) ([]string, error) {
	// Walk up from dir to the first existing directory.
	var missingDirs []string
	p := dir
	for {
		if err := c.sc.ChangeDir(s.remote(p)); err == nil {
			break
		} else if connectionLost(err) {
			return nil, err
		}
		if p == "" {
			break // the root itself is missing: made below
		}
		missingDirs = append(missingDirs, p)
		p, _ = splitKey(p)
	}
	if p == "" && c.sc.ChangeDir(s.root) != nil {
		if err := s.mkdirAbs(c, s.root); err != nil {
			return nil, err
		}
	}
	var made []string
	for i := len(missingDirs) - 1; i >= 0; i-- {
		d := missingDirs[i]
		if err := c.sc.MakeDir(s.remote(d)); err != nil {
			if connectionLost(err) {
				return made, err
			}
			// Made meanwhile by another upload, or a file is in the way.
			if c.sc.ChangeDir(s.remote(d)) == nil {
				continue
			}
			if _, serr := c.sc.FileSize(s.remote(d)); serr == nil {
				return made, fmt.Errorf("%w: %q is an object, not a directory", stores.ErrInvalidKey, d)
			}
			return made, err
		}
		made = append([]string{d}, made...)
	}
	return made, nil
}

// mkdirAbs makes the absolute directory p and its parents.
func (s *Store) mkdirAbs(c *conn, p string) error {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	cur := ""
	if strings.HasPrefix(p, "/") {
		cur = "/"
	}
	for _, part := range parts {
		if part == "" {
			continue
		}
		if cur == "" || cur == "/" {
			cur += part
		} else {
			cur += "/" + part
		}
		if c.sc.ChangeDir(cur) == nil {
			continue
		}
		if err := c.sc.MakeDir(cur); err != nil && c.sc.ChangeDir(cur) != nil {
			return err
		}
	}
	return nil
}

// endUpload undoes s.left.Begin and, after a failed upload, removes the
// directories it created while they are empty and unused by other
// uploads, so a failed Put leaves nothing in listings.
func (s *Store) endUpload(dir string, created []string, committed bool) {
	remove := s.left.End(dir, created, committed)
	if len(remove) == 0 {
		return
	}
	// A fresh context: the request's may be what was cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.with(ctx, "cleanup", dir, always, func(c *conn) error {
		rest, err := s.left.RemoveDirs(remove, func(d string) error { return c.sc.RemoveDir(s.remote(d)) }, connectionLost)
		remove = rest
		return err
	})
	if err != nil {
		s.left.AddDirs(remove)
	}
}

// Delete implements stores.Store: an object, or a directory recursively.
// Deleting the root empties it but keeps the directory. (Upstream raises
// "Not implemented yet".)
func (s *Store) Delete(ctx context.Context, key string) error {
	if reserved(key) {
		return nil
	}
	return s.with(ctx, "delete", key, always, func(c *conn) error {
		p := s.remote(key)
		if key == "" {
			return s.removeContents(ctx, c, p)
		}
		k, _, err := s.stat(c, p)
		switch {
		case err != nil:
			return err
		case k == missing:
			return nil
		case k == file:
			return s.ignoreMissing(c, p, c.sc.Delete(p))
		}
		if err := s.removeContents(ctx, c, p); err != nil {
			return err
		}
		return s.ignoreMissing(c, p, c.sc.RemoveDir(p))
	})
}

// removeContents removes everything below the directory p, depth first,
// uploads in progress included.
func (s *Store) removeContents(ctx context.Context, c *conn, p string) error {
	if err := c.sc.ChangeDir(p); err != nil {
		if connectionLost(err) {
			return err
		}
		return nil
	}
	all, err := c.sc.List("")
	if err != nil {
		return err
	}
	for _, e := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Name == "." || e.Name == ".." || e.Name == "" {
			continue
		}
		child := strings.TrimSuffix(p, "/") + "/" + e.Name
		if e.Type == ftp.EntryTypeFolder {
			if err := s.removeContents(ctx, c, child); err != nil {
				return err
			}
			if err := s.ignoreMissing(c, child, c.sc.RemoveDir(child)); err != nil {
				return err
			}
			continue
		}
		if err := s.ignoreMissing(c, child, c.sc.Delete(child)); err != nil {
			return err
		}
	}
	return nil
}

// ignoreMissing drops a removal's error when p is gone anyway (removed
// concurrently).
func (s *Store) ignoreMissing(c *conn, p string, err error) error {
	if err == nil || connectionLost(err) {
		return err
	}
	if k, _, serr := s.stat(c, p); serr == nil && k == missing {
		return nil
	}
	return err
}

func splitKey(key string) (dir, base string) {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

func randomSuffix() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
