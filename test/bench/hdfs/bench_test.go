// Package hdfsbench measures Ferry's HDFS data path against the same
// client library's direct transfer to the same server, in the same run:
// a file (1 GiB by default) uploaded and downloaded through ferry
// (proxied PUT/GET to Ferry's HDFS test double) and directly with
// github.com/colinmarc/hdfs/v2 from this process, ferry's peak RSS, and
// 8 concurrent proxied uploads then downloads (which must not deadlock
// on the driver's shared namenode connection).
//
// The server is test/backends/hdfsdouble, not Hadoop: its costs (one
// datanode, blocks in the page cache, CRC32C checked on write and
// computed on read) are the same for both sides, so the ratio measures
// Ferry, not HDFS.
//
// It runs only when asked, since it moves several GiB:
//
//	FERRY_BENCH=1 go test -run TestHDFSBench -v -timeout 30m ./test/bench/hdfs/
//
// FERRY_BENCH_SIZE (bytes) changes the file size, FERRY_BENCH_ROUNDS
// (default 3) the rounds; each round runs direct and proxied back to back,
// the order alternating. Targets (from issue 12): proxied ≥ 0.8× direct
// by the best times, peak RSS (VmHWM, start-up included) ≤ 64 MiB; a miss
// is printed, and fails the run only with FERRY_BENCH_STRICT=1.
package hdfsbench

import (
	"bufio"
	"errors"
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

	"github.com/colinmarc/hdfs/v2"

	"github.com/ferryml/ferry/test/backends/hdfsdouble"
)

const (
	targetRatio = 0.8
	targetRSS   = 64 << 20
	concurrent  = 8
)

func TestHDFSBench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the HDFS benchmark (moves several GiB)")
	}
	size := int64(1 << 30)
	if v := os.Getenv("FERRY_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("FERRY_BENCH_SIZE=%q", v)
		}
		size = n
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	strict := os.Getenv("FERRY_BENCH_STRICT") == "1"
	load := func() string { b, _ := os.ReadFile("/proc/loadavg"); return strings.TrimSpace(string(b)) }

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	writeRandomFile(t, src, size)

	dbin, err := hdfsdouble.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks take no deletion delay worth measuring; 3 s keeps replaced
	// objects' blocks readable like HDFS's asynchronous invalidation.
	d, err := hdfsdouble.StartProcess(dbin, hdfsdouble.Options{Dir: filepath.Join(dir, "double")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	client, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{d.NamenodeAddr}, User: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.MkdirAll("/direct", 0o755); err != nil {
		t.Fatal(err)
	}

	base, pid := startFerry(t, buildFerry(t, dir), dir, "hdfs://"+d.NamenodeAddr+"/bench", []string{"HADOOP_USER_NAME=bench"})
	t.Logf("file %d MiB; machine: %d CPUs, load %s", size>>20, numCPU(), load())
	idle := procStatus(t, pid)
	t.Logf("ferry at start: VmHWM %.1f MiB", mib(idle["VmHWM"]))

	// Direct: the same library, in this process, the way a program using
	// it would copy a file in and out (Create + io.Copy, Open + io.Copy).
	directUpload := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_ = client.Remove("/direct/payload.bin")
		w, err := client.Create("/direct/payload.bin")
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, struct{ io.Reader }{f}); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
	directDownload := func() error {
		f, err := client.Open("/direct/payload.bin")
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(io.Discard, struct{ io.Reader }{f})
		if err == nil && n != size {
			err = fmt.Errorf("direct download got %d bytes", n)
		}
		return err
	}
	url := base + "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/"
	put := func(name string, r io.Reader, n int64) error {
		req, _ := http.NewRequest(http.MethodPut, url+name, r)
		req.ContentLength = n
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("PUT %s: %d %s", name, resp.StatusCode, b)
		}
		return nil
	}
	get := func(name string, want int64) error {
		resp, err := http.Get(url + name)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && (resp.StatusCode != 200 || n != want) {
			err = fmt.Errorf("GET %s: %d, %d bytes", name, resp.StatusCode, n)
		}
		return err
	}
	proxiedUpload := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return put("payload.bin", f, size)
	}
	proxiedDownload := func() error { return get("payload.bin", size) }

	var (
		directUp   = &series{name: "upload, direct colinmarc/hdfs"}
		proxUp     = &series{name: "upload through ferry"}
		directDown = &series{name: "download, direct colinmarc/hdfs"}
		proxDown   = &series{name: "download through ferry"}
	)
	for r := range rounds {
		pairs := [][2]func(){
			{func() { directUp.add(t, pid, directUpload) }, func() { proxUp.add(t, pid, proxiedUpload) }},
			{func() { directDown.add(t, pid, directDownload) }, func() { proxDown.add(t, pid, proxiedDownload) }},
		}
		for _, p := range pairs {
			if r%2 == 0 {
				p[0]()
				p[1]()
			} else {
				p[1]()
				p[0]()
			}
		}
	}
	if fi, err := client.Stat("/bench/0/run/artifacts/payload.bin"); err != nil || fi.Size() != size {
		t.Fatalf("proxied object: %v %v", fi, err)
	}

	// 8 transfers at once through ferry, each 1/8 of the file, within a
	// deadline that a pool or lease deadlock would blow.
	part := size / concurrent
	many := func(f func(i int) error) (time.Duration, error) {
		start := time.Now()
		errc := make(chan error, concurrent)
		var wg sync.WaitGroup
		for i := range concurrent {
			wg.Go(func() { errc <- f(i) })
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Minute):
			return 0, errors.New("8 concurrent transfers did not finish in 10 minutes: deadlock?")
		}
		close(errc)
		var errs []error
		for err := range errc {
			errs = append(errs, err)
		}
		return time.Since(start), errors.Join(errs...)
	}
	upMany, err := many(func(i int) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return put(fmt.Sprintf("c/%d.bin", i), io.NewSectionReader(f, int64(i)*part, part), part)
	})
	if err != nil {
		t.Fatal(err)
	}
	downMany, err := many(func(i int) error { return get(fmt.Sprintf("c/%d.bin", i), part) })
	if err != nil {
		t.Fatal(err)
	}

	rss := procStatus(t, pid)["VmHWM"]
	gib := float64(size) / (1 << 30)
	t.Logf("%d rounds; MiB/s by the median; times best / median; ferry CPU seconds per GiB (median)", rounds)
	for _, s := range []*series{directUp, proxUp, directDown, proxDown} {
		t.Logf("  %-34s %7.1f MiB/s  best %8v  median %8v  ferry cpu %4.2f",
			s.name, float64(size)/(1<<20)/s.median().Seconds(), s.best().Round(time.Millisecond),
			s.median().Round(time.Millisecond), s.cpuMedian()/gib)
	}
	up, down := ratios(directUp, proxUp), ratios(directDown, proxDown)
	t.Logf("upload through ferry vs direct: best %.2fx, median %.2fx, paired per round %s", up.best, up.median, up.rounds)
	t.Logf("download through ferry vs direct: best %.2fx, median %.2fx, paired per round %s", down.best, down.median, down.rounds)
	t.Logf("%d concurrent proxied uploads of %d MiB: %v (%.1f MiB/s total); downloads: %v (%.1f MiB/s total)",
		concurrent, part>>20, upMany.Round(time.Millisecond), float64(size)/(1<<20)/upMany.Seconds(),
		downMany.Round(time.Millisecond), float64(size)/(1<<20)/downMany.Seconds())
	t.Logf("ferry peak RSS (VmHWM, whole run): %.1f MiB; load after: %s", mib(rss), load())

	miss := func(format string, a ...any) {
		if strict {
			t.Errorf(format, a...)
		} else {
			t.Logf("TARGET MISSED: "+format, a...)
		}
	}
	if up.best < targetRatio {
		miss("proxied upload at %.2fx of direct; target %.2fx", up.best, targetRatio)
	}
	if down.best < targetRatio {
		miss("proxied download at %.2fx of direct; target %.2fx", down.best, targetRatio)
	}
	if rss > targetRSS {
		miss("ferry peak RSS %.1f MiB; target %d MiB", mib(rss), targetRSS>>20)
	}
}

// series is one transfer's measurements over the rounds.
type series struct {
	name string
	d    []time.Duration
	cpu  []float64 // ferry's CPU seconds
}

func (s *series) add(t *testing.T, ferryPID int, f func() error) {
	t.Helper()
	c0 := procCPU(ferryPID)
	start := time.Now()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	s.d = append(s.d, time.Since(start))
	s.cpu = append(s.cpu, procCPU(ferryPID)-c0)
}

func (s *series) best() time.Duration   { return slices.Min(s.d) }
func (s *series) median() time.Duration { return median(s.d) }
func (s *series) cpuMedian() float64    { return median(s.cpu) }

func median[T float64 | time.Duration](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratio is direct time / proxied time: by the best, by the median, and
// per round (each round runs the two back to back).
type ratio struct {
	best, median float64
	rounds       string
}

func ratios(direct, proxied *series) ratio {
	var per []float64
	var txt []string
	for i := range min(len(direct.d), len(proxied.d)) {
		r := direct.d[i].Seconds() / proxied.d[i].Seconds()
		per = append(per, r)
		txt = append(txt, fmt.Sprintf("%.2f", r))
	}
	return ratio{
		best:   direct.best().Seconds() / proxied.best().Seconds(),
		median: median(per),
		rounds: strings.Join(txt, " "),
	}
}

// procCPU is the user+system CPU seconds a process has used.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			out[k] = n << 10
		}
	}
	return out
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}

func writeRandomFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.Copy(w, io.LimitReader(rand.NewChaCha8([32]byte{7}), size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
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

// startFerry runs ferry serving artifacts from dest and returns its base
// URL and pid.
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
		if !strings.HasPrefix(kv, "MLFLOW_") && !strings.HasPrefix(kv, "HADOOP_") && !strings.HasPrefix(kv, "FERRY_") {
			clean = append(clean, kv)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "ferry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"))
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
