// Command idlerss measures the idle memory of ferry binaries side by side:
// each round starts every binary in turn (alternating, so machine load
// falls on all alike), waits for /health and a few seconds more, reads
// /proc/PID/status and /proc/PID/smaps, and stops it. It prints every
// start and, per binary, the median and min–max of VmRSS, RssAnon,
// RssFile and FilePmdMapped, and the binary's size.
//
//	go run ./test/bench/idlerss -runs 5 /tmp/ferry-old /tmp/ferry-new
//
// Each start runs a fresh copy of the binary written with write(2) (-fresh,
// the default), as a build or an image pull leaves it: Linux 6.x keeps such
// a file's page cache in folios of up to 2 MiB and may map them whole (see
// internal/buildflags), which a binary whose page cache was since
// reclaimed and read back in smaller folios does not show.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

var fields = []string{"VmRSS", "RssAnon", "RssFile", "FilePmdMapped"}

func main() {
	runs := flag.Int("runs", 5, "starts of each binary")
	settle := flag.Duration("settle", 3*time.Second, "wait after /health answers before reading")
	fresh := flag.Bool("fresh", true, "run a freshly written copy of the binary each time")
	flag.Parse()
	bins := flag.Args()
	if len(bins) == 0 {
		fmt.Fprintln(os.Stderr, "usage: idlerss [-runs N] BINARY...")
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "ferry-idlerss-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(work)
	got := map[string]map[string][]int{}
	for r := 1; r <= *runs; r++ {
		for _, bin := range bins {
			m, err := measure(bin, work, *fresh, *settle)
			if err != nil {
				fail(fmt.Errorf("%s: %w", bin, err))
			}
			if got[bin] == nil {
				got[bin] = map[string][]int{}
			}
			line := fmt.Sprintf("round %d %s:", r, bin)
			for _, f := range fields {
				got[bin][f] = append(got[bin][f], m[f])
				line += fmt.Sprintf(" %s=%.1f", f, mib(m[f]))
			}
			fmt.Println(line + " MiB")
		}
	}
	fmt.Printf("\n%-40s %10s", "binary (MiB: median [min–max])", "size MB")
	for _, f := range fields {
		fmt.Printf(" %22s", f)
	}
	fmt.Println()
	for _, bin := range bins {
		fi, err := os.Stat(bin)
		if err != nil {
			fail(err)
		}
		fmt.Printf("%-40s %10.1f", bin, float64(fi.Size())/1e6)
		for _, f := range fields {
			v := slices.Clone(got[bin][f])
			slices.Sort(v)
			fmt.Printf(" %22s", fmt.Sprintf("%.1f [%.1f–%.1f]", mib(v[len(v)/2]), mib(v[0]), mib(v[len(v)-1])))
		}
		fmt.Println()
	}
}

func mib(kb int) float64 { return float64(kb) / 1024 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "idlerss:", err)
	os.Exit(1)
}

// measure starts bin with a fresh SQLite database and local artifact
// directory, and reads its memory once idle (values in KiB).
func measure(bin, work string, fresh bool, settle time.Duration) (map[string]int, error) {
	dir, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	run := bin
	if fresh {
		run = filepath.Join(dir, "ferry")
		if err := writeCopy(bin, run); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(run, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"),
		"--artifacts-destination", filepath.Join(dir, "artifacts"))
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			return nil, fmt.Errorf("not healthy after 60 s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(settle)
	m := map[string]int{}
	if err := sum(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid), m); err != nil {
		return nil, err
	}
	if err := sum(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid), m); err != nil {
		return nil, err
	}
	return m, nil
}

// writeCopy copies src to dst with large write(2) calls (the wrappers
// hide ReaderFrom/WriterTo, so no copy_file_range or sendfile).
func writeCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	buf := make([]byte, 8<<20)
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sum adds the "Name: N kB" lines of path whose Name is in fields.
func sum(path string, m map[string]int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(fields, name) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		if err == nil {
			m[name] += n
		}
	}
	return sc.Err()
}
