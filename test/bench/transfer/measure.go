package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clientBufferSize is the client's socket buffer and copy chunk, the same
// for every server: large enough that the client is not what is measured.
const clientBufferSize = 1 << 20

// sample is one timed transfer.
type sample struct {
	secs float64 // wall time
	cpu  float64 // CPU seconds (user+system) of the serving side
}

// copyAndSync is the upload baseline: cp, then fsync of the copy and of its
// directory (coreutils `sync FILE...` fsyncs each argument).
func copyAndSync(ctx context.Context, src, dst string) (sample, error) {
	start := time.Now()
	cp := exec.CommandContext(ctx, "cp", "--", src, dst)
	if out, err := cp.CombinedOutput(); err != nil {
		return sample{}, fmt.Errorf("cp: %w: %s", err, out)
	}
	sy := exec.CommandContext(ctx, "sync", "--", dst, filepath.Dir(dst))
	if out, err := sy.CombinedOutput(); err != nil {
		return sample{}, fmt.Errorf("sync: %w: %s", err, out)
	}
	secs := time.Since(start).Seconds()
	cpu := 0.0
	for _, ps := range []*os.ProcessState{cp.ProcessState, sy.ProcessState} {
		cpu += (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	return sample{secs: secs, cpu: cpu}, nil
}

// put uploads src to url with its Content-Length and times it until
// the response has arrived (Ferry answers only after fsync and rename);
// pid is the serving process, whose CPU time is recorded.
func put(ctx context.Context, client *http.Client, url, src string, size int64, pid int) (sample, error) {
	f, err := os.Open(src)
	if err != nil {
		return sample{}, err
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, f)
	if err != nil {
		return sample{}, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	cpu0, err := procCPU(pid)
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return sample{}, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	secs := time.Since(start).Seconds()
	cpu1, err := procCPU(pid)
	if err != nil {
		return sample{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("PUT %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return sample{secs: secs, cpu: cpu1 - cpu0}, nil
}

// discard is io.Discard without its ReadFrom, so io.CopyBuffer reads the
// body in clientBufferSize chunks rather than io.Discard's 8 KiB ones.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// get downloads url to nowhere and checks that want bytes arrived.
func get(ctx context.Context, client *http.Client, url string, want int64, buf []byte, pid int) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return sample{}, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return sample{}, err
	}
	n, err := io.CopyBuffer(discard{}, resp.Body, buf)
	resp.Body.Close()
	secs := time.Since(start).Seconds()
	if err != nil {
		return sample{}, fmt.Errorf("GET %s after %d bytes: %w", url, n, err)
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return sample{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if n != want {
		return sample{}, fmt.Errorf("GET %s: got %d bytes, want %d", url, n, want)
	}
	return sample{secs: secs, cpu: cpu1 - cpu0}, nil
}

// newRand is a fast generator of incompressible bytes (ChaCha8, seeded
// from the OS), so writing the test file is limited by the disk.
func newRand() *rand.ChaCha8 {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// mbps is throughput in MB/s (10^6 bytes per second).
func mbps(size int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(size) / 1e6 / secs
}

// summary is one measurement's statistics over its runs.
type summary struct {
	median, min, max float64 // MB/s
	cpu              float64 // median server CPU seconds per transfer
}

func summarize(size int64, s []sample) summary {
	rates := make([]float64, len(s))
	cpus := make([]float64, len(s))
	for i, x := range s {
		rates[i] = mbps(size, x.secs)
		cpus[i] = x.cpu
	}
	return summary{median: median(rates), min: minOf(rates), max: maxOf(rates), cpu: median(cpus)}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}

// parseSize reads "4GiB", "512MiB", "1.5G" (binary), "100MB" (decimal) or a
// plain byte count.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	units := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("not a size")
	}
	return int64(f * mult), nil
}

// fmtBytes prints a byte count in binary units.
func fmtBytes(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffixes := float64(n), []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for v >= unit && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.2f %s", v, suffixes[i])
}
