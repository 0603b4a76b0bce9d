// Command transfer benchmarks Ferry's artifact transfers against baselines
// measured in the same run, on the same file and the same disk, so that a
// noisy machine still gives fair ratios:
//
//   - upload: an HTTP PUT (with Content-Length) of the file to a freshly
//     started `ferry server`, timed until its 200 arrives. Ferry fsyncs the
//     object and its directory before it answers, so the baseline is `cp`
//     of the same file into the same data dir followed by `sync FILE DIR`:
//     an fsync of the copy and of its directory, the same durability, and
//     no flushing of unrelated dirty data (a bare `sync` would also write
//     back whatever else the machine has dirty, and only the baseline would
//     pay for it).
//     For reference it also times the same PUT to a net/http handler that
//     reads the body into nothing: the HTTP transport alone, which no HTTP
//     upload can beat on the machine.
//   - download: an HTTP GET of the uploaded object from Ferry, and of the
//     same file from Go's net/http FileServer (a helper process serving
//     Ferry's artifacts directory), both read by the same client code into
//     a discarding writer, with the page cache warm for both.
//   - memory: Ferry's peak resident set (VmHWM from /proc/<pid>/status)
//     over the whole run, and at its start for comparison.
//
// Each measurement is repeated -runs times, rotating which side goes first;
// the table reports medians, the spread, the server-side CPU time per
// transfer, the Ferry/baseline ratios and PASS/MISS against the project's
// targets. It is a benchmark, not a test: a MISS never changes
// the exit status, only a failed transfer or setup does.
//
// Usage, from the repository root:
//
//	go run ./test/bench/transfer -size 1GiB -runs 3 -dir /tmp
//
// See test/bench/README.md.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ferryml/ferry/internal/buildflags"
)

// The project's targets (test/bench/README.md): ratios are Ferry/baseline.
const (
	uploadTarget   = 0.9
	downloadTarget = 0.9
	rssTarget      = 64 << 20
	// rssTargetSize is the object size the RSS target is stated for; the
	// same ceiling is checked at every size.
	rssTargetSize = 4 << 30
)

// objectKey is where the benchmark object lives under the artifacts root.
const objectKey = "bench/blob.bin"

type options struct {
	size int64
	runs int
	dir  string
	bin  string
}

func main() {
	if dir := os.Getenv(fileServerEnv); dir != "" {
		serveFiles(dir) // helper process mode; never returns
	}
	sizeFlag := flag.String("size", "1GiB", "size of the test file: bytes, or with a unit (KiB, MiB, GiB, TiB; KB, MB, GB, TB)")
	runs := flag.Int("runs", 3, "repetitions of each measurement; medians are reported")
	dir := flag.String("dir", os.TempDir(), "data dir: the test file, the cp copy and Ferry's --artifacts-destination go in a new directory under it (so all on one disk)")
	bin := flag.String("bin", "", "prebuilt ferry binary; by default the benchmark builds one from the module it is run in")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./test/bench/transfer [flags]\n\nMeasures Ferry uploads against cp+fsync and downloads against net/http's FileServer in one run.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "transfer: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	size, err := parseSize(*sizeFlag)
	if err == nil && size <= 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "transfer: -size %q: %v\n", *sizeFlag, err)
		os.Exit(2)
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "transfer: -runs must be at least 1")
		os.Exit(2)
	}
	opts := options{size: size, runs: *runs, dir: *dir, bin: *bin}

	var cl cleanups
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, &cl)
	stop()
	cl.run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}

// cleanups are run in reverse order at the end, whatever happened.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// logf prints progress to stderr; the report goes to stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
}

func run(ctx context.Context, o options, cl *cleanups) error {
	env := describeEnv()

	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dir, "ferry-bench-")
	if err != nil {
		return err
	}
	work, _ = filepath.Abs(work)
	cl.add(func() {
		if err := os.RemoveAll(work); err != nil {
			fmt.Fprintln(os.Stderr, "transfer: cleanup:", err)
		}
	})
	if err := checkDisk(work, o.size); err != nil {
		return err
	}
	env.fs, env.dir = describeFS(work), work

	bin := o.bin
	if bin == "" {
		logf("building ferry ...")
		if bin, env.ferrySource, err = buildFerry(ctx, work); err != nil {
			return err
		}
	} else {
		env.ferrySource = bin
	}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		env.ferryVersion = strings.TrimSpace(string(out))
	}

	src := filepath.Join(work, "source.bin")
	logf("writing %s of random data to %s ...", fmtBytes(o.size), src)
	srcSum, err := writeRandomFile(ctx, src, o.size)
	if err != nil {
		return err
	}

	artifacts := filepath.Join(work, "artifacts")
	cpDir := filepath.Join(work, "cp")
	for _, d := range []string{artifacts, filepath.Join(artifacts, filepath.Dir(objectKey)), cpDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	ferry, err := startFerry(ctx, bin, work, artifacts)
	if err != nil {
		return err
	}
	cl.add(ferry.stop)
	logf("ferry pid %d listening on %s (log: %s)", ferry.pid(), ferry.addr, ferry.logPath)
	rssAtStart, _ := vmHWM(ferry.pid())

	fs, err := startFileServer(ctx, artifacts)
	if err != nil {
		return err
	}
	cl.add(fs.stop)
	logf("net/http helper pid %d listening on %s", fs.pid(), fs.addr)

	client := newClient()
	res := results{size: o.size, runs: o.runs, env: env, rssAtStart: rssAtStart}

	// Uploads. Before every timed copy its destination is removed and the
	// machine's dirty pages are written back (untimed), so each side starts
	// from the same state and pays only for its own data. Ferry's last
	// upload stays: it is the file both servers serve below. The third side,
	// a PUT that the helper reads into nothing, is the HTTP transport alone:
	// a ceiling for any HTTP upload on this machine, printed for reference.
	ferryDst := filepath.Join(artifacts, filepath.FromSlash(objectKey))
	cpDst := filepath.Join(cpDir, filepath.Base(objectKey))
	putURL := "http://" + ferry.addr + "/api/2.0/mlflow-artifacts/artifacts/" + objectKey
	prepare := func(dst string) error {
		if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		syscall.Sync()
		return ctx.Err()
	}
	discardURL := "http://" + fs.addr + "/discard/" + objectKey
	for i := range o.runs {
		for _, side := range order(i, "cp", "ferry", "discard") {
			var s sample
			switch side {
			case "cp":
				if err = prepare(cpDst); err == nil {
					s, err = copyAndSync(ctx, src, cpDst)
				}
			case "ferry":
				if err = prepare(ferryDst); err == nil {
					s, err = put(ctx, client, putURL, src, o.size, ferry.pid())
				}
			case "discard":
				s, err = put(ctx, client, discardURL, src, o.size, fs.pid())
			}
			if err != nil {
				return fmt.Errorf("upload run %d (%s): %w", i+1, side, err)
			}
			switch side {
			case "cp":
				res.cpSync = append(res.cpSync, s)
			case "ferry":
				res.ferryPut = append(res.ferryPut, s)
			case "discard":
				res.discardPut = append(res.discardPut, s)
			}
			logf("upload   %d/%d %-8s %8.3fs %9.1f MB/s", i+1, o.runs, side, s.secs, mbps(o.size, s.secs))
		}
	}
	if err := os.Remove(cpDst); err != nil {
		return err
	}
	res.rssAfterUpload, _ = vmHWM(ferry.pid())

	// The object Ferry stored must be the file that was sent.
	sum, err := sha256File(ferryDst)
	if err != nil {
		return fmt.Errorf("verifying upload: %w", err)
	}
	if sum != srcSum {
		return fmt.Errorf("verifying upload: sha256 of %s is %s, source is %s", ferryDst, sum, srcSum)
	}
	logf("upload verified: sha256 %s…", sum[:16])

	// Downloads: the same on-disk file from both servers.
	getFerry := "http://" + ferry.addr + "/api/2.0/mlflow-artifacts/artifacts/" + objectKey
	getFS := "http://" + fs.addr + "/" + objectKey
	buf := make([]byte, clientBufferSize)
	// The checksum above read the whole file, so the page cache is warm;
	// one untimed GET from each server warms their connections too.
	for _, srv := range []*proc{fs, ferry} {
		u := getFS
		if srv == ferry {
			u = getFerry
		}
		if _, err := get(ctx, client, u, o.size, buf, srv.pid()); err != nil {
			return fmt.Errorf("warm-up GET %s: %w", u, err)
		}
	}
	for i := range o.runs {
		for _, side := range order(i, "net/http", "ferry") {
			if err := ctx.Err(); err != nil {
				return err
			}
			var s sample
			if side == "ferry" {
				s, err = get(ctx, client, getFerry, o.size, buf, ferry.pid())
			} else {
				s, err = get(ctx, client, getFS, o.size, buf, fs.pid())
			}
			if err != nil {
				return fmt.Errorf("download run %d (%s): %w", i+1, side, err)
			}
			if side == "ferry" {
				res.ferryGet = append(res.ferryGet, s)
			} else {
				res.fsGet = append(res.fsGet, s)
			}
			logf("download %d/%d %-8s %8.3fs %9.1f MB/s", i+1, o.runs, side, s.secs, mbps(o.size, s.secs))
		}
	}

	if res.rssFerry, err = vmHWM(ferry.pid()); err != nil {
		return err
	}
	res.rssFileServer, _ = vmHWM(fs.pid())
	res.env.loadAfter = loadavg()
	if err := ferry.stopAndWait(); err != nil {
		logf("ferry did not stop cleanly: %v (log: %s)", err, ferry.logPath)
	}
	res.print(os.Stdout)
	return nil
}

// order rotates which side of a comparison runs first, so drift in the
// machine's load does not always favour the same side.
func order(run int, sides ...string) []string {
	k := run % len(sides)
	return append(append([]string(nil), sides[k:]...), sides[:k]...)
}

// buildFerry builds the ferry binary of the module the benchmark runs in,
// and says what it was built from.
func buildFerry(ctx context.Context, work string) (bin, source string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", errors.New("not inside a Go module: run from the Ferry repository or pass -bin")
	}
	dir := filepath.Dir(gomod)
	bin = filepath.Join(work, "ferry")
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, buildflags.Args()...), "-o", bin, ".")...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go build ferry in %s: %w", dir, err)
	}
	source = "built from " + dir
	if rev, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD").Output(); err == nil {
		source += " at commit " + strings.TrimSpace(string(rev))
		if st, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			source += " with uncommitted changes"
		}
	}
	return bin, source, nil
}

// writeRandomFile streams size random bytes to path, fsyncs it (so its
// writeback cannot land inside a timed copy) and returns its sha256. The
// data stays in the page cache: both uploads read a warm source.
func writeRandomFile(ctx context.Context, path string, size int64) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	rng := newRand()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n := min(int64(len(buf)), left)
		_, _ = rng.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return "", err
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkDisk refuses to start when the data dir cannot hold the source, the
// cp copy and Ferry's copy at once, with some room to spare.
func checkDisk(dir string, size int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	need := 3*size + 256<<20
	if free < need {
		return fmt.Errorf("%s has %s free; a %s run needs about %s (source + cp copy + Ferry copy)",
			dir, fmtBytes(free), fmtBytes(size), fmtBytes(need))
	}
	return nil
}

// environment is what the report says about the machine and the run.
type environment struct {
	goVersion    string
	cpus         int
	loadBefore   string
	loadAfter    string
	fs           string
	dir          string
	ferryVersion string
	ferrySource  string
	started      time.Time
}

func describeEnv() environment {
	return environment{
		goVersion:  runtime.Version(),
		cpus:       runtime.NumCPU(),
		loadBefore: loadavg(),
		started:    time.Now(),
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// describeFS names the filesystem under dir and warns when fsync means
// nothing there.
func describeFS(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		0xEF53: "ext2/3/4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs (fsync is a no-op: upload figures are not meaningful)",
		0x794C7630: "overlayfs", 0x6969: "nfs", 0x2FC12FC1: "zfs", 0x65735546: "fuse",
	}
	name, ok := names[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("type %#x", st.Type)
	}
	return fmt.Sprintf("%s, %s free", name, fmtBytes(int64(st.Bavail)*int64(st.Bsize)))
}

// newClient is the one HTTP client every transfer uses: large buffers so
// the client is not the bottleneck, no compression.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DisableCompression:  true,
		ReadBufferSize:      clientBufferSize,
		WriteBufferSize:     clientBufferSize,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}}
}
