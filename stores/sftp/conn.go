package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// keepaliveInterval is how often an idle or busy connection proves the
// server is still there; a server that does not answer within it is
// treated as gone, so a transfer to a host that vanished without closing
// the TCP connection fails instead of hanging.
const keepaliveInterval = 20 * time.Second

// conn is one SSH connection with its SFTP session.
type conn struct {
	ssh         *ssh.Client
	sftp        *sftp.Client
	posixRename bool
	packet      int           // bytes of data per SFTP read or write request
	dead        chan struct{} // closed when the connection has ended
	stop        chan struct{}
	closeOnce   sync.Once
}

// isDead reports whether the connection has ended.
func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.sftp.Close()
		c.ssh.Close()
	})
}

// packetSize is the request payload for a connection: configured when
// set, else OpenSSHMaxPacket for an OpenSSH server (banner
// "SSH-2.0-OpenSSH_...") that advertises limits@openssh.com, whose limits
// are that size since the extension exists (8.7), else BasePacket. Larger
// requests cut the per-request work of pkg/sftp and Ferry's CPU per GiB
// (stores/sftp/NOTES.md has the figures); a server that does not say it
// takes them gets the size every server must.
func packetSize(configured int, banner string, sc interface {
	HasExtension(string) (string, bool)
}) int {
	if configured > 0 {
		return configured
	}
	if _, ok := sc.HasExtension("limits@openssh.com"); ok && strings.HasPrefix(banner, "SSH-2.0-OpenSSH_") {
		return OpenSSHMaxPacket
	}
	return BasePacket
}

// errUnknownHost and errHostKeyMismatch classify host key failures; the
// message names the fix.
var (
	errUnknownHost     = errors.New("host key unknown")
	errHostKeyMismatch = errors.New("host key mismatch")
	errAuth            = errors.New("authentication failed")
)

// dialer makes connections for one Config.
type dialer struct {
	cfg      Config
	hostKeys ssh.HostKeyCallback
	algos    []string
}

func newDialer(cfg Config) (*dialer, error) {
	d := &dialer{cfg: cfg}
	if cfg.InsecureIgnoreHostKey {
		d.hostKeys = ssh.InsecureIgnoreHostKey()
		return d, nil
	}
	var files []string
	for _, f := range cfg.KnownHosts {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		d.hostKeys = func(host string, _ net.Addr, key ssh.PublicKey) error {
			return fmt.Errorf("%w: no known_hosts file (looked for %s) to check %s's %s key (SHA256 %s); add it with `ssh-keyscan -p %d %s >> ~/.ssh/known_hosts`, or set %s=true to skip the check (throw-away servers only)",
				errUnknownHost, strings.Join(cfg.KnownHosts, ", "), host, key.Type(), ssh.FingerprintSHA256(key), cfg.Port, cfg.Host, EnvInsecureIgnoreHostKey)
		}
		return d, nil
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts %s: %w", strings.Join(files, ", "), err)
	}
	d.hostKeys = func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("%w: %s's %s key (SHA256 %s) is not in %s; add it with `ssh-keyscan -p %d %s >> ~/.ssh/known_hosts` after checking the fingerprint, or set %s=true to skip the check (throw-away servers only)",
					errUnknownHost, host, key.Type(), ssh.FingerprintSHA256(key), strings.Join(files, ", "), cfg.Port, cfg.Host, EnvInsecureIgnoreHostKey)
			}
			return fmt.Errorf("%w: %s presented a %s key (SHA256 %s) that differs from the one in %s:%d: someone may be intercepting the connection, or the server's key changed",
				errHostKeyMismatch, host, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line)
		}
		return err
	}
	d.algos = knownAlgorithms(cb, cfg.Addr())
	return d, nil
}

// knownAlgorithms lists the host key algorithms known_hosts holds for
// addr, so the handshake asks the server for a key it can check (by
// default the server picks one, maybe a type known_hosts does not hold
// for it, and the check fails). The keys are found by checking a random
// key: the mismatch error lists the known ones.
func knownAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// authMethods returns the ways to log in, in the order tried: the URI's
// password, then keys from files and the agent. The agent connection, if
// any, is returned for closing after the handshake.
func (d *dialer) authMethods() ([]ssh.AuthMethod, net.Conn) {
	var methods []ssh.AuthMethod
	if d.cfg.HasPassword {
		pw := d.cfg.Password
		methods = append(methods, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	var signers []ssh.Signer
	for _, f := range d.cfg.IdentityFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			continue // passphrase-protected: the agent may hold it
		}
		signers = append(signers, s)
	}
	var agentConn net.Conn
	if d.cfg.UseAgent {
		if c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK")); err == nil {
			agentConn = c
			if as, err := agent.NewClient(c).Signers(); err == nil {
				signers = append(signers, as...)
			}
		}
	}
	if len(signers) > 0 {
		// Keys before the password when the URI has none; after it
		// otherwise, so that many agent keys cannot use up the server's
		// MaxAuthTries before the password is tried.
		pk := ssh.PublicKeys(signers...)
		if d.cfg.HasPassword {
			methods = append(methods, pk)
		} else {
			methods = append([]ssh.AuthMethod{pk}, methods...)
		}
	}
	return methods, agentConn
}

// dial connects, authenticates and starts the SFTP subsystem.
func (d *dialer) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	methods, agentConn := d.authMethods()
	if agentConn != nil {
		defer agentConn.Close()
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("%w: no password in the URI, no usable key in %s and no ssh-agent",
			errAuth, strings.Join(d.cfg.IdentityFiles, ", "))
	}
	var nd net.Dialer
	tcp, err := nd.DialContext(ctx, "tcp", d.cfg.Addr())
	if err != nil {
		return nil, err
	}
	// The handshake ignores ctx: a deadline (and closing on cancel)
	// bounds it.
	if dl, ok := ctx.Deadline(); ok {
		_ = tcp.SetDeadline(dl)
	}
	stopWatch := context.AfterFunc(ctx, func() { tcp.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(tcp, d.cfg.Addr(), &ssh.ClientConfig{
		User:              d.cfg.User,
		Auth:              methods,
		HostKeyCallback:   d.hostKeys,
		HostKeyAlgorithms: d.algos,
		Timeout:           d.cfg.DialTimeout,
	})
	if !stopWatch() || err != nil {
		tcp.Close()
		if err == nil {
			err = ctx.Err()
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			err = fmt.Errorf("%w as %q on %s: %w", errAuth, d.cfg.User, d.cfg.Addr(), err)
		}
		return nil, err
	}
	_ = tcp.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(d.cfg.RequestsInFlight), // New defaulted it
	)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("starting the sftp subsystem: %w", err)
	}
	packet := packetSize(d.cfg.MaxPacket, string(client.ServerVersion()), sc2)
	if packet != BasePacket {
		// Only sets the size the client cuts reads and writes into.
		_ = sftp.MaxPacketUnchecked(packet)(sc2)
	}
	c := &conn{ssh: client, sftp: sc2, packet: packet, dead: make(chan struct{}), stop: make(chan struct{})}
	_, c.posixRename = sc2.HasExtension("posix-rename@openssh.com")
	go func() { _ = client.Wait(); close(c.dead) }()
	go c.keepalive()
	return c, nil
}

// keepalive closes the connection when the server stops answering.
func (c *conn) keepalive() {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.dead:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			_, _, _ = c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
		case <-c.stop:
			return
		case <-time.After(keepaliveInterval):
			c.ssh.Close()
			return
		}
	}
}
