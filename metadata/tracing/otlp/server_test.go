package otlp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/tracing"
)

// TestOpenTelemetrySDKExporter: the OpenTelemetry Go SDK's own OTLP/HTTP
// exporter (protobuf, gzip) sends nested spans to a Ferry HTTP server; the
// rows read back hold the tree, the agent's service name on the root, and
// a completed trace.
func TestOpenTelemetrySDKExporter(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		addExperiment(t, db, 3, "active")
		base := serve(t, newApp(db))
		ctx := context.Background()
		exp, err := otlptracehttp.New(ctx,
			otlptracehttp.WithEndpointURL(base+"/v1/traces"),
			otlptracehttp.WithHeaders(map[string]string{ExperimentHeader: "3"}),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		)
		if err != nil {
			t.Fatal(err)
		}
		res := resource.NewSchemaless(attribute.String("service.name", "codex_cli_rs"))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
		tr := tp.Tracer("ferry-test")
		rctx, root := tr.Start(ctx, "agent-run")
		_, child := tr.Start(rctx, "llm-call")
		child.SetAttributes(attribute.String("mlflow.spanType", "LLM"), attribute.Int64("tokens", 42))
		child.AddEvent("chunk")
		child.SetStatus(codes.Error, "rate limited")
		child.End()
		root.SetStatus(codes.Ok, "")
		root.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("exporter: %v", err)
		}

		traceID := "tr-" + root.SpanContext().TraceID().String()
		info, ok := readTrace(t, db, traceID)
		if !ok || info.exp != 3 || info.status != "OK" || info.tags["mlflow.traceName"] != "agent-run" {
			t.Fatalf("trace info: %+v", info)
		}
		spans := readSpans(t, db, traceID)
		r, c := spans[root.SpanContext().SpanID().String()], spans[child.SpanContext().SpanID().String()]
		if r.name != "agent-run" || r.parent.Valid || r.content["attributes"].(map[string]any)["service.name"] != `"codex_cli_rs"` {
			t.Errorf("root: %+v", r)
		}
		if c.parent.String != root.SpanContext().SpanID().String() || c.typ.String != "LLM" || c.status != "ERROR" ||
			c.content["attributes"].(map[string]any)["tokens"] != float64(42) || c.content["status"].(map[string]any)["message"] != "rate limited" {
			t.Errorf("child: %+v", c)
		}

		// The same spans read back through the tracing domain's traces/get,
		// as the client's get_trace asks for them (OTel proto JSON: ids as
		// base64 of the raw bytes).
		api := domaintest.NewClient(t, tracing.NewAPI(db, tracing.Config{Log: domaintest.Quiet}).Handlers())
		st, out := api.Do("GET", "/api/3.0/mlflow/traces/get?allow_partial=true&trace_id="+traceID, "", "")
		trace, _ := out["trace"].(map[string]any)
		got, _ := trace["spans"].([]any)
		if st != 200 || len(got) != 2 {
			t.Fatalf("traces/get: %d %v", st, out)
		}
		names := map[string]string{}
		for _, x := range got {
			sp := x.(map[string]any)
			names[sp["span_id"].(string)], _ = sp["name"].(string)
		}
		rootID, childID := root.SpanContext().SpanID(), child.SpanContext().SpanID()
		if names[base64.StdEncoding.EncodeToString(rootID[:])] != "agent-run" || names[base64.StdEncoding.EncodeToString(childID[:])] != "llm-call" {
			t.Errorf("traces/get spans by id: %v", names)
		}
	})
}

// zeros is an endless body source that counts what was read from it.
type zeros struct{ n atomic.Int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.n.Add(int64(len(p)))
	return len(p), nil
}

// TestHugeBodies: a 100 MB body is refused with 413 without Ferry reading
// it (announced length) or after reading at most the cap (chunked), and a
// gzip bomb stops at the cap once decompressed.
func TestHugeBodies(t *testing.T) {
	const hundredMB = 100 << 20
	// Nothing reaches the database: SQLite alone is enough.
	db, err := metadata.Open(context.Background(), "sqlite:///"+t.TempDir()+"/ferry.db", domaintest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	{
		addExperiment(t, db, 1, "active")
		// The cap is lowered so the chunked body and the bomb cost little
		// under -race; the announced length is checked against it alike.
		api := NewAPI(db, Config{Log: domaintest.Quiet})
		api.maxBody = 4 << 20
		addr := strings.TrimPrefix(serve(t, appFor(api)), "http://")
		// send writes the request on a raw connection while reading the
		// answer, so an answer sent before the body ends is seen even when
		// the server then closes the connection under the writer.
		send := func(body io.Reader, length int64, encoding string) (int, string, time.Duration) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := "POST /v1/traces HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/x-protobuf\r\n" + ExperimentHeader + ": 1\r\n"
			if encoding != "" {
				head += "Content-Encoding: " + encoding + "\r\n"
			}
			if length >= 0 {
				head += "Content-Length: " + strconv.FormatInt(length, 10) + "\r\n\r\n"
			} else {
				head += "Transfer-Encoding: chunked\r\n\r\n"
			}
			start := time.Now()
			go func() {
				if _, err := io.WriteString(conn, head); err != nil {
					return
				}
				var w io.Writer = conn
				if length < 0 {
					cw := httputil.NewChunkedWriter(conn)
					defer cw.Close()
					w = cw
				}
				_, _ = io.Copy(w, body)
			}()
			_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(raw), time.Since(start)
		}

		z := &zeros{}
		st, body, took := send(io.LimitReader(z, hundredMB), hundredMB, "")
		if st != 413 || !strings.Contains(body, "too large") {
			t.Errorf("100 MB with Content-Length: %d %s", st, body)
		}
		t.Logf("100 MB announced: %d after %v, %d bytes taken from the client", st, took, z.n.Load())
		if z.n.Load() >= hundredMB {
			t.Errorf("the whole body was read (%d bytes)", z.n.Load())
		}

		z = &zeros{}
		st, body, took = send(io.LimitReader(z, hundredMB), -1, "")
		if st != 413 {
			t.Errorf("100 MB chunked: %d %s", st, body)
		}
		t.Logf("100 MB chunked: %d after %v, %d bytes taken from the client", st, took, z.n.Load())
		if z.n.Load() >= hundredMB {
			t.Errorf("the whole chunked body was read (%d bytes)", z.n.Load())
		}

		// The bomb: one gzip member of 1 MiB of zeros (about 1 KiB), repeated
		// 100 times; a multi-member stream is one valid gzip body.
		var member, bomb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
		if _, err := io.Copy(zw, io.LimitReader(&zeros{}, 1<<20)); err != nil {
			t.Fatal(err)
		}
		zw.Close()
		for range hundredMB >> 20 {
			bomb.Write(member.Bytes())
		}
		st, body, _ = send(bytes.NewReader(bomb.Bytes()), int64(bomb.Len()), "gzip")
		if st != 413 {
			t.Errorf("gzip bomb (%d bytes → 100 MB): %d %s", bomb.Len(), st, body)
		}
		if n := count(t, db, "spans"); n != 0 {
			t.Errorf("%d spans written", n)
		}
	}
}
