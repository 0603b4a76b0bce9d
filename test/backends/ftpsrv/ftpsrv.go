// Package ftpsrv starts a real vsftpd for tests: on 127.0.0.1 on a free
// port with a passive port range on loopback, serving the test account of
// package unixuser, plain FTP and explicit FTPS (AUTH TLS) with a
// throw-away self-signed certificate. It is stopped when the test ends;
// Kill and Start simulate a crash and a restart on the same port.
//
// vsftpd comes from Debian's package (test/backends/sftp.sh install);
// when it or the account is missing the test is skipped, except when
// CI=true or FERRY_REQUIRE_BACKENDS=1, where it fails.
package ftpsrv

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/proc"
	"github.com/ferryml/ferry/test/backends/unixuser"
)

// Vsftpd is the server binary.
const Vsftpd = "/usr/sbin/vsftpd"

// passivePorts is the size of the passive port range: one port per
// transfer in flight.
const passivePorts = 64

// Server is one running vsftpd.
type Server struct {
	Host     string // "127.0.0.1"
	Port     int
	User     string
	Password string
	// Root is a directory User owns, for the store.
	Root string
	// CAFile is the PEM certificate the server presents over TLS (self
	// signed, so it is its own CA).
	CAFile string

	dir     string
	conf    string
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start starts vsftpd for the test. Extra lines are appended to its
// configuration (such as "idle_session_timeout=2"); they must not repeat
// a setting Start makes.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := os.Stat(Vsftpd); err != nil {
		unixuser.Skip(t, Vsftpd+" not installed; run test/backends/sftp.sh install")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		unixuser.Skip(t, "openssl not installed; run test/backends/sftp.sh install")
	}
	a := unixuser.Prepare(t)
	s := &Server{Host: "127.0.0.1", User: a.Name, Password: a.Password}
	s.dir = filepath.Join(filepath.Dir(a.Base), "vsftpd")
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Root = a.Dir(t)
	empty := filepath.Join(s.dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	s.CAFile = filepath.Join(s.dir, "cert.pem")
	keyFile := filepath.Join(s.dir, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
		"-keyout", keyFile, "-out", s.CAFile).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v: %s", err, out)
	}
	userlist := filepath.Join(s.dir, "userlist")
	if err := os.WriteFile(userlist, []byte(s.User+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Port, err = proc.FreePort(); err != nil {
		t.Fatal(err)
	}
	pasvMin := passiveRange()
	s.logPath = filepath.Join(s.dir, "vsftpd.log")
	s.conf = filepath.Join(s.dir, "vsftpd.conf")
	conf := strings.Join([]string{
		"listen=YES",
		"listen_ipv6=NO",
		"listen_address=" + s.Host,
		fmt.Sprintf("listen_port=%d", s.Port),
		"background=NO",
		"anonymous_enable=NO",
		"local_enable=YES",
		"write_enable=YES",
		"local_umask=022",
		"pasv_enable=YES",
		"pasv_address=" + s.Host,
		fmt.Sprintf("pasv_min_port=%d", pasvMin),
		fmt.Sprintf("pasv_max_port=%d", pasvMin+passivePorts-1),
		"connect_from_port_20=NO",
		"seccomp_sandbox=NO",
		"isolate=NO",
		"isolate_network=NO",
		"secure_chroot_dir=" + empty,
		"userlist_enable=YES",
		"userlist_deny=NO",
		"userlist_file=" + userlist,
		"pam_service_name=vsftpd",
		// Dotfiles are objects too (".hidden" is a legal key).
		"force_dot_files=YES",
		"max_clients=0",
		"max_per_ip=0",
		"xferlog_enable=YES",
		"vsftpd_log_file=" + s.logPath,
		"dual_log_enable=NO",
		"ssl_enable=YES",
		"rsa_cert_file=" + s.CAFile,
		"rsa_private_key_file=" + keyFile,
		"allow_anon_ssl=NO",
		// Plain FTP and explicit FTPS on the same port.
		"force_local_logins_ssl=NO",
		"force_local_data_ssl=NO",
		// vsftpd's default, kept: data connections must resume the
		// control connection's TLS session (the driver's session cache).
		"require_ssl_reuse=YES",
		"ssl_ciphers=HIGH",
	}, "\n") + "\n" + strings.Join(append(extra, ""), "\n")
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil && len(b) > 0 {
				t.Logf("vsftpd log (last 4 KiB):\n%s", proc.Tail(b, 4096))
			}
		}
	})
	return s
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return fmt.Sprintf("%s:%d", s.Host, s.Port) }

// Start (re)starts vsftpd on the same port and waits until it greets.
// It is a no-op while vsftpd runs.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	logPath := filepath.Join(s.dir, "stderr.log")
	cmd := exec.Command(Vsftpd, s.conf)
	exited, err := proc.Spawn("vsftpd", cmd, logPath)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited
	err = proc.WaitReady("vsftpd", s.Addr(), exited, logPath, 20*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		buf := make([]byte, 3)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, rerr := c.Read(buf)
		return rerr == nil && string(buf) == "220"
	})
	if errors.Is(err, proc.ErrExited) {
		s.cmd = nil
	}
	return err
}

// Kill stops vsftpd and every session it serves abruptly, as a crash
// would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	unixuser.KillTree(s.cmd.Process.Pid)
	<-s.exited
	s.cmd = nil
}

// Pause freezes vsftpd and every session it serves (SIGSTOP): the server
// keeps its connections open but moves no data and answers nothing, as a
// hung server or a dead link would. Resume thaws it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume thaws a server frozen by Pause (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		unixuser.SignalTree(s.cmd.Process.Pid, sig)
	}
}

// passiveRange picks the first port of a range of passivePorts ports
// that are free now (vsftpd binds one per transfer, and retries another
// when one is taken).
func passiveRange() int {
	for {
		base := 20000 + rand.IntN(30000)
		ok := true
		for p := base; p < base+passivePorts; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
}
