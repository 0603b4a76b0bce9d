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
// always applies. FERRY_BENCH_ENV adds KEY=VALUE settings to ferry's
// environment (e.g. MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE, its block size).
package azurebench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/azuritesrv"
	"github.com/ferryml/ferry/test/bench/benchutil"
	"github.com/ferryml/ferry/test/ferrytest"
)

const (
	targetRatio = 0.9
	targetRSS   = 64 << 20
	chunk       = 10 << 20 // MLflow's default MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE
)

func TestAzureBench(t *testing.T) {
	cfg := benchutil.Setup(t, "Azure")
	size := cfg.Size
	rounds := cfg.Rounds
	strict := cfg.Strict

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	benchutil.WriteRandomFile(t, src, size)
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	client := srv.Client(t, nil)
	fy := startFerry(t, benchutil.BuildFerry(t, dir), dir, azuritesrv.URI(cont, "bench"), append(srv.Env(), cfg.Env...))
	base, pid := fy.Base, fy.PID()
	ctx := context.Background()
	load := benchutil.Load
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
		n, err := benchutil.Drain(resp.Body)
		if err == nil && n != size {
			err = fmt.Errorf("direct download got %d bytes", n)
		}
		return err
	}
	url := base + "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/payload.bin"
	proxiedUpload := func() error { return benchutil.PutFile(url, src, size) }
	proxiedDownload := func() error { return benchutil.GetDiscard(url, size) }

	idle := benchutil.ProcStatus(t, pid)
	t.Logf("ferry at start: VmHWM %.1f MiB", benchutil.MiB(idle["VmHWM"]))
	var (
		dFile   = &benchutil.Series{Name: "upload, direct azblob UploadFile"}
		dStream = &benchutil.Series{Name: "upload, direct azblob UploadStream"}
		pUp     = &benchutil.Series{Name: "upload through ferry"}
		dDown   = &benchutil.Series{Name: "download, direct azblob DownloadStream"}
		pDown   = &benchutil.Series{Name: "download through ferry"}
	)
	for r := range rounds {
		if r%2 == 0 {
			dFile.Run(t, directFile)
			pUp.Run(t, proxiedUpload)
			dStream.Run(t, directStream)
			dDown.Run(t, directDownload)
			pDown.Run(t, proxiedDownload)
		} else {
			dStream.Run(t, directStream)
			pUp.Run(t, proxiedUpload)
			dFile.Run(t, directFile)
			pDown.Run(t, proxiedDownload)
			dDown.Run(t, directDownload)
		}
	}
	props, err := client.ServiceClient().NewContainerClient(cont).NewBlobClient("bench/0/run/artifacts/payload.bin").GetProperties(ctx, nil)
	if err != nil || *props.ContentLength != size {
		t.Fatalf("proxied blob: %v", err)
	}

	putBefore := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
	getBefore := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`)
	mpu := benchutil.TimeIt(t, func() error {
		return benchutil.PresignedUpload(base, src, size, chunk, 4, func(c int) bool { return c/100 == 2 })
	})
	putAfter := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
	getAfter := fy.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`)
	props, err = client.ServiceClient().NewContainerClient(cont).NewBlobClient("bench/0/run/artifacts/mpu/payload.bin").GetProperties(ctx, nil)
	if err != nil || *props.ContentLength != size {
		t.Fatalf("multipart blob: %v", err)
	}

	rss := benchutil.ProcStatus(t, pid)["VmHWM"]
	t.Logf("%d rounds; best / median", rounds)
	for _, s := range []*benchutil.Series{dFile, dStream, pUp, dDown, pDown} {
		t.Logf("  %-42s %7.1f MiB/s (median)  best %7v  median %7v  all %v", s.Name,
			float64(size)/(1<<20)/s.Median().Seconds(), s.Best().Round(time.Millisecond), s.Median().Round(time.Millisecond), s.D)
	}
	upF, upS, down := benchutil.Ratios(dFile, pUp), benchutil.Ratios(dStream, pUp), benchutil.Ratios(dDown, pDown)
	t.Logf("upload vs UploadFile: best %.2fx, median %.2fx, per round %s", upF.Best, upF.Median, upF.Rounds)
	t.Logf("upload vs UploadStream: best %.2fx, median %.2fx, per round %s", upS.Best, upS.Median, upS.Rounds)
	t.Logf("download vs direct: best %.2fx, median %.2fx, per round %s", down.Best, down.Median, down.Rounds)
	t.Logf("presigned multipart upload: %7.1f MiB/s (%v); ferry byte counters moved by put=%.0f get=%.0f",
		float64(size)/(1<<20)/mpu.Seconds(), mpu.Round(time.Millisecond), putAfter-putBefore, getAfter-getBefore)
	t.Logf("ferry peak RSS (VmHWM): %.1f MiB; load after: %s", benchutil.MiB(rss), load())

	if putAfter != putBefore || getAfter != getBefore {
		t.Errorf("a presigned multipart upload moved bytes through ferry: put %+.0f, get %+.0f", putAfter-putBefore, getAfter-getBefore)
	}
	miss := benchutil.Misser(t, strict)
	if upF.Best < targetRatio {
		miss("proxied upload at %.2fx of UploadFile; target %.2fx", upF.Best, targetRatio)
	}
	if down.Best < targetRatio {
		miss("proxied download at %.2fx of direct; target %.2fx", down.Best, targetRatio)
	}
	if rss > targetRSS {
		miss("ferry peak RSS %.1f MiB; target %d MiB", benchutil.MiB(rss), targetRSS>>20)
	}
}

// startFerry runs ferry on dest with a SQLite store in dir and env on top
// of an environment without MLFLOW_, AZURE_ and FERRY_ variables.
func startFerry(t *testing.T, bin, dir, dest string, env []string) *ferrytest.Server {
	t.Helper()
	return ferrytest.StartServer(t, bin, append(ferrytest.CleanEnv("MLFLOW_", "AZURE_", "FERRY_"), env...),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"))
}
