// Package sftpsrv starts a real OpenSSH sshd for tests: on 127.0.0.1 on a
// free port, with a throw-away host key, serving SFTP (internal-sftp) to
// the test account of package unixuser by key and by password. It is
// stopped when the test ends; Kill and Start simulate a crash and a
// restart on the same port and host key.
//
// sshd comes from Debian's openssh-server (test/backends/sftp.sh install);
// when it or the account is missing the test is skipped, except when
// CI=true or FERRY_REQUIRE_BACKENDS=1, where it fails.
package sftpsrv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/proc"
	"github.com/ferryml/ferry/test/backends/unixuser"
)

// Sshd is the server binary.
const Sshd = "/usr/sbin/sshd"

// Server is one running sshd.
type Server struct {
	Host string // "127.0.0.1"
	Port int
	User string
	// Password logs User in.
	Password string
	// KeyFile is an unencrypted private key (OpenSSH format) that logs
	// User in.
	KeyFile string
	// KnownHosts is a known_hosts file that holds the server's host key.
	KnownHosts string
	// Root is a directory User owns, for the store.
	Root string

	account *unixuser.Account
	dir     string
	conf    string
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start starts sshd for the test.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Sshd); err != nil {
		unixuser.Skip(t, Sshd+" not installed; run test/backends/sftp.sh install")
	}
	for _, tool := range []string{"ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			unixuser.Skip(t, tool+" not installed; run test/backends/sftp.sh install")
		}
	}
	a := unixuser.Prepare(t)
	s := &Server{Host: "127.0.0.1", User: a.Name, Password: a.Password, account: a}
	s.dir = filepath.Join(filepath.Dir(a.Base), "sshd")
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Root = a.Dir(t)
	hostKey := filepath.Join(s.dir, "host_ed25519")
	s.KeyFile = filepath.Join(s.dir, "client_ed25519")
	for _, k := range []string{hostKey, s.KeyFile} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry-test", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.KeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(s.dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Port = port
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(hostPub))
	s.KnownHosts = filepath.Join(s.dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%d %s %s\n", s.Host, s.Port, fields[0], fields[1])
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(s.dir, "sshd_config")
	conf := strings.Join([]string{
		fmt.Sprintf("Port %d", s.Port),
		"ListenAddress " + s.Host,
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(s.dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"StrictModes no", // keys live in a temp dir
		"PubkeyAuthentication yes",
		"PasswordAuthentication yes",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PermitRootLogin no",
		"AllowUsers " + s.User,
		"Subsystem sftp internal-sftp",
		"MaxStartups 64:30:128",
		"MaxSessions 64",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	s.logPath = filepath.Join(s.dir, "sshd.log")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil && len(b) > 0 {
				t.Logf("sshd log (last 4 KiB):\n%s", proc.Tail(b, 4096))
			}
		}
	})
	return s
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return fmt.Sprintf("%s:%d", s.Host, s.Port) }

// Start (re)starts sshd on the same port and host key and waits until it
// accepts connections. It is a no-op while sshd runs.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(Sshd, "-D", "-e", "-f", s.conf)
	exited, err := proc.Spawn("sshd", cmd, s.logPath)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited
	err = proc.WaitReady("sshd", s.Addr(), exited, s.logPath, 20*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if errors.Is(err, proc.ErrExited) {
		s.cmd = nil
	}
	return err
}

// Kill stops sshd and every session it serves abruptly (SIGKILL to the
// listener and its descendants), as a crash would.
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
