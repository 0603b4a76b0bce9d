// Package unixuser prepares the local account the SFTP and FTP test
// servers log in as (ferrytest, created by test/backends/sftp.sh install):
// a fresh random password per test and a data directory it owns. Both
// need root; without root, or without the account, the test is skipped,
// except when CI=true or FERRY_REQUIRE_BACKENDS=1, where it fails.
package unixuser

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Name is the test account.
const Name = "ferrytest"

// Account is the test account, ready to log in.
type Account struct {
	Name     string
	Password string
	UID, GID int
	// Base is a directory the account owns, removed at cleanup; servers
	// keep their configuration beside it and the store root inside it.
	Base string
}

// Required reports whether a missing backend must fail the test.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("FERRY_REQUIRE_BACKENDS") == "1"
}

// Skip skips the test with msg, or fails it when backends are required.
func Skip(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Prepare gives the account its password (see password) and makes it a
// fresh directory under a world-traversable temp dir (t.TempDir's parents
// are private to root): under $FERRY_TEST_SERVER_TMPDIR when set (the
// benchmarks put the servers' files on tmpfs with it), else the default
// temp dir.
func Prepare(t testing.TB) *Account {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "the SFTP/FTP test servers need root (a local account to log in as)")
	}
	u, err := user.Lookup(Name)
	if err != nil {
		Skip(t, fmt.Sprintf("account %s missing (%v); run test/backends/sftp.sh install", Name, err))
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	a := &Account{Name: Name, UID: uid, GID: gid}
	if a.Password, err = password(); err != nil {
		t.Fatal(err)
	}
	parent, err := os.MkdirTemp(os.Getenv("FERRY_TEST_SERVER_TMPDIR"), "ferry-unixuser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	a.Base = filepath.Join(parent, "home")
	if err := os.Mkdir(a.Base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(a.Base, uid, gid); err != nil {
		t.Fatal(err)
	}
	return a
}

// password returns the account's password: random, set once per machine
// and kept (mode 0600) in the test cache, so that test packages running
// at the same time agree on it (a fresh password per test would lock out
// the tests of the other package). A file lock orders the first setting.
func password() (string, error) {
	dir := os.Getenv("FERRY_TEST_CACHE")
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "ferry-test")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(dir, Name+".password"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	b, err := io.ReadAll(f)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	// Set it every time (cheap): the account may have been re-created.
	if pw == "" {
		pw = "pw-" + RandHex(12)
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(Name + ":" + pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chpasswd: %v: %s", err, out)
	}
	if len(b) == 0 {
		if _, err := f.WriteString(pw + "\n"); err != nil {
			return "", err
		}
	}
	return pw, nil
}

// Dir makes a fresh directory owned by the account under Base.
func (a *Account) Dir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(a.Base, "d"+RandHex(4))
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
	return d
}

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// KillTree sends SIGKILL to pid and all its descendants, found through
// /proc. Servers such as sshd put each session in a new session and
// process group (setsid), so killing the group alone would leave the
// sessions alive, which a crash would not.
func KillTree(pid int) { SignalTree(pid, syscall.SIGKILL) }

// SignalTree sends sig to pid and every descendant of it (SIGSTOP and
// SIGCONT freeze and thaw a server with its sessions).
func SignalTree(pid int, sig syscall.Signal) {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var all []int
	var walk func(int)
	walk = func(p int) {
		all = append(all, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	for _, p := range all {
		_ = syscall.Kill(p, sig)
	}
}
