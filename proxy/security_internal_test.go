package proxy

import (
	"log/slog"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ferryml/ferry/config"
)

// BenchmarkSecurityCheck measures what the Host/Origin check adds to an
// artifact request: the default host rule, a configured pattern list, and
// an allowed cross-origin PUT that gets CORS headers. It must not allocate.
func BenchmarkSecurityCheck(b *testing.B) {
	for _, bc := range []struct {
		name, host, origin string
		sec                config.Security
	}{
		{"default-hosts", "127.0.0.1:5000", "", config.Security{}},
		{"listed-hosts", "mlflow.corp.example", "", config.Security{AllowedHosts: []string{"a.example", "*.corp.example", "b.example:443"}}},
		{"cors-origin", "localhost:5000", "https://ui.example.com", config.Security{CORSAllowedOrigins: []string{"https://*.example.com"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sec, err := newSecurity(&config.Config{Host: "127.0.0.1", Security: bc.sec}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			app := fiber.New()
			fctx := &fasthttp.RequestCtx{}
			fctx.Request.Header.SetMethod(fiber.MethodPut)
			fctx.Request.SetRequestURI("/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/model.bin")
			fctx.Request.Header.SetHost(bc.host)
			if bc.origin != "" {
				fctx.Request.Header.Set(fiber.HeaderOrigin, bc.origin)
			}
			c := app.AcquireCtx(fctx)
			defer app.ReleaseCtx(c)
			b.ReportAllocs()
			for b.Loop() {
				if sec.check(c) {
					b.Fatalf("refused: %d %s", c.Response().StatusCode(), c.Response().Body())
				}
			}
		})
	}
}
