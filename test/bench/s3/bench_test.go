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
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/test/bench/benchutil"
	"github.com/ferryml/ferry/test/ferrytest"
)

const (
	targetRatio = 0.9
	targetRSS   = 64 << 20
	chunk       = 10 << 20 // MLflow's default MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE
)

func TestS3Bench(t *testing.T) {
	cfg := benchutil.Setup(t, "S3")
	size := cfg.Size
	strict := cfg.Strict

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	benchutil.WriteRandomFile(t, src, size)

	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	client := srv.Client(t)
	ferryBin := benchutil.BuildFerry(t, dir)
	env := srv.Env()
	env = append(env, cfg.Env...) // e.g. MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=...
	fy := startFerry(t, ferryBin, dir, "s3://"+bucket+"/bench", env)
	base, pid := fy.Base, fy.PID()
	ctx := context.Background()

	load := benchutil.Load
	t.Logf("file %d MiB; machine: %d CPUs, load %s", size>>20, benchutil.NumCPU(), load())

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
		n, err := benchutil.Drain(o)
		if err == nil && n != size {
			err = fmt.Errorf("direct download got %d bytes", n)
		}
		return err
	}

	// Proxied through ferry.
	url := base + "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/payload.bin"
	proxiedUpload := func() error { return benchutil.PutFile(url, src, size) }
	proxiedDownload := func() error { return benchutil.GetDiscard(url, size) }

	// Ferry's memory: VmHWM covers the process's whole life (start-up
	// included) and counts the binary's mapped pages (RssFile) as well as
	// its own memory (RssAnon); a sampler records the peak of each part.
	idle := benchutil.ProcStatus(t, pid)
	t.Logf("ferry at start: VmHWM %.1f MiB (RssAnon %.1f, RssFile %.1f)", benchutil.MiB(idle["VmHWM"]), benchutil.MiB(idle["RssAnon"]), benchutil.MiB(idle["RssFile"]))
	stopSampler, peaks := benchutil.SampleRSS(pid)

	// Alternate the transfers over several rounds, direct and proxied
	// back to back, so that each round gives a paired ratio under the same
	// load; report the best and the median of each.
	rounds := cfg.Rounds
	minioPID := benchutil.ChildPID("minio")
	watch := []int{pid, minioPID, benchutil.Self} // CPU of ferry, the storage server, the client
	var (
		directUp   = &benchutil.Series{Name: "upload, direct minio-go (file: 4 parts at once)", Watch: watch}
		directUpS  = &benchutil.Series{Name: "upload, direct minio-go (stream: 1 part at a time)", Watch: watch}
		proxUp     = &benchutil.Series{Name: "upload through ferry", Watch: watch}
		directDown = &benchutil.Series{Name: "download, direct minio-go", Watch: watch}
		proxDown   = &benchutil.Series{Name: "download through ferry", Watch: watch}
	)
	run := func(s *benchutil.Series, f func() error) { s.Run(t, f) }
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
	putBefore := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
	getBefore := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`)
	mpu := benchutil.TimeIt(t, func() error {
		return benchutil.PresignedUpload(base, src, size, chunk, min(2*benchutil.NumCPU(), 20), func(c int) bool { return c == 200 })
	})
	putAfter := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
	getAfter := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`)
	if info, err := client.StatObject(ctx, bucket, "bench/0/run/artifacts/mpu/payload.bin", minio.StatObjectOptions{}); err != nil || info.Size != size {
		t.Fatalf("multipart object: %+v %v", info, err)
	}
	stopSampler()

	rss := benchutil.PeakRSS(t, pid)
	gib := float64(size) / (1 << 30)
	t.Logf("%d rounds; times best / median; CPU seconds per GiB (median) of ferry, MinIO and this test process (the client)", rounds)
	for _, s := range []*benchutil.Series{directUp, directUpS, proxUp, directDown, proxDown} {
		t.Logf("  %-52s %7.1f MiB/s  best %7v  median %7v  cpu ferry %4.2f minio %4.2f client %4.2f",
			s.Name, float64(size)/(1<<20)/s.Median().Seconds(), s.Best().Round(time.Millisecond), s.Median().Round(time.Millisecond),
			s.CPUMedian(0)/gib, s.CPUMedian(1)/gib, s.CPUMedian(2)/gib)
	}
	upFile, upStream, down := benchutil.Ratios(directUp, proxUp), benchutil.Ratios(directUpS, proxUp), benchutil.Ratios(directDown, proxDown)
	t.Logf("upload vs minio-go's file default (4 at once): best %.2fx, median %.2fx, paired per round %s", upFile.Best, upFile.Median, upFile.Rounds)
	t.Logf("upload vs minio-go's stream default (1 at once): best %.2fx, median %.2fx, paired per round %s", upStream.Best, upStream.Median, upStream.Rounds)
	t.Logf("download vs direct: best %.2fx, median %.2fx, paired per round %s", down.Best, down.Median, down.Rounds)
	t.Logf("presigned multipart upload: %7.1f MiB/s (%v); ferry byte counters moved by put=%.0f get=%.0f",
		float64(size)/(1<<20)/mpu.Seconds(), mpu.Round(time.Millisecond), putAfter-putBefore, getAfter-getBefore)
	t.Logf("ferry peak RSS (VmHWM): %.1f MiB; sampled peaks RssAnon %.1f MiB, RssFile %.1f MiB; load after: %s",
		benchutil.MiB(rss), benchutil.MiB(peaks["RssAnon"].Load()), benchutil.MiB(peaks["RssFile"].Load()), load())

	if putAfter != putBefore || getAfter != getBefore {
		t.Errorf("a presigned multipart upload moved bytes through ferry: put %+.0f, get %+.0f", putAfter-putBefore, getAfter-getBefore)
	}
	miss := benchutil.Misser(t, strict)
	if upFile.Best < targetRatio {
		miss("proxied upload at %.2fx of direct; target %.2fx", upFile.Best, targetRatio)
	}
	if down.Best < targetRatio {
		miss("proxied download at %.2fx of direct; target %.2fx", down.Best, targetRatio)
	}
	if rss > targetRSS {
		miss("ferry peak RSS %.1f MiB; target %d MiB", benchutil.MiB(rss), targetRSS>>20)
	}
}

// startFerry runs ferry on dest with a SQLite store in dir and env on top
// of an environment without MLFLOW_, AWS_ and FERRY_ variables.
func startFerry(t *testing.T, bin, dir, dest string, env []string) *ferrytest.Server {
	t.Helper()
	return ferrytest.StartServer(t, bin, append(ferrytest.CleanEnv("MLFLOW_", "AWS_", "FERRY_"), env...),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"))
}
