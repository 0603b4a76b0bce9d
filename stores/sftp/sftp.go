// Package sftp is the SFTP store driver (sftp://[user[:password]@]host[:port]/path)
// on github.com/pkg/sftp over golang.org/x/crypto/ssh.
//
// Logging in follows upstream MLflow's pysftp: the URI's user, password
// and port, then ~/.ssh/config (Host aliases, HostName, User, Port,
// IdentityFile), keys from files and the ssh-agent. Unlike pysftp, the
// server's host key is checked against known_hosts by default (see
// EnvInsecureIgnoreHostKey for the opt-out).
//
// Uploads stream into a hidden temporary file beside the target
// (".ferry-upload-*", never listed) that is renamed over it at the end,
// with posix-rename@openssh.com where the server offers it, so readers see
// the old object or the whole new one. Connections come from a bounded
// pool shared by all requests; a connection that breaks is discarded and
// an operation that had not started moving data is retried once on a new
// one, so a restarted server is used again without restarting Ferry.
package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/connpool"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

func init() {
	stores.Register("sftp", func(ctx context.Context, u *url.URL) (stores.Store, error) {
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

// idleTimeout drops pooled connections idle that long: servers and
// firewalls drop idle sessions anyway.
const idleTimeout = 5 * time.Minute

// Store is a directory on an SFTP server used as an artifact store.
type Store struct {
	cfg  Config
	root string
	pool *connpool.Pool[*conn]
	log  *slog.Logger
	// budget shares cfg.RequestsInFlight among concurrent transfers.
	budget *inFlightBudget

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
			return c.sftp.RemoveDirectory(s.remote(o.Key))
		}
		return c.sftp.Remove(s.remote(o.Key))
	}, func(err error) bool { return c.isDead() || connectionLost(err) })
}

var _ stores.Store = (*Store)(nil)

// New connects to the server once, to fail early on a wrong host,
// credentials or host key. A missing root directory is made by the first
// upload, not here: opening a store only to list it writes nothing.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.RequestsInFlight < 1 {
		cfg.RequestsInFlight = DefaultRequestsInFlight
	}
	d, err := newDialer(cfg)
	if err != nil {
		return nil, fmt.Errorf("sftp store %s@%s: %w", cfg.User, cfg.Addr(), classify(err))
	}
	s := &Store{
		cfg:    cfg,
		root:   strings.TrimSuffix(cfg.Root, "/"),
		log:    slog.New(slog.DiscardHandler),
		budget: &inFlightBudget{total: cfg.RequestsInFlight},
	}
	if s.root == "" {
		s.root = "/"
	}
	s.pool = connpool.New(cfg.MaxConnections, idleTimeout, d.dial, (*conn).close)
	err = s.with(ctx, "open store", "", always, func(c *conn) error {
		fi, err := c.sftp.Stat(s.root)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory: %w", s.root, stores.ErrInvalidKey)
		}
		return nil
	})
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("sftp store %s@%s:%s: %w", cfg.User, cfg.Addr(), s.root, err)
	}
	return s, nil
}

// DriverName implements stores.Driver.
func (s *Store) DriverName() string { return "sftp" }

// SetLogger sets the logger for background failures (a temporary file
// that could not be removed).
func (s *Store) SetLogger(l *slog.Logger) { s.log = l }

// Close closes the pooled connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Config is the configuration the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// remote turns a clean key into the server path.
func (s *Store) remote(key string) string {
	if key == "" {
		return s.root
	}
	if s.root == "/" {
		return "/" + key
	}
	return s.root + "/" + key
}

// with runs fn on a pooled connection. A connection that fn finds broken
// is discarded (with its idle siblings, which the same server restart has
// most likely broken too); when the connection had been idle in the pool
// and retry says so, fn runs once more on a newly dialled one.
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
		if err != nil && (pc.C.isDead() || connectionLost(err)) {
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

// always lets with retry: the operation can be repeated.
func always() bool { return true }

// fail wraps err for key with the right sentinel. The key is relative to
// the store root; the server, user and root are not repeated.
func (s *Store) fail(op, key string, err error) error {
	return fmt.Errorf("sftp %s %q: %w", op, key, classify(err))
}

// reserved reports a key with a segment named like an upload in progress.
func reserved(key string) bool {
	return strings.HasPrefix(key, TempPrefix) || strings.Contains(key, "/"+TempPrefix)
}

// Stat implements stores.Store.
func (s *Store) Stat(ctx context.Context, key string) (stores.Entry, error) {
	if reserved(key) {
		return stores.Entry{}, fmt.Errorf("stat %q: %w", key, stores.ErrNotFound)
	}
	var e stores.Entry
	err := s.with(ctx, "stat", key, always, func(c *conn) error {
		fi, err := c.sftp.Stat(s.remote(key))
		if key == "" && errors.Is(err, fs.ErrNotExist) {
			// The root exists for clients before the first upload makes it.
			e = stores.Entry{IsDir: true}
			return nil
		}
		if err != nil {
			return err
		}
		e = entry(key, fi)
		return nil
	})
	return e, err
}

// List implements stores.Store. The whole directory is read, sorted and
// cut into the page asked for (SFTP has no listing that starts after a
// name).
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
		p := s.remote(dir)
		infos, err := c.sftp.ReadDir(p)
		if err != nil {
			if connectionLost(err) || c.isDead() {
				return err
			}
			// Missing, or a file: MLflow lists either as empty.
			fi, serr := c.sftp.Stat(p)
			if serr != nil && errors.Is(serr, fs.ErrNotExist) || serr == nil && !fi.IsDir() {
				return nil
			}
			return err
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
		for _, fi := range infos {
			n := fi.Name()
			if n == "." || n == ".." || n == "" || strings.HasPrefix(n, TempPrefix) {
				continue
			}
			key := stores.JoinKey(dir, n)
			if page.After != "" && key <= page.After {
				continue
			}
			if len(out.Entries) == limit {
				out.NextAfter = out.Entries[len(out.Entries)-1].Key
				break
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				// Listed as what the link points to; a dangling link is
				// skipped, as the local driver does.
				target, err := c.sftp.Stat(p + "/" + n)
				if err != nil {
					if connectionLost(err) {
						return err
					}
					continue
				}
				fi = target
			}
			out.Entries = append(out.Entries, entry(key, fi))
		}
		return nil
	})
	return out, err
}

// Open implements stores.Store. The returned reader keeps its connection
// until closed.
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
		if pc.C.isDead() || connectionLost(err) {
			pc.Discard()
			s.pool.DropIdle()
			if pc.Reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
		} else {
			pc.Release()
		}
		if errors.Is(err, stores.ErrIsDir) || errors.Is(err, stores.ErrInvalidRange) {
			return nil, e, err
		}
		return nil, e, s.fail("open", key, err)
	}
}

func (s *Store) open(pc *connpool.Conn[*conn], key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	c := pc.C
	f, err := c.sftp.Open(s.remote(key))
	if err != nil {
		return nil, stores.Entry{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, stores.Entry{}, err
	}
	e := entry(key, fi)
	if fi.IsDir() {
		f.Close()
		return nil, e, fmt.Errorf("open %s: %w", key, stores.ErrIsDir)
	}
	if offset < 0 || offset > e.Size || (offset == e.Size && e.Size > 0) {
		f.Close()
		return nil, e, fmt.Errorf("open %s at %d of %d: %w", key, offset, e.Size, stores.ErrInvalidRange)
	}
	if length < 0 || length > e.Size-offset {
		length = e.Size - offset
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, e, err
	}
	return &reader{s: s, pc: pc, f: f, key: key, left: length}, e, nil
}

// fileHandle is what reader needs of *sftp.File.
type fileHandle interface {
	io.Reader
	io.WriterTo
	io.Closer
}

// reader streams a byte range of a remote file and returns its
// connection to the pool on Close.
type reader struct {
	s      *Store
	pc     *connpool.Conn[*conn]
	f      fileHandle
	key    string
	left   int64
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
	n, err := r.f.Read(p)
	r.left -= int64(n)
	if err == io.EOF {
		if r.left > 0 {
			// The file shrank under us: a replacement renamed over it
			// does not do that, a truncation in place does.
			return n, r.readErr(io.ErrUnexpectedEOF)
		}
		return n, io.EOF
	}
	if err != nil {
		return n, r.readErr(err)
	}
	return n, nil
}

// WriteTo uses the library's pipelined reads (many requests in flight),
// which is what makes a download fast on a link with latency.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if r.left <= 0 {
		return 0, nil
	}
	lw := &limitWriter{w: w, left: r.left}
	_, end := r.s.budget.begin(r.pc.C)
	n, err := r.f.WriteTo(lw)
	end()
	r.left -= n
	switch {
	case errors.Is(err, errLimitReached) || (err == nil && r.left == 0):
		return n, nil
	case err == nil:
		return n, r.readErr(io.ErrUnexpectedEOF)
	case lw.werr != nil:
		return n, err // the client went away: not the store's fault
	}
	return n, r.readErr(err)
}

func (r *reader) readErr(err error) error {
	if connectionLost(err) || r.pc.C.isDead() {
		r.broken = true
	}
	return r.s.fail("read", r.key, err)
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.f.Close()
	if r.broken || r.pc.C.isDead() || (err != nil && connectionLost(err)) {
		r.pc.Discard()
		r.s.pool.DropIdle()
		return nil
	}
	r.pc.Release()
	return nil
}

var errLimitReached = errors.New("range complete")

// limitWriter passes on the first left bytes and then stops the copy.
type limitWriter struct {
	w    io.Writer
	left int64
	werr error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errLimitReached
	}
	stop := false
	if int64(len(p)) > l.left {
		p = p[:l.left]
		stop = true
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	if err != nil {
		l.werr = err
		return n, err
	}
	if stop || l.left == 0 {
		return n, errLimitReached
	}
	return n, nil
}

// Put implements stores.Store: temporary file, rename.
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

	body := &countingReader{r: stores.ContextReader(ctx, r), size: size}
	// Retried on a fresh connection only while no byte of the body has
	// been read: after that the body cannot be replayed.
	return s.with(ctx, "put", key, func() bool { return body.n == 0 }, func(c *conn) error {
		tmpKey, f, made, err := s.createTemp(c, dir)
		created = append(created, made...)
		if err != nil {
			return err
		}
		tmp := s.remote(tmpKey)
		done := false
		defer func() {
			if !done {
				f.Close()
				if rerr := c.sftp.Remove(tmp); rerr != nil {
					if c.isDead() || connectionLost(rerr) {
						s.left.Add(leftovers.Orphan{Key: tmpKey})
					} else {
						s.log.Warn("sftp: could not remove a failed upload's temporary file", "path", tmp, "err", rerr)
					}
				}
			}
		}()
		_, end := s.budget.begin(c)
		n, err := f.ReadFrom(body)
		end()
		if body.err != nil {
			return fmt.Errorf("after %d bytes: %w", body.n, body.err)
		}
		if err != nil {
			return err
		}
		if size >= 0 && n != size {
			if !body.eof {
				// The body did not end, yet pkg/sftp stopped writing without an
				// error: it does that when the connection dies under it (seen
				// under load with sshd killed mid-upload). Not the client's fault.
				return fmt.Errorf("sftp stopped writing after %d of %d bytes: %w", n, size, stores.ErrUnavailable)
			}
			return fmt.Errorf("got %d of %d bytes: %w", n, size, stores.ErrIncomplete)
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		target := s.remote(key)
		if fi, err := c.sftp.Lstat(target); err == nil && fi.IsDir() {
			return fmt.Errorf("put %s: %w", key, stores.ErrIsDir)
		}
		if err := s.rename(c, tmp, target); err != nil {
			return err
		}
		done, committed = true, true
		return nil
	})
}

// rename moves tmp over target: atomically with posix-rename@openssh.com;
// otherwise SFTPv3's rename, which refuses an existing target, so the
// target is removed first and readers may briefly find nothing there.
func (s *Store) rename(c *conn, tmp, target string) error {
	if c.posixRename {
		return c.sftp.PosixRename(tmp, target)
	}
	err := c.sftp.Rename(tmp, target)
	if err == nil {
		return nil
	}
	if _, serr := c.sftp.Lstat(target); serr != nil {
		return err
	}
	if rerr := c.sftp.Remove(target); rerr != nil {
		return err
	}
	return c.sftp.Rename(tmp, target)
}

// countingReader counts the bytes read and keeps r's own error apart
// from the library's write errors.
type countingReader struct {
	r    io.Reader
	size int64 // the announced length, or -1
	n    int64
	err  error
	eof  bool // r ended (io.EOF)
}

// Size reports the announced length (-1 when unknown). pkg/sftp's
// File.ReadFrom pipelines its writes (up to RequestsInFlight packets
// outstanding, as OpenSSH's sftp does) only for a reader that tells its
// length this way, or -1; without it, it waits for each 32 KiB write's
// answer before sending the next, a round trip per packet. The value is
// a hint: the copy still ends at the body's EOF, and Put compares the
// count with size afterwards.
func (c *countingReader) Size() int64 { return c.size }

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	} else if err != nil {
		c.err = err
	}
	return n, err
}

// createTemp makes dir (recording the directories it created, deepest
// first) and creates a temporary file in it. A concurrent failed upload
// may remove a directory between the two steps, so that is retried.
func (s *Store) createTemp(c *conn, dir string) (tmpKey string, f interface {
	io.ReaderFrom
	io.Closer
}, created []string, err error) {
	for attempt := 1; ; attempt++ {
		made, err := s.mkdirs(c, dir)
		created = append(created, made...)
		if err == nil {
			tmpKey = stores.JoinKey(dir, TempPrefix+randomSuffix())
			file, err2 := c.sftp.OpenFile(s.remote(tmpKey), os.O_WRONLY|os.O_CREATE|os.O_EXCL)
			if err2 == nil {
				return tmpKey, file, created, nil
			}
			err = err2
		}
		if connectionLost(err) || c.isDead() || !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return "", nil, created, err
		}
	}
}

// mkdirs makes dir and its missing parents and returns the ones it made,
// deepest first. A parent that is a file makes the key invalid.
func (s *Store) mkdirs(c *conn, dir string) ([]string, error) {
	if dir == "" {
		return nil, c.sftp.MkdirAll(s.root)
	}
	var missing []string
	p := dir
	for ; ; p, _ = splitKey(p) {
		if p == "" {
			// Nothing below the root exists: make sure the root does.
			if err := c.sftp.MkdirAll(s.root); err != nil {
				return nil, err
			}
			break
		}
		fi, err := c.sftp.Stat(s.remote(p))
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%w: %q is an object, not a directory", stores.ErrInvalidKey, p)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, p)
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := c.sftp.Mkdir(s.remote(d)); err != nil {
			// Another upload may have made it meanwhile.
			if fi, serr := c.sftp.Stat(s.remote(d)); serr == nil && fi.IsDir() {
				continue
			} else if serr == nil {
				return made, fmt.Errorf("%w: %q is an object, not a directory", stores.ErrInvalidKey, d)
			}
			return made, err
		}
		made = append([]string{d}, made...)
	}
	return made, nil
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
		rest, err := s.left.RemoveDirs(remove, func(d string) error { return c.sftp.RemoveDirectory(s.remote(d)) }, func(err error) bool { return c.isDead() || connectionLost(err) })
		remove = rest
		return err
	})
	if err != nil {
		s.left.AddDirs(remove)
	}
}

// Delete implements stores.Store: an object, or a directory recursively.
// Deleting the root empties it but keeps the directory.
func (s *Store) Delete(ctx context.Context, key string) error {
	if reserved(key) {
		return nil
	}
	return s.with(ctx, "delete", key, always, func(c *conn) error {
		p := s.remote(key)
		if key == "" {
			return s.removeContents(ctx, c, p)
		}
		fi, err := c.sftp.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !fi.IsDir() {
			return ignoreMissing(c.sftp.Remove(p))
		}
		if err := s.removeContents(ctx, c, p); err != nil {
			return err
		}
		return ignoreMissing(c.sftp.RemoveDirectory(p))
	})
}

// removeContents removes everything below the directory p, depth first.
// Entries that vanish meanwhile are fine.
func (s *Store) removeContents(ctx context.Context, c *conn, p string) error {
	infos, err := c.sftp.ReadDir(p)
	if err != nil {
		return ignoreMissing(err)
	}
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := fi.Name()
		if n == "." || n == ".." {
			continue
		}
		child := p + "/" + n
		if fi.IsDir() {
			if err := s.removeContents(ctx, c, child); err != nil {
				return err
			}
			if err := ignoreMissing(c.sftp.RemoveDirectory(child)); err != nil {
				return err
			}
			continue
		}
		if err := ignoreMissing(c.sftp.Remove(child)); err != nil {
			return err
		}
	}
	return nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func entry(key string, fi fs.FileInfo) stores.Entry {
	e := stores.Entry{Key: key, IsDir: fi.IsDir(), ModTime: fi.ModTime()}
	if !e.IsDir {
		e.Size = fi.Size()
	}
	return e
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
