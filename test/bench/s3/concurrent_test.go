package s3bench

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/test/bench/benchutil"
)

// TestS3ConcurrentUploadsMemory measures what many concurrent multipart
// uploads cost Ferry in memory with the transfer memory budget off and
// on: FERRY_BENCH_CLIENTS (default 24) clients each upload a 48 MiB file
// at MLflow's 10 MiB chunk (multipart above 6 MiB here), three parts in
// memory per upload; once with FERRY_MAX_TRANSFER_MEMORY=0 (unbounded),
// once with FERRY_BENCH_BUDGET (default 128MiB), alternating over
// FERRY_BENCH_ROUNDS rounds. It prints each run's wall time and Ferry's
// peak RssAnon (its own memory; part buffers are mmapped outside the Go
// heap but count there).
//
//	FERRY_BENCH=1 go test -run TestS3ConcurrentUploadsMemory -v -timeout 30m ./test/bench/s3/
func TestS3ConcurrentUploadsMemory(t *testing.T) {
	cfg := benchutil.Setup(t, "S3 concurrent uploads")
	clients := 24
	if n, err := strconv.Atoi(os.Getenv("FERRY_BENCH_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	budget := cmp.Or(os.Getenv("FERRY_BENCH_BUDGET"), "128MiB")
	const size = 48 << 20
	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	benchutil.WriteRandomFile(t, src, size)
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	bin := benchutil.BuildFerry(t, dir)
	t.Logf("%d clients × %d MiB, budget %s; machine: %d CPUs, load %s", clients, size>>20, budget, benchutil.NumCPU(), benchutil.Load())

	type result struct {
		wall time.Duration
		anon int64
	}
	runs := map[string][]result{}
	settings := []string{"0", budget}
	for r := range cfg.Rounds {
		for i := range settings {
			limit := settings[(i+r)%2]
			env := append(srv.Env(), "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=6291456",
				"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=10485760", "FERRY_MAX_TRANSFER_MEMORY="+limit)
			env = append(env, cfg.Env...)
			fy := startFerry(t, bin, t.TempDir(), "s3://"+bucket+"/conc", env)
			stop, peaks := benchutil.SampleRSS(fy.PID())
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					url := fmt.Sprintf("%s/api/2.0/mlflow-artifacts/artifacts/c/%d.bin", fy.Base, c)
					if err := benchutil.PutFile(url, src, size); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			wall := time.Since(start)
			stop()
			close(errs)
			for err := range errs {
				t.Errorf("limit %s: %v", limit, err)
			}
			res := result{wall: wall, anon: peaks["RssAnon"].Load()}
			runs[limit] = append(runs[limit], res)
			t.Logf("round %d, FERRY_MAX_TRANSFER_MEMORY=%s: %v (%.0f MiB/s in all), peak RssAnon %.1f MiB", r, limit,
				wall.Round(time.Millisecond), float64(clients*size)/(1<<20)/wall.Seconds(), benchutil.MiB(res.anon))
			// ferry stays up, idle, until the test's cleanup.
		}
	}
	for _, limit := range settings {
		var walls []time.Duration
		var anons []float64
		for _, r := range runs[limit] {
			walls = append(walls, r.wall)
			anons = append(anons, benchutil.MiB(r.anon))
		}
		t.Logf("FERRY_MAX_TRANSFER_MEMORY=%s: wall %v, peak RssAnon MiB %v", limit, walls, anons)
	}
}
