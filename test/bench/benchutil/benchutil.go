// Package benchutil holds what the artifact benchmarks under test/bench
// share: reading the FERRY_BENCH_* settings, building ferry and a payload
// file, timing transfers over alternating rounds, paired direct/proxied
// ratios with medians, and reading a process's CPU time and memory from
// /proc (Linux only). Ferry itself is started with ferrytest.StartServer.
package benchutil

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
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

	"golang.org/x/sys/unix"

	"github.com/ferryml/ferry/internal/buildflags"
)

// Config is what the environment asks of one benchmark run.
type Config struct {
	Size   int64    // FERRY_BENCH_SIZE: payload bytes, default 1 GiB
	Rounds int      // FERRY_BENCH_ROUNDS: rounds of each transfer, default 3
	Strict bool     // FERRY_BENCH_STRICT=1: a missed target fails the run
	Env    []string // FERRY_BENCH_ENV: space-separated KEY=VALUE added to ferry's environment
}

// Setup skips t unless FERRY_BENCH=1 (the benchmarks move several GiB;
// what names the benchmark in the skip message) and reads the other
// FERRY_BENCH_* settings; a malformed FERRY_BENCH_SIZE fails t, a
// malformed FERRY_BENCH_ROUNDS keeps the default.
func Setup(t testing.TB, what string) Config {
	t.Helper()
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skipf("set FERRY_BENCH=1 to run the %s benchmark (moves several GiB)", what)
	}
	c := Config{Size: 1 << 30, Rounds: 3, Strict: os.Getenv("FERRY_BENCH_STRICT") == "1"}
	if v := os.Getenv("FERRY_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("FERRY_BENCH_SIZE=%q", v)
		}
		c.Size = n
	}
	if v, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ROUNDS")); err == nil && v > 0 {
		c.Rounds = v
	}
	c.Env = strings.Fields(os.Getenv("FERRY_BENCH_ENV"))
	return c
}

// Misser returns how a benchmark reports a missed target: an error when
// strict, else a log line, so that a loaded machine does not fail the run
// unless asked.
func Misser(t testing.TB, strict bool) func(format string, a ...any) {
	return func(format string, a ...any) {
		t.Helper()
		if strict {
			t.Errorf(format, a...)
		} else {
			t.Logf("TARGET MISSED: "+format, a...)
		}
	}
}

// BuildFerry returns $FERRY_BIN when set, else builds the ferry binary
// into dir and returns its path; a failed build fails t.
func BuildFerry(t testing.TB, dir string) string {
	t.Helper()
	if bin := os.Getenv("FERRY_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "ferry")
	cmd := exec.Command("go", append(append([]string{"build"}, buildflags.Args()...), "-o", bin, "github.com/ferryml/ferry")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// WriteRandomFile streams size pseudo-random bytes (seeded by size, so
// the same size gives the same bytes) to path and returns their SHA-256.
func WriteRandomFile(t testing.TB, path string, size int64) []byte {
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

// PutFile PUTs the file src (size bytes) to url with a Content-Length, as
// the MLflow client does, and wants 200. The body is the *os.File itself,
// so the transport may send it with sendfile.
func PutFile(url, src string, size int64) error {
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

// ReadChunk is the size of the reads a benchmark's client makes: MLflow's
// HTTP artifact client reads downloads in 1 MB chunks, and the transfer
// benchmark (test/bench/transfer) reads 1 MiB. Direct and proxied
// downloads both read through Drain, so neither side is measured with a
// client that makes more calls than the other.
const ReadChunk = 1 << 20

// discard is io.Discard without its ReadFrom, which would read in 8 KiB
// calls whatever the copy buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Drain reads r to its end in ReadChunk reads and returns the bytes read.
func Drain(r io.Reader) (int64, error) { return CopyChunks(discard{}, r) }

// CopyChunks copies r to w in ReadChunk reads, whatever ReaderFrom or
// WriterTo either side has, and returns the bytes copied.
func CopyChunks(w io.Writer, r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, make([]byte, ReadChunk))
}

// GetDiscard GETs url, discarding the body (Drain), and wants 200 and
// size bytes.
func GetDiscard(url string, size int64) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := Drain(resp.Body)
	if err == nil && (resp.StatusCode != 200 || n != size) {
		err = fmt.Errorf("GET: %d, %d bytes", resp.StatusCode, n)
	}
	return err
}

// PresignedUpload plays the MLflow client's multipart algorithm through
// ferry's mpu/* routes at base for the file src: create with parts of
// chunk bytes, PUT each part straight to its presigned URL with exactly
// the credential's headers (at most parallel at once), then complete; or
// abort when a part fails. partOK says which status of the store's answer
// to a part is success.
func PresignedUpload(base, src string, size, chunk int64, parallel int, partOK func(status int) bool) error {
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
	sem := make(chan struct{}, parallel)
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
			if !partOK(resp.StatusCode) {
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

// TimeIt runs f and returns how long it took; an error fails t.
func TimeIt(t testing.TB, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := f(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// Self, in Series.Watch, stands for this test process (the client).
const Self = -1

// Series is one transfer's measurements over the rounds, in run order.
type Series struct {
	Name string
	// Watch lists the processes whose CPU time each run records (a pid,
	// or Self); a pid of 0 or one that is gone records 0.
	Watch []int
	D     []time.Duration // wall time of each run
	CPU   [][]float64     // per run, CPU seconds of each of Watch
}

// Run times f once and records the CPU time each watched process spent
// meanwhile; an error fails t.
func (s *Series) Run(t testing.TB, f func() error) {
	t.Helper()
	c0 := s.cpu()
	start := time.Now()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	s.D = append(s.D, time.Since(start))
	c1 := s.cpu()
	for i := range c1 {
		c1[i] -= c0[i]
	}
	s.CPU = append(s.CPU, c1)
}

func (s *Series) cpu() []float64 {
	v := make([]float64, len(s.Watch))
	for i, pid := range s.Watch {
		if pid == Self {
			v[i] = SelfCPU()
		} else {
			v[i] = ProcCPU(pid)
		}
	}
	return v
}

// Best is the shortest run.
func (s *Series) Best() time.Duration { return slices.Min(s.D) }

// Median is the median run time.
func (s *Series) Median() time.Duration { return Median(s.D) }

// CPUMedian is the median CPU seconds of Watch[i] per run.
func (s *Series) CPUMedian(i int) float64 {
	v := make([]float64, len(s.CPU))
	for j, c := range s.CPU {
		v[j] = c[i]
	}
	return Median(v)
}

// Median is the middle of v (the mean of the two middle values when
// their count is even); v is not reordered.
func Median[T ~int64 | ~float64](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Ratio compares a direct baseline with the same transfer through ferry as
// direct time / proxied time: above 1, ferry is faster.
type Ratio struct {
	Best           float64 // of the best times
	Median         float64 // of the median times
	PerRoundMedian float64 // median of the per-round ratios
	// Rounds is the per-round ratios (each round runs the two back to back,
	// under the same load) and their median, as text.
	Rounds string
}

// Ratios pairs direct and proxied round by round.
func Ratios(direct, proxied *Series) Ratio {
	var per []float64
	var txt []string
	for i := range min(len(direct.D), len(proxied.D)) {
		r := direct.D[i].Seconds() / proxied.D[i].Seconds()
		per = append(per, r)
		txt = append(txt, fmt.Sprintf("%.2f", r))
	}
	return Ratio{
		Best:           direct.Best().Seconds() / proxied.Best().Seconds(),
		Median:         direct.Median().Seconds() / proxied.Median().Seconds(),
		PerRoundMedian: Median(per),
		Rounds:         fmt.Sprintf("%s (median %.2fx)", strings.Join(txt, " "), Median(per)),
	}
}

// ProcCPU is a process's user+system CPU time in seconds (0 if unknown).
func ProcCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime and stime are fields 14 and 15, in clock ticks (100 a second).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// SelfCPU is this process's user+system CPU time in seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// TreeCPU is the CPU time of pid and its descendants, those alive and
// those gone (counted in their parents' children times), 0 for pid <= 0:
// servers such as vsftpd run a process per session.
func TreeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	parent := map[int]int{}
	ticks := map[int]float64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the ")" closing the name: ppid is field 2, utime, stime,
		// cutime and cstime fields 12 to 15.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) < 15 {
			continue
		}
		parent[p], _ = strconv.Atoi(f[1])
		for _, x := range f[11:15] {
			v, _ := strconv.ParseFloat(x, 64)
			ticks[p] += v
		}
	}
	var sum float64
	for p, t := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				sum += t
				break
			}
		}
	}
	return time.Duration(sum * float64(time.Second) / 100) // 100 ticks a second
}

// ChildPID finds a child process of this one by command name (0 if none),
// to measure the storage server a backend package started.
func ChildPID(comm string) int {
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

// ReadStatus reads the memory lines (those in kB) of /proc/PID/status, in
// bytes, keyed by name (VmHWM, RssAnon, RssFile, ...).
func ReadStatus(pid int) (map[string]int64, error) {
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
		if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64); err == nil {
			m[k] = kb << 10
		}
	}
	return m, nil
}

// ProcStatus is ReadStatus that fails t on error.
func ProcStatus(t testing.TB, pid int) map[string]int64 {
	t.Helper()
	m, err := ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// PeakRSS is the process's VmHWM in bytes: the peak of its resident
// memory over its whole life, start-up included.
func PeakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	hwm, ok := ProcStatus(t, pid)["VmHWM"]
	if !ok {
		t.Fatal("no VmHWM")
	}
	return hwm
}

// ResetPeakRSS starts a new VmHWM period for pid (Linux: writing 5 to
// /proc/PID/clear_refs), so a benchmark can tell which phase set the peak.
// Callers that report a whole-run peak keep the maximum of the phases.
func ResetPeakRSS(t testing.TB, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS of %d: %v", pid, err)
	}
}

// SampleRSS records the peaks of a process's RssAnon (its own memory) and
// RssFile (its mapped binary) every 20 ms until stop is called, since
// VmHWM gives only their combined peak.
func SampleRSS(pid int) (stop func(), peaks map[string]*atomic.Int64) {
	peaks = map[string]*atomic.Int64{"RssAnon": {}, "RssFile": {}}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := ReadStatus(pid); err == nil {
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

// MiB converts bytes to MiB for printing.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }

// NumCPU is the machine's processor count from /proc/cpuinfo (at least
// 1), which unlike runtime.NumCPU ignores this process's affinity mask.
func NumCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}

// Load is /proc/loadavg, to print beside the figures.
func Load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// ServerFilesOnTmpfs makes the test servers started after it (sshd,
// vsftpd: test/backends/unixuser) keep their files on /dev/shm, unless
// FERRY_BENCH_SERVER_FS=disk, and returns where they go. Why: the direct
// and proxied transfers hit the same server, so its file system is not
// what is measured, and on this VM it dominated: upload times through the
// disk swung several-fold within minutes. (Likely, not measured: ext4
// starts write-back of a file renamed over another, auto_da_alloc, which
// is the atomic upload the drivers must make, while the direct client's
// in-place overwrite lets it drop the old copy's pages unwritten.)
func ServerFilesOnTmpfs(t testing.TB) string {
	t.Helper()
	disk := "disk (" + os.TempDir() + ")"
	if os.Getenv("FERRY_BENCH_SERVER_FS") == "disk" {
		return disk
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Logf("no tmpfs at /dev/shm (%v); the servers' files stay on disk", err)
		return disk
	}
	t.Setenv("FERRY_TEST_SERVER_TMPDIR", "/dev/shm")
	return "tmpfs (/dev/shm; FERRY_BENCH_SERVER_FS=disk to use the disk)"
}
