package serve

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores/local"
)

// BenchmarkFile measures a 64 MiB download through File (the code behind
// /get-artifact, /model-versions/get-artifact and mlflow-artifacts
// downloads) over a real loopback connection, beside the baseline of the
// same bytes read straight from the file in the same run, alternating the
// two. It reports MB/s and the bytes allocated per download: a buffered
// download would allocate the object's size, a streamed one a few KiB.
//
//	go test -run '^$' -bench BenchmarkFile -benchtime 20x ./proxy/serve/
func BenchmarkFile(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "model.bin"))
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	st, err := local.New(dir)
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/dl", func(c *fiber.Ctx) error { return File(c, st, "model.bin", Framework, nil) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go app.Listener(ln)
	defer app.Shutdown()
	url := "http://" + ln.Addr().String() + "/dl"
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	for _, mode := range []string{"direct-file", "serve.File"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(size)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := 0; i < b.N; i++ {
				var r io.ReadCloser
				if mode == "direct-file" {
					r, err = os.Open(filepath.Join(dir, "model.bin"))
				} else {
					var resp *http.Response
					resp, err = client.Get(url)
					if err == nil {
						r = resp.Body
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				r.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
			runtime.ReadMemStats(&after)
			// Client and server share this process: the figure covers both.
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "alloc-B/download")
		})
	}
}
