// Package azurebench measures Ferry's Azure Blob data path on Azurite
// against baselines taken in the same run: a 1 GiB file uploaded and
// downloaded through ferry (proxied PUT/GET to a wasbs:// destination)
// and directly with the azblob SDK, ferry's peak RSS, and ferry's byte
// counters across a presigned (block-SAS) multipart upload, which must
// move no bytes through ferry.
//
// It runs only when asked, since it moves several GiB:
//
//	FERRY_BENCH=1 go test -run TestAzureBench -v -timeout 60m ./test/bench/azure/
//
// The direct baselines are the SDK's own defaults: UploadFile (a file:
// 4 MiB+ blocks, many at once, read with ReadAt), UploadStream (a stream,
// which is what a proxy receives: 1 MiB blocks, several at once) and
// DownloadStream copied to io.Discard. FERRY_BENCH_SIZE (bytes, default
// 1 GiB) and FERRY_BENCH_ROUNDS (default 3) change the size and rounds;
// each round runs direct and proxied back to back, the order alternating,
// and the best and median of each and the per-round paired ratios are
// printed. FERRY_BENCH_STRICT=1 fails the run when a target is missed
// (throughput ≥ 0.9× direct, peak RSS ≤ 64 MiB); the zero-bytes check
// always applies.
package azurebench

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
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/azuritesrv"
)

const (
	targetRatio = 0.9
	targetRSS   = 64 << 20
	chunk       = 10 << 20 // MLflow's default MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE
)

func TestAzureBench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the Azure benchmark (moves several GiB)")
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

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	writeRandomFile(t, src, size)
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	client := srv.Client(t, nil)
	base, pid := startFerry(t, buildFerry(t, dir), dir, azuritesrv.URI(cont, "bench"), srv.Env())
	ctx := context.Background()
	load := func() string { b, _ := os.ReadFile("/proc/loadavg"); return strings.TrimSpace(string(b)) }
	t.Logf("file %d MiB; load %s", size>>20, load())

	directFile := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = client.UploadFile(ctx, cont, "direct/payload.bin", f, nil)
		return err
	}
	directStream := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = client.UploadStream(ctx, cont, "direct/stream.bin", struct{ io.Reader }{f}, nil)
		return err
	}
	directDownload := func() error {
		resp, err := client.DownloadStream(ctx, cont, "direct/payload.bin", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && n != size {
			err = fmt.Errorf("direct download got %d bytes", n)
		}
		return err
	}
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

	idle := procStatus(t, pid)
	t.Logf("ferry at start: VmHWM %.1f MiB", mib(idle["VmHWM"]))
	var (
		dFile   = &series{name: "upload, direct azblob UploadFile"}
		dStream = &series{name: "upload, direct azblob UploadStream"}
		pUp     = &series{name: "upload through ferry"}
		dDown   = &series{name: "download, direct azblob DownloadStream"}
		pDown   = &series{name: "download through ferry"}
	)
	for r := range rounds {
		if r%2 == 0 {
			dFile.add(t, directFile)
			pUp.add(t, proxiedUpload)
			dStream.add(t, directStream)
			dDown.add(t, directDownload)
			pDown.add(t, proxiedDownload)
		} else {
			dStream.add(t, directStream)
			pUp.add(t, proxiedUpload)
			dFile.add(t, directFile)
			pDown.add(t, proxiedDownload)
			dDown.add(t, directDownload)
		}
	}
	props, err := client.ServiceClient().NewContainerClient(cont).NewBlobClient("bench/0/run/artifacts/payload.bin").GetProperties(ctx, nil)
	if err != nil || *props.ContentLength != size {
		t.Fatalf("proxied blob: %v", err)
	}

	putBefore := metric(t, base, "ferry_store_transferred_bytes_total", `op="put"`)
	getBefore := metric(t, base, "ferry_store_transferred_bytes_total", `op="get"`)
	mpu := timeIt(t, func() error { return presignedUpload(base, src, size) })
	putAfter := metric(t, base, "ferry_store_transferred_bytes_total", `op="put"`)
	getAfter := metric(t, base, "ferry_store_transferred_bytes_total", `op="get"`)
	props, err = client.ServiceClient().NewContainerClient(cont).NewBlobClient("bench/0/run/artifacts/mpu/payload.bin").GetProperties(ctx, nil)
	if err != nil || *props.ContentLength != size {
		t.Fatalf("multipart blob: %v", err)
	}

	rss := procStatus(t, pid)["VmHWM"]
	t.Logf("%d rounds; best / median", rounds)
	for _, s := range []*series{dFile, dStream, pUp, dDown, pDown} {
		t.Logf("  %-42s %7.1f MiB/s (median)  best %7v  median %7v  all %v", s.name,
			float64(size)/(1<<20)/s.median().Seconds(), s.best().Round(time.Millisecond), s.median().Round(time.Millisecond), s.d)
	}
	upF, upS, down := ratios(dFile, pUp), ratios(dStream, pUp), ratios(dDown, pDown)
	t.Logf("upload vs UploadFile: best %.2fx, median %.2fx, per round %s", upF.best, upF.median, upF.rounds)
	t.Logf("upload vs UploadStream: best %.2fx, median %.2fx, per round %s", upS.best, upS.median, upS.rounds)
	t.Logf("download vs direct: best %.2fx, median %.2fx, per round %s", down.best, down.median, down.rounds)
	t.Logf("presigned multipart upload: %7.1f MiB/s (%v); ferry byte counters moved by put=%.0f get=%.0f",
		float64(size)/(1<<20)/mpu.Seconds(), mpu.Round(time.Millisecond), putAfter-putBefore, getAfter-getBefore)
	t.Logf("ferry peak RSS (VmHWM): %.1f MiB; load after: %s", mib(rss), load())

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
	if upF.best < targetRatio {
		miss("proxied upload at %.2fx of UploadFile; target %.2fx", upF.best, targetRatio)
	}
	if down.best < targetRatio {
		miss("proxied download at %.2fx of direct; target %.2fx", down.best, targetRatio)
	}
	if rss > targetRSS {
		miss("ferry peak RSS %.1f MiB; target %d MiB", mib(rss), targetRSS>>20)
	}
}

// series is one transfer's times over the rounds.
type series struct {
	name string
	d    []time.Duration
}

func (s *series) add(t *testing.T, f func() error) { s.d = append(s.d, timeIt(t, f)) }
func (s *series) best() time.Duration              { return slices.Min(s.d) }
func (s *series) median() time.Duration            { return median(s.d) }

func median[T int64 | float64 | time.Duration](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratio is direct time / proxied time, by the best, by the median and
// round by round.
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

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// presignedUpload plays the MLflow client's multipart algorithm: create,
// block PUTs straight to Azurite (a thread pool of min(2 × CPUs, 20)),
// complete.
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
	sem := make(chan struct{}, 4)
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
			if resp.StatusCode/100 != 2 {
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
		if !strings.HasPrefix(kv, "MLFLOW_") && !strings.HasPrefix(kv, "AZURE_") && !strings.HasPrefix(kv, "FERRY_") {
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

// procStatus reads the memory lines of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(v, "kB") {
			continue
		}
		if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64); err == nil {
			m[k] = kb << 10
		}
	}
	return m
}
