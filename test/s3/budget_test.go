package s3e2e

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/s3srv"
)

// TestTransferMemoryBudgetOnMinIO: with --max-transfer-memory 64 MiB and
// 16 MiB parts, a 36 MiB upload (three parts) reserves 48 MiB, so four
// concurrent multipart uploads through the real binary and S3 driver run
// one at a time: all land byte-exact, the reserved memory reaches one
// upload's worth and never two, and it is all given back.
func TestTransferMemoryBudgetOnMinIO(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	env := append(srv.Env(),
		"MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=6291456", // 6 MiB
		"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=16777216",       // 16 MiB
		"FERRY_MAX_TRANSFER_MEMORY=64MiB")
	f := startFerry(t, "s3://"+bucket+"/"+prefix, env)

	// f.Metric fails the test if /metrics cannot be read; the sampler
	// below stops before the server does.
	gauge := func(name string) float64 { return f.Metric(t, name) }
	if v := gauge("ferry_transfer_memory_limit_bytes"); v != 64<<20 {
		t.Fatalf("ferry_transfer_memory_limit_bytes = %v, want 64 MiB", v)
	}

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if v := int64(gauge("ferry_transfer_memory_reserved_bytes")); v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	data := make([][]byte, 4)
	var wg sync.WaitGroup
	for i := range data {
		data[i] = randomBytes(t, 36<<20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "budget/"+strconv.Itoa(i)+".bin"), bytes.NewReader(data[i]), nil)
			if code != 200 {
				t.Errorf("PUT %d: %d %s", i, code, b)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	// 48 MiB exactly: one upload at a time (two would need 96 of the 64).
	if p := peak.Load(); p != 48<<20 {
		t.Errorf("peak reserved transfer memory %d MiB; want one upload's 48 MiB", p>>20)
	}
	if v := gauge("ferry_transfer_memory_reserved_bytes"); v != 0 {
		t.Errorf("reserved after the uploads: %v, want 0", v)
	}
	if v := gauge("ferry_transfer_memory_refusals_total"); v != 0 {
		t.Errorf("refusals: %v, want 0 (the uploads wait up to 30 s)", v)
	}
	for i := range data {
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "budget/"+strconv.Itoa(i)+".bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, data[i]) {
			t.Errorf("GET %d: %d, %d bytes", i, code, len(got))
		}
	}
}
