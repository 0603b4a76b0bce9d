// Package s3bench measures Ferry's S3 data path against baselines taken in
// the same run: a 1 GiB file uploaded and downloaded through ferry (proxied
// PUT/GET to MinIO) and directly with minio-go, ferry's peak RSS, and
// ferry's byte counters across a presigned multipart upload (which must
// move no bytes through ferry).
//
// It runs only when asked, since it moves several GiB:
//
//	FERRY_BENCH=1 go test -run TestS3Bench -v -timeout 30m ./test/bench/s3/
//
// There are two direct upload baselines, both minio-go's defaults: for a
// file (16 MiB parts, 4 at once, read with ReadAt) and for a stream of
// known size (the same parts, one at a time), which is what a proxy
// receives. The targets compare with the file default, the stricter one.
//
// FERRY_BENCH_SIZE (bytes, default 1 GiB) changes the file size;
// each transfer runs FERRY_BENCH_ROUNDS times (default 3), direct and
// proxied back to back, the order alternating; the best and median time of
// each and the per-round paired ratios are printed, with the CPU time ferry,
// MinIO and the test process (the client) spent. The targets apply to the
// best times. Ferry's memory is shown at start and at its peak, split into
// its own memory (RssAnon) and its mapped binary (RssFile); the target
// applies to VmHWM, the peak of their sum.
// FERRY_BENCH_ENV adds space-separated KEY=VALUE settings to ferry's
// environment; FERRY_BENCH_STRICT=1 fails the run when a target is missed (throughput
// ≥ 0.9× direct, peak RSS ≤ 64 MiB); the zero-bytes check always applies.
package s3bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
)

const (
	targetRatio = 0.9
	targetRSS   = 64 << 20
	chunk       = 10 << 20 // MLflow's default MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE
)

func TestS3Bench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the S3 benchmark (moves several GiB)")
	}
	size := int64(1 << 30)
	if v := os.Getenv("FERRY_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("FERRY_BENCH_SIZE=%q", v)
		}
		size = n
	}
	strict := os.Getenv("FERRY_BENCH_STRICT") == "1"

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	writeRandomFile(t, src, size)

	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	client := srv.Client(t)
	ferryBin := buildFerry(t, dir)
	env := srv.Env()
	if extra := os.Getenv("FERRY_BENCH_ENV"); extra != "" {
		env = append(env, strings.Fields(extra)...) // e.g. MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=...
	}
	base, pid := startFerry(t, ferryBin, dir, "s3://"+bucket+"/bench", env)
	ctx := context.Background()

	load := func() string { b, _ := os.ReadFile("/proc/loadavg"); return strings.TrimSpace(string(b)) }
	t.Logf("file %d MiB; machine: %d CPUs, load %s", size>>20, numCPU(), load())

	// Direct minio-go uploads and download of the same file. minio-go's
	// default for a 1 GiB file (an io.ReaderAt) is 16 MiB parts, four
	// uploading at once, each read from the file at its offset; for a
	// stream of known size (no ReadAt, which is what a proxy has) it is
	// the same parts, one at a time, each read into a buffer first. Both
	// chunk-sign the payload over http.
	directUpload := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = client.PutObject(ctx, bucket, "direct/payload.bin", f, size, minio.PutObjectOptions{})
		return err
	}
	directUploadStream := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = client.PutObject(ctx, bucket, "direct/stream.bin", struct{ io.Reader }{f}, size, minio.PutObjectOptions{})
		return err
	}
	directDownload := func() error {
		o, err := client.GetObject(ctx, bucket, "direct/payload.bin", minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer o.Close()
		n, err := io.Copy(io.Discard, o)
		if err == nil && n != size {
			err = fmt.Errorf("direct download got %d bytes", n)
		}
		return err
	}

	// Proxied through ferry.
	url := base + "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/payload.bin"
	proxiedUpload := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		req, _ := http.NewRequest(http.MethodPut, url, f)
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("PUT: %d %s", resp.StatusCode, b)
		}
		return nil
	}
	proxiedDownload := func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && (resp.StatusCode != 200 || n != size) {
			err = fmt.Errorf("GET: %d, %d bytes", resp.StatusCode, n)
		}
		return err
	}

	// Ferry's memory: VmHWM covers the process's whole life (start-up
	// included) and counts the binary's mapped pages (RssFile) as well as
	// its own memory (RssAnon); a sampler records the peak of each part.
	idle := procStatus(t, pid)
	t.Logf("ferry at start: VmHWM %.1f MiB (RssAnon %.1f, RssFile %.1f)", mib(idle["VmHWM"]), mib(idle["RssAnon"]), mib(idle["RssFile"]))
	stopSampler, peaks := sampleRSS(pid)

	// Alternate the transfers over several rounds, direct and proxied
	// back to back, so that each round gives a paired ratio under the same
	// load; report the best and the median of each.
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	minioPID := childPID("minio")
	var (
		directUp   = &series{name: "upload, direct minio-go (file: 4 parts at once)"}
		directUpS  = &series{name: "upload, direct minio-go (stream: 1 part at a time)"}
		proxUp     = &series{name: "upload through ferry"}
		directDown = &series{name: "download, direct minio-go"}
		proxDown   = &series{name: "download through ferry"}
	)
	run := func(s *series, f func() error) { s.add(t, pid, minioPID, f) }
	for r := range rounds {
		if r%2 == 0 {
			run(directUp, directUpload)
			run(proxUp, proxiedUpload)
			run(directUpS, directUploadStream)
			run(directDown, directDownload)
			run(proxDown, proxiedDownload)
		} else {
			run(directUpS, directUploadStream)
			run(proxUp, proxiedUpload)
			run(directUp, directUpload)
			run(proxDown, proxiedDownload)
			run(directDown, directDownload)
		}
	}
	info, err := client.StatObject(ctx, bucket, "bench/0/run/artifacts/payload.bin", minio.StatObjectOptions{})
	if err != nil || info.Size != size {
		t.Fatalf("proxied object: %+v %v", info, err)
	}

	// Presigned multipart: the client's algorithm, parts straight to MinIO.
	putBefore := metric(t, base, "ferry_store_transferred_bytes_total", `op="put"`)
	getBefore := metric(t, base, "ferry_store_transferred_bytes_total", `op="get"`)
	mpu := timeIt(t, func() error { return presignedUpload(base, src, size) })
	putAfter := metric(t, base, "ferry_store_transferred_bytes_total", `op="put"`)
	getAfter := metric(t, base, "ferry_store_transferred_bytes_total", `op="get"`)
	if info, err := client.StatObject(ctx, bucket, "bench/0/run/artifacts/mpu/payload.bin", minio.StatObjectOptions{}); err != nil || info.Size != size {
		t.Fatalf("multipart object: %+v %v", info, err)
	}
	stopSampler()

	rss := peakRSS(t, pid)
	gib := float64(size) / (1 << 30)
	t.Logf("%d rounds; times best / median; CPU seconds per GiB (median) of ferry, MinIO and this test process (the client)", rounds)
	for _, s := range []*series{directUp, directUpS, proxUp, directDown, proxDown} {
		t.Logf("  %-52s %7.1f MiB/s  best %7v  median %7v  cpu ferry %4.2f minio %4.2f client %4.2f",
			s.name, float64(size)/(1<<20)/s.median().Seconds(), s.best().Round(time.Millisecond), s.median().Round(time.Millisecond),
			s.cpuMedian(0)/gib, s.cpuMedian(1)/gib, s.cpuMedian(2)/gib)
	}
	upFile, upStream, down := ratios(directUp, proxUp), ratios(directUpS, proxUp), ratios(directDown, proxDown)
	t.Logf("upload vs minio-go's file default (4 at once): best %.2fx, median %.2fx, paired per round %s", upFile.best, upFile.median, upFile.rounds)
	t.Logf("upload vs minio-go's stream default (1 at once): best %.2fx, median %.2fx, paired per round %s", upStream.best, upStream.median, upStream.rounds)
	t.Logf("download vs direct: best %.2fx, median %.2fx, paired per round %s", down.best, down.median, down.rounds)
	t.Logf("presigned multipart upload: %7.1f MiB/s (%v); ferry byte counters moved by put=%.0f get=%.0f",
		float64(size)/(1<<20)/mpu.Seconds(), mpu.Round(time.Millisecond), putAfter-putBefore, getAfter-getBefore)
	t.Logf("ferry peak RSS (VmHWM): %.1f MiB; sampled peaks RssAnon %.1f MiB, RssFile %.1f MiB; load after: %s",
		mib(rss), mib(peaks["RssAnon"].Load()), mib(peaks["RssFile"].Load()), load())

	if putAfter != putBefore || getAfter != getBefore {
		t.Errorf("a presigned multipart upload moved bytes through ferry: put %+.0f, get %+.0f", putAfter-putBefore, getAfter-getBefore)
	}
	miss := func(format string, a ...any) {
		if strict {
			t.Errorf(format, a...)
		} else {
			t.Logf("TARGET MISSED: "+format, a...)
		}
	}
	if upFile.best < targetRatio {
		miss("proxied upload at %.2fx of direct; target %.2fx", upFile.best, targetRatio)
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
	cpu  [][3]float64 // CPU seconds of ferry, MinIO, this process
}

func (s *series) add(t *testing.T, ferryPID, minioPID int, f func() error) {
	t.Helper()
	f0, m0, c0 := procCPU(ferryPID), procCPU(minioPID), selfCPU()
	s.d = append(s.d, timeIt(t, f))
	s.cpu = append(s.cpu, [3]float64{procCPU(ferryPID) - f0, procCPU(minioPID) - m0, selfCPU() - c0})
}

func (s *series) best() time.Duration { return slices.Min(s.d) }

func (s *series) median() time.Duration { return median(s.d) }

func (s *series) cpuMedian(i int) float64 {
	v := make([]float64, len(s.cpu))
	for j, c := range s.cpu {
		v[j] = c[i]
	}
	return median(v)
}

func median[T int64 | float64 | time.Duration](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratio is direct time / proxied time, by the best, by the median and
// round by round (each round runs the two back to back).
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
		median: direct.median().Seconds() / proxied.median().Seconds(),
		rounds: fmt.Sprintf("%s (median %.2fx)", strings.Join(txt, " "), median(per)),
	}
}

// procCPU is a process's user+system CPU time in seconds (0 if unknown).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime and stime are fields 14 and 15, in clock ticks (100 a second).
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// childPID finds a child process of this one by command name (0 if none).
func childPID(comm string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i || string(b[i+1:j]) != comm {
			continue
		}
		if f := strings.Fields(string(b[j+2:])); len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	return 0
}

// procStatus reads the memory lines of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	m, err := readStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(v, "kB") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
		if err == nil {
			m[k] = kb << 10
		}
	}
	return m, nil
}

// sampleRSS records the peaks of ferry's RssAnon and RssFile every 20 ms
// until stopped.
func sampleRSS(pid int) (stop func(), peaks map[string]*atomic.Int64) {
	peaks = map[string]*atomic.Int64{"RssAnon": {}, "RssFile": {}}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := readStatus(pid); err == nil {
				for k, p := range peaks {
					if m[k] > p.Load() {
						p.Store(m[k])
					}
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }, peaks
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// presignedUpload plays the MLflow client's multipart algorithm through
// ferry's mpu/* routes, with parts of MLflow's default chunk size.
func presignedUpload(base, src string, size int64) error {
	post := func(op string, body any, out any) error {
		b, _ := json.Marshal(body)
		resp, err := http.Post(base+"/api/2.0/mlflow-artifacts/mpu/"+op+"/0/run/artifacts/mpu", "application/json", bytes.NewReader(b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("mpu/%s: %d %s", op, resp.StatusCode, rb)
		}
		if out != nil {
			return json.Unmarshal(rb, out)
		}
		return nil
	}
	var cr struct {
		UploadID    string `json:"upload_id"`
		Credentials []struct {
			URL        string            `json:"url"`
			PartNumber int               `json:"part_number"`
			Headers    map[string]string `json:"headers"`
		} `json:"credentials"`
	}
	n := (size + chunk - 1) / chunk
	if err := post("create", map[string]any{"path": src, "num_parts": n}, &cr); err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	type part struct {
		PartNumber int    `json:"part_number"`
		ETag       string `json:"etag"`
		URL        string `json:"url"`
	}
	parts := make([]part, len(cr.Credentials))
	errs := make(chan error, len(cr.Credentials))
	sem := make(chan struct{}, min(2*numCPU(), 20))
	for i, c := range cr.Credentials {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			off := int64(i) * chunk
			req, _ := http.NewRequest(http.MethodPut, c.URL, io.NewSectionReader(f, off, min(chunk, size-off)))
			req.ContentLength = min(chunk, size-off)
			for k, v := range c.Headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("part %d: %d", c.PartNumber, resp.StatusCode)
				return
			}
			parts[i] = part{c.PartNumber, resp.Header.Get("ETag"), c.URL}
			errs <- nil
		}()
	}
	for range cr.Credentials {
		if err := <-errs; err != nil {
			_ = post("abort", map[string]any{"path": src, "upload_id": cr.UploadID}, nil)
			return err
		}
	}
	return post("complete", map[string]any{"path": src, "upload_id": cr.UploadID, "parts": parts}, nil)
}

func timeIt(t *testing.T, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := f(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func writeRandomFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
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
		if !strings.HasPrefix(kv, "MLFLOW_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "FERRY_") {
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
	for deadline := time.Now().Add(30 * time.Second); ; {
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

func metric(t *testing.T, base, name string, want ...string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// peakRSS is the process's VmHWM in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	hwm, ok := procStatus(t, pid)["VmHWM"]
	if !ok {
		t.Fatal("no VmHWM")
	}
	return hwm
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}
