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
// with FERRY_BENCH_STRICT=1. FERRY_BENCH_ENV adds KEY=VALUE settings to
// ferry's environment only (GOGC in the environment reaches this process,
// the direct client, too). The servers keep their files on tmpfs unless
// FERRY_BENCH_SERVER_FS=disk (benchutil.ServerFilesOnTmpfs says why).
package sftpftpbench

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	ferrysftp "github.com/ferryml/ferry/stores/sftp"
	"github.com/ferryml/ferry/test/backends/ftpsrv"
	"github.com/ferryml/ferry/test/backends/sftpsrv"
	"github.com/ferryml/ferry/test/bench/benchutil"
	"github.com/ferryml/ferry/test/ferrytest"
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
	ferry    string                        // binary
	env      []string                      // FERRY_BENCH_ENV: added to ferry's environment only
	miss     func(format string, a ...any) // reports a missed target
}

func newBench(t *testing.T) *bench {
	cfg := benchutil.Setup(t, "SFTP/FTP")
	b := &bench{t: t, size: cfg.Size, rounds: cfg.Rounds, strict: cfg.Strict, env: cfg.Env, miss: benchutil.Misser(t, cfg.Strict)}
	b.dir = t.TempDir()
	b.src = filepath.Join(b.dir, "payload.bin")
	b.sum = benchutil.WriteRandomFile(t, b.src, b.size)
	b.ferry = benchutil.BuildFerry(t, b.dir)
	fs := benchutil.ServerFilesOnTmpfs(t)
	t.Logf("file %d MiB, %d rounds; server files on %s; load %s", b.size>>20, b.rounds, fs, benchutil.Load())
	return b
}

// pairs runs each (baseline, proxied) pair once per round, alternating
// which goes first.
func (b *bench) pairs(pairs [][2]*benchutil.Series, fns map[*benchutil.Series]func() error) {
	for r := range b.rounds {
		for _, p := range pairs {
			if r%2 == 0 {
				p[0].Run(b.t, fns[p[0]])
				p[1].Run(b.t, fns[p[1]])
			} else {
				p[1].Run(b.t, fns[p[1]])
				p[0].Run(b.t, fns[p[0]])
			}
		}
	}
}

// serverCPU records a server's CPU seconds (its whole process tree: sshd
// and vsftpd run a process per session) per run of each series, since it
// shares the two cores with ferry and the client.
type serverCPU struct {
	pid  int
	runs map[*benchutil.Series][]float64
}

func newServerCPU(comm string) *serverCPU {
	return &serverCPU{pid: benchutil.ChildPID(comm), runs: map[*benchutil.Series][]float64{}}
}

// wrap returns f recording the server's CPU during each call for s.
func (c *serverCPU) wrap(s *benchutil.Series, f func() error) func() error {
	return func() error {
		c0 := benchutil.TreeCPU(c.pid)
		err := f()
		c.runs[s] = append(c.runs[s], (benchutil.TreeCPU(c.pid) - c0).Seconds())
		return err
	}
}

func (c *serverCPU) median(s *benchutil.Series) float64 { return benchutil.Median(c.runs[s]) }

func (b *bench) report(all []*benchutil.Series) {
	for _, s := range all {
		b.t.Logf("  %-44s %8.1f MiB/s median  best %8v  median %8v  (all: %v)", s.Name,
			float64(b.size)/(1<<20)/s.Median().Seconds(), s.Best().Round(time.Millisecond),
			s.Median().Round(time.Millisecond), roundAll(s.D))
	}
}

func roundAll(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x.Round(time.Millisecond)
	}
	return out
}

func (b *bench) ratio(name string, direct, proxied *benchutil.Series) {
	r := benchutil.Ratios(direct, proxied)
	best := r.Best
	b.t.Logf("%s: proxied/direct throughput best %.2fx, median %.2fx, per round %s", name, best, r.Median, r.Rounds)
	if best < targetRatio {
		b.miss("%s at %.2fx of direct; target %.2fx", name, best, targetRatio)
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
	h := sha256.New()
	var n int64
	if sum != nil {
		n, err = benchutil.CopyChunks(h, resp.Body)
	} else {
		n, err = benchutil.Drain(resp.Body)
	}
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
// phasePeaks reports ferry's peak memory per phase of a benchmark: the
// single transfers, then each concurrent batch. VmHWM is reset between
// phases (and the sampled RssAnon peak with it); Whole is the maximum.
type phasePeaks struct {
	t     *testing.T
	pid   int
	anon  *atomic.Int64
	whole int64
	lines []string
}

// end closes the phase called name and starts the next one.
func (p *phasePeaks) end(name string) {
	hwm := benchutil.PeakRSS(p.t, p.pid)
	p.whole = max(p.whole, hwm)
	p.lines = append(p.lines, fmt.Sprintf("%s: VmHWM %.1f MiB (RssAnon %.1f)", name, benchutil.MiB(hwm), benchutil.MiB(p.anon.Load())))
	benchutil.ResetPeakRSS(p.t, p.pid)
	p.anon.Store(0)
}

func (b *bench) concurrent(base string, n int, peaks *phasePeaks) {
	part := max(b.size/int64(n), 16<<20)
	src := filepath.Join(b.dir, "part.bin")
	sum := benchutil.WriteRandomFile(b.t, src, part)
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
		peaks.end(fmt.Sprintf("%d concurrent %ss", n, op))
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
	// The same request size and bytes in flight as the driver picks for
	// this server (OpenSSH: 255 KiB requests, 8 in flight = 2 MiB, as 64
	// of 32 KiB).
	opts := []sftp.ClientOption{sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64)}
	if strings.HasPrefix(string(sc.ServerVersion()), "SSH-2.0-OpenSSH_") {
		opts = append(opts, sftp.MaxPacketUnchecked(ferrysftp.OpenSSHMaxPacket),
			sftp.MaxConcurrentRequestsPerFile(ferrysftp.DefaultRequestsInFlight*ferrysftp.BasePacket/ferrysftp.OpenSSHMaxPacket))
	}
	client, err := sftp.NewClient(sc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// putFile uploads the source file to name from the file itself, so
	// pkg/sftp sees its size and pipelines its writes (its best upload;
	// ferry passes the request's Content-Length on the same way).
	putFile := func(name string) error {
		f, err := os.Open(b.src)
		if err != nil {
			return err
		}
		defer f.Close()
		dst, err := client.Create(name)
		if err != nil {
			return err
		}
		if _, err := dst.ReadFrom(f); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	}
	directUp := func() error { return putFile(root + "/direct.bin") }
	// What the driver does: write a new file, then rename it over the
	// object (posix-rename@openssh.com), where directUp overwrites in
	// place and lets sshd reuse the old file's pages.
	directUpRename := func() error {
		if err := putFile(root + "/direct-new.tmp"); err != nil {
			return err
		}
		return client.PosixRename(root+"/direct-new.tmp", root+"/direct-new.bin")
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
	// Passed on to compare settings run against run (GOMEMLIMIT and GOGC
	// reach ferry anyway).
	if v := os.Getenv("FERRY_SFTP_REQUESTS_IN_FLIGHT"); v != "" {
		env = append(env, "FERRY_SFTP_REQUESTS_IN_FLIGHT="+v)
	}
	env = append(env, b.env...)
	t.Logf("ferry settings: FERRY_SFTP_REQUESTS_IN_FLIGHT=%q GOMEMLIMIT=%q GOGC=%q FERRY_BENCH_ENV=%q",
		os.Getenv("FERRY_SFTP_REQUESTS_IN_FLIGHT"), os.Getenv("GOMEMLIMIT"), os.Getenv("GOGC"), b.env)
	base, pid := startFerry(t, b.ferry, fmt.Sprintf("sftp://%s@%s%s/ferry", srv.User, srv.Addr(), root), env)
	stopSampler, peaks := benchutil.SampleRSS(pid)
	proxUp, proxDown := b.proxied(base, "bench/blob.bin")

	// CPU of ferry and of this process (the direct transfers, or the HTTP
	// client; not the OpenSSH client, a child) and of sshd.
	watch := []int{pid, benchutil.Self}
	sshdCPU := newServerCPU("sshd")
	s := map[string]*benchutil.Series{}
	for _, n := range []string{"up direct", "up proxied", "up cli", "up rename", "up proxied 2", "down direct", "down proxied", "down cli"} {
		s[n] = &benchutil.Series{Name: n, Watch: watch}
	}
	s["up direct"].Name = "upload, direct pkg/sftp"
	s["up proxied"].Name = "upload through ferry"
	s["up cli"].Name = "upload, OpenSSH sftp client"
	s["up rename"].Name = "upload, direct, new file + rename"
	s["up proxied 2"].Name = "upload through ferry (paired with rename)"
	s["down direct"].Name = "download, direct pkg/sftp"
	s["down proxied"].Name = "download through ferry"
	s["down cli"].Name = "download, OpenSSH sftp client"
	fns := map[*benchutil.Series]func() error{
		s["up direct"]: directUp, s["up proxied"]: proxUp, s["up cli"]: cliUp,
		s["up rename"]: directUpRename, s["up proxied 2"]: proxUp,
		s["down direct"]: directDown, s["down proxied"]: proxDown, s["down cli"]: cliDown,
	}
	for k, f := range fns {
		fns[k] = sshdCPU.wrap(k, f)
	}
	b.pairs([][2]*benchutil.Series{{s["up direct"], s["up proxied"]}, {s["up rename"], s["up proxied 2"]},
		{s["up cli"], s["down cli"]}, {s["down direct"], s["down proxied"]}}, fns)
	if err := getCheck(base+"/api/2.0/mlflow-artifacts/artifacts/bench/blob.bin", b.size, b.sum); err != nil {
		t.Fatalf("proxied object read back: %v", err)
	}
	pp := &phasePeaks{t: t, pid: pid, anon: peaks["RssAnon"]}
	pp.end("single transfers")
	b.concurrent(base, 8, pp)
	rss := pp.whole
	stopSampler()
	b.report([]*benchutil.Series{s["up direct"], s["up cli"], s["up proxied"], s["up rename"], s["up proxied 2"],
		s["down direct"], s["down cli"], s["down proxied"]})
	gib := float64(b.size) / (1 << 30)
	for _, n := range []string{"up direct", "up proxied", "up cli", "up rename", "up proxied 2", "down direct", "down proxied", "down cli"} {
		b.t.Logf("  %-44s CPU s/GiB (median): ferry %.2f, this process %.2f, sshd %.2f",
			s[n].Name, s[n].CPUMedian(0)/gib, s[n].CPUMedian(1)/gib, sshdCPU.median(s[n])/gib)
	}
	b.ratio("sftp upload vs pkg/sftp", s["up direct"], s["up proxied"])
	// Not a target: the like-for-like server work, for reading the above.
	rr := benchutil.Ratios(s["up rename"], s["up proxied 2"])
	b.t.Logf("sftp upload vs pkg/sftp's new file + rename: best %.2fx, median %.2fx, per round %s", rr.Best, rr.Median, rr.Rounds)
	b.ratio("sftp download vs pkg/sftp", s["down direct"], s["down proxied"])
	b.ratio("sftp upload vs OpenSSH sftp", s["up cli"], s["up proxied"])
	b.ratio("sftp download vs OpenSSH sftp", s["down cli"], s["down proxied"])
	b.t.Logf("ferry peak RSS (VmHWM, whole run): %.1f MiB (peak RssFile %.1f MiB, the mapped binary); by phase, RssAnon being its own memory: %s; load after: %s",
		float64(rss)/(1<<20), benchutil.MiB(peaks["RssFile"].Load()), strings.Join(pp.lines, "; "), benchutil.Load())
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
	// The wire operations the driver makes for an upload: STOR to a new
	// name, then RNTO over the object (what makes it atomic). Overwriting
	// in place lets the server drop the previous copy's pages unwritten.
	directUpRename := func() error {
		f, err := os.Open(b.src)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := c.Stor(root+"/direct-new.tmp", struct{ io.Reader }{f}); err != nil {
			return err
		}
		return c.Rename(root+"/direct-new.tmp", root+"/direct-new.bin")
	}
	directDown := func() error {
		r, err := c.Retr(root + "/direct.bin")
		if err != nil {
			return err
		}
		n, err := benchutil.Drain(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != b.size {
			err = fmt.Errorf("got %d bytes", n)
		}
		return err
	}
	env := append([]string{"FERRY_FTP_MAX_CONNECTIONS=4"}, b.env...)
	base, pid := startFerry(t, b.ferry,
		fmt.Sprintf("ftp://%s:%s@%s%s/ferry", srv.User, srv.Password, srv.Addr(), root), env)
	stopSampler, peaks := benchutil.SampleRSS(pid)
	proxUp, proxDown := b.proxied(base, "bench/blob.bin")
	// CPU of ferry and of this process (the direct transfers, or the HTTP
	// client): seconds per GiB survive a noisy machine better than times.
	watch := []int{pid, benchutil.Self}
	upD, upP := &benchutil.Series{Name: "upload, direct jlaffaye/ftp", Watch: watch}, &benchutil.Series{Name: "upload through ferry", Watch: watch}
	downD, downP := &benchutil.Series{Name: "download, direct jlaffaye/ftp", Watch: watch}, &benchutil.Series{Name: "download through ferry", Watch: watch}
	upR := &benchutil.Series{Name: "upload, direct, new file + RNTO", Watch: watch}
	upP2 := &benchutil.Series{Name: "upload through ferry (paired with RNTO)", Watch: watch}
	// vsftpd's CPU too (its process tree: a process per session), since
	// it shares the two cores with ferry and the client.
	vsCPU := newServerCPU("vsftpd")
	withVsftpd := vsCPU.wrap
	b.pairs([][2]*benchutil.Series{{upD, upP}, {upR, upP2}, {downD, downP}}, map[*benchutil.Series]func() error{
		upD: withVsftpd(upD, directUp), upP: withVsftpd(upP, proxUp), upR: withVsftpd(upR, directUpRename), upP2: withVsftpd(upP2, proxUp),
		downD: withVsftpd(downD, directDown), downP: withVsftpd(downP, proxDown),
	})
	if err := getCheck(base+"/api/2.0/mlflow-artifacts/artifacts/bench/blob.bin", b.size, b.sum); err != nil {
		t.Fatalf("proxied object read back: %v", err)
	}
	pp := &phasePeaks{t: t, pid: pid, anon: peaks["RssAnon"]}
	pp.end("single transfers")
	b.concurrent(base, 8, pp)
	rss := pp.whole
	stopSampler()
	b.report([]*benchutil.Series{upD, upP, upR, upP2, downD, downP})
	gib := float64(b.size) / (1 << 30)
	for _, s := range []*benchutil.Series{upD, upP, upR, upP2, downD, downP} {
		b.t.Logf("  %-44s CPU s/GiB (median): ferry %.2f, this process %.2f, vsftpd %.2f",
			s.Name, s.CPUMedian(0)/gib, s.CPUMedian(1)/gib, vsCPU.median(s)/gib)
	}
	b.ratio("ftp upload vs jlaffaye/ftp", upD, upP)
	// Not a target: the like-for-like server work, for reading the above.
	r := benchutil.Ratios(upR, upP2)
	b.t.Logf("ftp upload vs jlaffaye/ftp's STOR to a new name + RNTO: best %.2fx, median %.2fx, per round %s", r.Best, r.Median, r.Rounds)
	b.ratio("ftp download vs jlaffaye/ftp", downD, downP)
	b.t.Logf("ferry peak RSS (VmHWM, whole run): %.1f MiB (peak RssFile %.1f MiB, the mapped binary); by phase, RssAnon being its own memory: %s; load after: %s",
		float64(rss)/(1<<20), benchutil.MiB(peaks["RssFile"].Load()), strings.Join(pp.lines, "; "), benchutil.Load())
	if rss > targetRSS {
		b.miss("ferry peak RSS %.1f MiB; target %d MiB", float64(rss)/(1<<20), targetRSS>>20)
	}
}

// startFerry runs ferry, artifacts only, on dest with env on top of an
// environment without MLFLOW_ and FERRY_ variables, HOME and SSH_AUTH_SOCK
// (so that no user's SSH configuration or agent is used); it returns
// ferry's base URL and pid.
func startFerry(t *testing.T, bin, dest string, env []string) (string, int) {
	t.Helper()
	f := ferrytest.StartServer(t, bin, append(ferrytest.CleanEnv("MLFLOW_", "FERRY_", "HOME", "SSH_AUTH_SOCK"), env...),
		"--artifacts-destination", dest, "--artifacts-only")
	return f.Base, f.PID()
}
