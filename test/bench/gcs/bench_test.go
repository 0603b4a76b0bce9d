// Package gcsbench measures Ferry's GCS data path against baselines taken
// in the same run: a 1 GiB file uploaded and downloaded through ferry
// (proxied PUT/GET to fake-gcs-server) and directly with
// cloud.google.com/go/storage, and ferry's peak RSS.
//
// It runs only when asked, since it moves several GiB:
//
//	FERRY_BENCH=1 go test -run TestGCSBench -v -timeout 30m ./test/bench/gcs/
//
// The direct upload is the Go library's own Writer with its defaults (a
// resumable upload in 16 MiB chunks), fed from the file; the direct
// download is its Reader. Ferry streams an upload of known size below
// MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MiB) as one request and
// sends larger ones in 8 MiB chunks. FERRY_BENCH_GCS_DIRECT_CHUNK sets the
// direct Writer's ChunkSize (bytes; 0: one streamed request, as Ferry's
// below the threshold) for a like-for-like comparison; raise Ferry's
// threshold, or set its MLFLOW_GCS_UPLOAD_CHUNK_SIZE, through
// FERRY_BENCH_ENV.
// FERRY_BENCH_SIZE (bytes, default 1 GiB) changes the file size; each
// transfer runs FERRY_BENCH_ROUNDS times (default 3), direct and proxied
// back to back, the order alternating; best and median times, per-round
// paired ratios and CPU seconds per GiB of ferry, fake-gcs-server and the
// client are printed. FERRY_BENCH_ENV adds KEY=VALUE settings to ferry's
// environment; FERRY_BENCH_STRICT=1 fails the run when a target is missed
// (throughput >= 0.9x direct, peak RSS <= 64 MiB).
//
// fake-gcs-server keeps every object whole in its own memory while it
// writes it, so the absolute figures are the emulator's, not GCS's; both
// sides of each ratio pay the same. At 1 GiB it slows down badly (6 GiB
// RSS, minutes per upload on a loaded 2-core machine): use
// FERRY_BENCH_SIZE=268435456 there.
package gcsbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/bench/benchutil"
	"github.com/ferryml/ferry/test/ferrytest"
)

const (
	targetRatio = 0.9
	targetRSS   = 64 << 20
)

func TestGCSBench(t *testing.T) {
	cfg := benchutil.Setup(t, "GCS")
	size := cfg.Size
	strict := cfg.Strict

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	benchutil.WriteRandomFile(t, src, size)

	srv := gcssrv.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	client, err := storage.NewClient(ctx, option.WithEndpoint(srv.Endpoint+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ferryBin := benchutil.BuildFerry(t, dir)
	env := srv.Env()
	env = append(env, cfg.Env...)
	fy := startFerry(t, ferryBin, dir, "gs://"+bucket+"/bench", env)
	base, pid := fy.Base, fy.PID()

	load := benchutil.Load
	t.Logf("file %d MiB; machine: %d CPUs, load %s", size>>20, benchutil.NumCPU(), load())

	directChunk := -1 // the library's default
	if v := os.Getenv("FERRY_BENCH_GCS_DIRECT_CHUNK"); v != "" {
		if directChunk, err = strconv.Atoi(v); err != nil || directChunk < 0 {
			t.Fatalf("FERRY_BENCH_GCS_DIRECT_CHUNK=%q: want a number of bytes", v)
		}
		t.Logf("direct uploads with ChunkSize %d", directChunk)
	}
	directUpload := func() error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		w := client.Bucket(bucket).Object("direct/payload.bin").NewWriter(ctx)
		w.ContentType = "application/octet-stream"
		if directChunk >= 0 {
			w.ChunkSize = directChunk
		}
		if _, err := io.Copy(w, f); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
	directDownload := func() error {
		r, err := client.Bucket(bucket).Object("direct/payload.bin").NewReader(ctx)
		if err != nil {
			return err
		}
		defer r.Close()
		n, err := benchutil.Drain(r)
		if err == nil && n != size {
			err = fmt.Errorf("direct download got %d bytes", n)
		}
		return err
	}
	url := base + "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/payload.bin"
	proxiedUpload := func() error { return benchutil.PutFile(url, src, size) }
	proxiedDownload := func() error { return benchutil.GetDiscard(url, size) }

	idle := benchutil.ProcStatus(t, pid)
	t.Logf("ferry at start: VmHWM %.1f MiB (RssAnon %.1f, RssFile %.1f)", benchutil.MiB(idle["VmHWM"]), benchutil.MiB(idle["RssAnon"]), benchutil.MiB(idle["RssFile"]))
	stopSampler, peaks := benchutil.SampleRSS(pid)

	rounds := cfg.Rounds
	gcsPID := benchutil.ChildPID("fake-gcs-server")
	watch := []int{pid, gcsPID, benchutil.Self} // CPU of ferry, the storage server, the client
	var (
		directUp   = &benchutil.Series{Name: "upload, direct cloud.google.com/go/storage", Watch: watch}
		proxUp     = &benchutil.Series{Name: "upload through ferry", Watch: watch}
		directDown = &benchutil.Series{Name: "download, direct cloud.google.com/go/storage", Watch: watch}
		proxDown   = &benchutil.Series{Name: "download through ferry", Watch: watch}
	)
	run := func(s *benchutil.Series, f func() error) { s.Run(t, f) }
	for r := range rounds {
		if r%2 == 0 {
			run(directUp, directUpload)
			run(proxUp, proxiedUpload)
			run(directDown, directDownload)
			run(proxDown, proxiedDownload)
		} else {
			run(proxUp, proxiedUpload)
			run(directUp, directUpload)
			run(proxDown, proxiedDownload)
			run(directDown, directDownload)
		}
	}
	stopSampler()
	attrs, err := client.Bucket(bucket).Object("bench/0/run/artifacts/payload.bin").Attrs(ctx)
	if err != nil || attrs.Size != size {
		t.Fatalf("proxied object: %+v %v", attrs, err)
	}

	rss := benchutil.PeakRSS(t, pid)
	gib := float64(size) / (1 << 30)
	t.Logf("%d rounds; times best / median; CPU seconds per GiB (median) of ferry, fake-gcs-server and this test process (the client)", rounds)
	for _, s := range []*benchutil.Series{directUp, proxUp, directDown, proxDown} {
		t.Logf("  %-48s %7.1f MiB/s  best %7v  median %7v  cpu ferry %4.2f gcs %4.2f client %4.2f",
			s.Name, float64(size)/(1<<20)/s.Median().Seconds(), s.Best().Round(time.Millisecond), s.Median().Round(time.Millisecond),
			s.CPUMedian(0)/gib, s.CPUMedian(1)/gib, s.CPUMedian(2)/gib)
	}
	up, down := benchutil.Ratios(directUp, proxUp), benchutil.Ratios(directDown, proxDown)
	t.Logf("upload vs direct: best %.2fx, median %.2fx, paired per round %s", up.Best, up.Median, up.Rounds)
	t.Logf("download vs direct: best %.2fx, median %.2fx, paired per round %s", down.Best, down.Median, down.Rounds)
	t.Logf("ferry peak RSS (VmHWM): %.1f MiB; sampled peaks RssAnon %.1f MiB, RssFile %.1f MiB; load after: %s",
		benchutil.MiB(rss), benchutil.MiB(peaks["RssAnon"].Load()), benchutil.MiB(peaks["RssFile"].Load()), load())
	miss := benchutil.Misser(t, strict)
	if up.Best < targetRatio {
		miss("proxied upload at %.2fx of direct; target %.2fx", up.Best, targetRatio)
	}
	if down.Best < targetRatio {
		miss("proxied download at %.2fx of direct; target %.2fx", down.Best, targetRatio)
	}
	if rss > targetRSS {
		miss("ferry peak RSS %.1f MiB; target %d MiB", benchutil.MiB(rss), targetRSS>>20)
	}
}

// startFerry runs ferry on dest with a SQLite store in dir and env on top
// of an environment without MLFLOW_, AWS_, FERRY_ and GOOGLE_ variables
// and STORAGE_EMULATOR_HOST.
func startFerry(t *testing.T, bin, dir, dest string, env []string) *ferrytest.Server {
	t.Helper()
	return ferrytest.StartServer(t, bin, append(ferrytest.CleanEnv("MLFLOW_", "AWS_", "FERRY_", "GOOGLE_", "STORAGE_EMULATOR_HOST"), env...),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"))
}
