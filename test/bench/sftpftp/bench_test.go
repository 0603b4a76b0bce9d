// Package sftpftpbench measures Ferry's SFTP and FTP data paths against
// baselines taken in the same run, on the same server: a file uploaded and
// downloaded through ferry (proxied PUT/GET) and directly with the library
// the driver uses (pkg/sftp, jlaffaye/ftp), for SFTP also with OpenSSH's
// `sftp` command-line client; ferry's peak RSS; and 8 concurrent proxied
// transfers sharing a pool of 4 connections, which must all finish.
//
// It runs only when asked, since it moves several GiB:
//
//	FERRY_BENCH=1 go test -run 'TestSFTPBench|TestFTPBench' -v -timeout 60m ./test/bench/sftpftp/
//
// FERRY_BENCH_SIZE (bytes, default 1 GiB) changes the file size;
// FERRY_BENCH_ROUNDS (default 3) the rounds, each running the direct and
// proxied transfers back to back, the order alternating. Times are
// reported as best and median with the paired per-round ratios; targets
// (proxied ≥ 0.8× direct, peak RSS ≤ 64 MiB) print MISS and fail only
// with FERRY_BENCH_STRICT=1.
package sftpftpbench

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ferryml/ferry/test/backends/ftpsrv"
	"github.com/ferryml/ferry/test/backends/sftpsrv"
)

const (
	targetRatio = 0.8
	targetRSS   = 64 << 20
)

type bench struct {
	t        *testing.T
	size     int64
	rounds   int
	strict   bool
	dir, src string
	sum      []byte
	ferry    string // binary
}

func newBench(t *testing.T) *bench {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the SFTP/FTP benchmark (moves several GiB)")
	}
	b := &bench{t: t, size: 1 << 30, rounds: 3, strict: os.Getenv("FERRY_BENCH_STRICT") == "1"}
	if v := os.Getenv("FERRY_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("FERRY_BENCH_SIZE=%q", v)
		}
		b.size = n
	}
	if v, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ROUNDS")); err == nil && v > 0 {
		b.rounds = v
	}
	b.dir = t.TempDir()
	b.src = filepath.Join(b.dir, "payload.bin")
	b.sum = writeRandomFile(t, b.src, b.size)
	b.ferry = buildFerry(t, b.dir)
	t.Logf("file %d MiB, %d rounds; load %s", b.size>>20, b.rounds, load())
	return b
}

// series is one transfer's times over the rounds.
type series struct {
	name string
	d    []time.Duration
}

func (b *bench) run(s *series, f func() error) {
	b.t.Helper()
	start := time.Now()
	if err := f(); err != nil {
		b.t.Fatalf("%s: %v", s.name, err)
	}
	s.d = append(s.d, time.Since(start))
}

func (s *series) best() time.Duration   { return slices.Min(s.d) }
func (s *series) median() time.Duration { c := slices.Clone(s.d); slices.Sort(c); return c[len(c)/2] }

// pairs runs each (baseline, proxied) pair once per round, alternating
// which goes first.
func (b *bench) pairs(pairs [][2]*series, fns map[*series]func() error) {
	for r := range b.rounds {
		for _, p := range pairs {
			if r%2 == 0 {
				b.run(p[0], fns[p[0]])
				b.run(p[1], fns[p[1]])
			} else {
				b.run(p[1], fns[p[1]])
				b.run(p[0], fns[p[0]])
			}
		}
	}
}

func (b *bench) report(all []*series) {
	for _, s := range all {
		b.t.Logf("  %-44s %8.1f MiB/s median  best %8v  median %8v  (all: %v)", s.name,
			float64(b.size)/(1<<20)/s.median().Seconds(), s.best().Round(time.Millisecond),
			s.median().Round(time.Millisecond), roundAll(s.d))
	}
}

func roundAll(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x.Round(time.Millisecond)
	}
	return out
}

func (b *bench) ratio(name string, direct, proxied *series) {
	var per []string
	for i := range direct.d {
		per = append(per, fmt.Sprintf("%.2f", direct.d[i].Seconds()/proxied.d[i].Seconds()))
	}
	best := direct.best().Seconds() / proxied.best().Seconds()
	med := direct.median().Seconds() / proxied.median().Seconds()
	b.t.Logf("%s: proxied/direct throughput best %.2fx, median %.2fx, per round %v", name, best, med, per)
	if best < targetRatio {
		b.miss("%s at %.2fx of direct; target %.2fx", name, best, targetRatio)
	}
}

func (b *bench) miss(format string, a ...any) {
	if b.strict {
		b.t.Errorf(format, a...)
	} else {
		b.t.Logf("MISS: "+format, a...)
	}
}

// proxied returns upload and download functions for ferry at base.
func (b *bench) proxied(base, path string) (up, down func() error) {
	url := base + "/api/2.0/mlflow-artifacts/artifacts/" + path
	up = func() error { return putFile(url, b.src, b.size) }
	down = func() error { return getCheck(url, b.size, nil) }
	return up, down
}

func putFile(url, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	req, _ := http.NewRequest(http.MethodPut, url, struct{ io.Reader }{f})
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("PUT: %d %s", resp.StatusCode, body)
	}
	return nil
}

func getCheck(url string, size int64, sum []byte) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var w io.Writer = io.Discard
	h := sha256.New()
	if sum != nil {
		w = h
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && (resp.StatusCode != 200 || n != size) {
		err = fmt.Errorf("GET: %d, %d bytes", resp.StatusCode, n)
	}
	if err == nil && sum != nil && !bytes.Equal(h.Sum(nil), sum) {
		err = fmt.Errorf("GET: checksum differs")
	}
	return err
}

// concurrent runs n proxied uploads then n downloads at once, each of
// size/n bytes (at least 16 MiB), and reports the time; it fails if they
// do not all finish within the deadline (a pool deadlock).
func (b *bench) concurrent(base string, n int) {
	part := max(b.size/int64(n), 16<<20)
	src := filepath.Join(b.dir, "part.bin")
	sum := writeRandomFile(b.t, src, part)
	defer os.Remove(src)
	for _, op := range []string{"upload", "download"} {
		start := time.Now()
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			url := fmt.Sprintf("%s/api/2.0/mlflow-artifacts/artifacts/conc/%d.bin", base, i)
			wg.Go(func() {
				if op == "upload" {
					errs <- putFile(url, src, part)
				} else {
					errs <- getCheck(url, part, sum)
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Minute):
			b.t.Fatalf("%d concurrent %ss did not finish in 10 minutes: pool deadlock?", n, op)
		}
		close(errs)
		for err := range errs {
			if err != nil {
				b.t.Fatalf("concurrent %s: %v", op, err)
			}
		}
		el := time.Since(start)
		b.t.Logf("%d concurrent proxied %ss of %d MiB each: %v, %.1f MiB/s in all", n, op, part>>20,
			el.Round(time.Millisecond), float64(part*int64(n))/(1<<20)/el.Seconds())
	}
}

func TestSFTPBench(t *testing.T) {
	b := newBench(t)
	srv := sftpsrv.Start(t)
	root := srv.Root

	// Direct: pkg/sftp with the options the driver uses.
	hk, err := knownhosts.New(srv.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(srv.KeyFile)
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{User: srv.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk, HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	client, err := sftp.NewClient(sc, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	directUp := func() error {
		f, err := os.Open(b.src)
		if err != nil {
			return err
		}
		defer f.Close()
		dst, err := client.Create(root + "/direct.bin")
		if err != nil {
			return err
		}
		// A stream of unknown length, as the proxy has.
		if _, err := dst.ReadFrom(struct{ io.Reader }{f}); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	}
	directDown := func() error {
		f, err := client.Open(root + "/direct.bin")
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := f.WriteTo(io.Discard)
		if err == nil && n != b.size {
			err = fmt.Errorf("got %d bytes", n)
		}
		return err
	}
	// OpenSSH's sftp client, in batch mode.
	cli := func(cmd string) func() error {
		return func() error {
			c := exec.Command("sftp", "-q", "-b", "-", "-i", srv.KeyFile, "-P", strconv.Itoa(srv.Port),
				"-o", "UserKnownHostsFile="+srv.KnownHosts, "-o", "BatchMode=yes", srv.User+"@"+srv.Host)
			c.Stdin = strings.NewReader(cmd + "\n")
			out, err := c.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
	}
	cliUp := cli(fmt.Sprintf("put %s %s/cli.bin", b.src, root))
	cliDown := cli(fmt.Sprintf("get %s/cli.bin /dev/null", root))

	env := []string{
		"HOME=" + b.dir,
		"FERRY_SFTP_KNOWN_HOSTS=" + srv.KnownHosts,
		"FERRY_SFTP_IDENTITY_FILE=" + srv.KeyFile,
		"FERRY_SFTP_MAX_CONNECTIONS=4",
	}
	base, pid := startFerry(t, b.ferry, b.dir, fmt.Sprintf("sftp://%s@%s%s/ferry", srv.User, srv.Addr(), root), env)
	proxUp, proxDown := b.proxied(base, "bench/blob.bin")

	s := map[string]*series{}
	for _, n := range []string{"up direct", "up proxied", "up cli", "down direct", "down proxied", "down cli"} {
		s[n] = &series{name: n}
	}
	s["up direct"].name = "upload, direct pkg/sftp"
	s["up proxied"].name = "upload through ferry"
	s["up cli"].name = "upload, OpenSSH sftp client"
	s["down direct"].name = "download, direct pkg/sftp"
	s["down proxied"].name = "download through ferry"
	s["down cli"].name = "download, OpenSSH sftp client"
	fns := map[*series]func() error{
		s["up direct"]: directUp, s["up proxied"]: proxUp, s["up cli"]: cliUp,
		s["down direct"]: directDown, s["down proxied"]: proxDown, s["down cli"]: cliDown,
	}
	b.pairs([][2]*series{{s["up direct"], s["up proxied"]}, {s["up cli"], s["down cli"]}, {s["down direct"], s["down proxied"]}}, fns)
	if err := getCheck(base+"/api/2.0/mlflow-artifacts/artifacts/bench/blob.bin", b.size, b.sum); err != nil {
		t.Fatalf("proxied object read back: %v", err)
	}
	b.concurrent(base, 8)
	rss := peakRSS(t, pid)
	b.report([]*series{s["up direct"], s["up cli"], s["up proxied"], s["down direct"], s["down cli"], s["down proxied"]})
	b.ratio("sftp upload vs pkg/sftp", s["up direct"], s["up proxied"])
	b.ratio("sftp download vs pkg/sftp", s["down direct"], s["down proxied"])
	b.ratio("sftp upload vs OpenSSH sftp", s["up cli"], s["up proxied"])
	b.ratio("sftp download vs OpenSSH sftp", s["down cli"], s["down proxied"])
	b.t.Logf("ferry peak RSS (VmHWM): %.1f MiB; load after: %s", float64(rss)/(1<<20), load())
	if rss > targetRSS {
		b.miss("ferry peak RSS %.1f MiB; target %d MiB", float64(rss)/(1<<20), targetRSS>>20)
	}
}

func TestFTPBench(t *testing.T) {
	b := newBench(t)
	srv := ftpsrv.Start(t)
	root := srv.Root
	// One logged-in connection for every direct transfer, as ferry's pool
	// keeps its connections: logging in (vsftpd runs PAM) is not what is
	// measured.
	c, err := jftp.Dial(srv.Addr(), jftp.DialWithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login(srv.User, srv.Password); err != nil {
		t.Fatal(err)
	}
	directUp := func() error {
		f, err := os.Open(b.src)
		if err != nil {
			return err
		}
		defer f.Close()
		return c.Stor(root+"/direct.bin", struct{ io.Reader }{f})
	}
	directDown := func() error {
		r, err := c.Retr(root + "/direct.bin")
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != b.size {
			err = fmt.Errorf("got %d bytes", n)
		}
		return err
	}
	env := []string{"FERRY_FTP_MAX_CONNECTIONS=4"}
	base, pid := startFerry(t, b.ferry, b.dir,
		fmt.Sprintf("ftp://%s:%s@%s%s/ferry", srv.User, srv.Password, srv.Addr(), root), env)
	proxUp, proxDown := b.proxied(base, "bench/blob.bin")
	upD, upP := &series{name: "upload, direct jlaffaye/ftp"}, &series{name: "upload through ferry"}
	downD, downP := &series{name: "download, direct jlaffaye/ftp"}, &series{name: "download through ferry"}
	b.pairs([][2]*series{{upD, upP}, {downD, downP}}, map[*series]func() error{
		upD: directUp, upP: proxUp, downD: directDown, downP: proxDown,
	})
	if err := getCheck(base+"/api/2.0/mlflow-artifacts/artifacts/bench/blob.bin", b.size, b.sum); err != nil {
		t.Fatalf("proxied object read back: %v", err)
	}
	b.concurrent(base, 8)
	rss := peakRSS(t, pid)
	b.report([]*series{upD, upP, downD, downP})
	b.ratio("ftp upload vs jlaffaye/ftp", upD, upP)
	b.ratio("ftp download vs jlaffaye/ftp", downD, downP)
	b.t.Logf("ferry peak RSS (VmHWM): %.1f MiB; load after: %s", float64(rss)/(1<<20), load())
	if rss > targetRSS {
		b.miss("ferry peak RSS %.1f MiB; target %d MiB", float64(rss)/(1<<20), targetRSS>>20)
	}
}

func load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// writeRandomFile streams size pseudo-random bytes to path and returns
// their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	r := rand.New(rand.NewPCG(uint64(size), 2))
	buf := make([]byte, 1<<20)
	for written := int64(0); written < size; {
		for i := 0; i+8 <= len(buf); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		n := min(int64(len(buf)), size-written)
		if _, err := w.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func buildFerry(t *testing.T, dir string) string {
	t.Helper()
	if bin := os.Getenv("FERRY_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "ferry")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ferryml/ferry")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return bin
}

func startFerry(t *testing.T, bin, dir, dest string, env []string) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var clean []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MLFLOW_") && !strings.HasPrefix(kv, "FERRY_") && !strings.HasPrefix(kv, "HOME=") &&
			!strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			clean = append(clean, kv)
		}
	}
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("ferry-%d.log", port)))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--artifacts-destination", dest, "--artifacts-only")
	cmd.Dir = dir
	cmd.Env = append(clean, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(60 * time.Second); ; {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("ferry did not start:\n%s", b)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// peakRSS is the process's VmHWM in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
