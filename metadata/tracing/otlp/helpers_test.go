package otlp

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/routes"
)

// newApp serves the OTLP API through the route table, as the server does.
func newApp(db *metadata.DB) *fiber.App { return appFor(NewAPI(db, Config{Log: domaintest.Quiet})) }

func appFor(a *API) *fiber.App {
	app := fiber.New(fiber.Config{StreamRequestBody: true, DisableStartupMessage: true})
	routes.All.Mount(app, app, a.Handlers(), nil)
	return app
}

// serve runs app on a loopback listener for the test's lifetime and
// returns its base URL.
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

type answer struct {
	status int
	ctype  string
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	if err := json.Unmarshal(a.body, &out); err != nil {
		t.Fatalf("non-JSON answer %d %q", a.status, a.body)
	}
	return out
}

// post sends body to /v1/traces in-process with the given headers.
func post(t *testing.T, app *fiber.App, headers map[string]string, body []byte) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := app.Test(req, 60000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), raw}
}

func pbHeaders(exp string) map[string]string {
	return map[string]string{"Content-Type": "application/x-protobuf", ExperimentHeader: exp}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addExperiment inserts an experiment row with an explicit id.
func addExperiment(t *testing.T, db *metadata.DB, id int64, stage string) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *metadata.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace)
VALUES (?, ?, ?, ?, 1, 1, 'default')`, id, "exp-"+stage+string(rune('a'+id)), "mlflow-artifacts:/"+string(rune('0'+id)), stage)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

// id returns n bytes made of b.
func id(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// span builds an OTLP span; parent nil for a root span.
func span(trace, sid, parent []byte, name string, startNs, endNs uint64, code tracepb.Status_StatusCode, attrs ...*commonpb.KeyValue) *tracepb.Span {
	return &tracepb.Span{
		TraceId: trace, SpanId: sid, ParentSpanId: parent, Name: name,
		StartTimeUnixNano: startNs, EndTimeUnixNano: endNs,
		Status: &tracepb.Status{Code: code}, Attributes: attrs,
	}
}

// request wraps spans in one resource (with service.name when given).
func request(service string, spans ...*tracepb.Span) *collectorpb.ExportTraceServiceRequest {
	res := &resourcepb.Resource{}
	if service != "" {
		res.Attributes = []*commonpb.KeyValue{kv("service.name", str(service))}
	}
	return &collectorpb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: res, ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

type traceRow struct {
	exp, ts  int64
	exec     sql.NullInt64
	status   string
	req      sql.NullString
	tags     map[string]string
	metadata map[string]string
}

// readTrace reads a trace_info row with its tags and metadata; ok false
// when there is none.
func readTrace(t *testing.T, db *metadata.DB, id string) (traceRow, bool) {
	t.Helper()
	ctx := context.Background()
	var r traceRow
	found := false
	err := db.Read(ctx, func(tx *metadata.Tx) error {
		err := tx.QueryRow(ctx, "SELECT experiment_id, timestamp_ms, execution_time_ms, status, request_preview FROM trace_info WHERE request_id = ?", id).
			Scan(&r.exp, &r.ts, &r.exec, &r.status, &r.req)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		r.tags, r.metadata = map[string]string{}, map[string]string{}
		k := tx.Dialect().Quote("key")
		for table, m := range map[string]map[string]string{"trace_tags": r.tags, "trace_request_metadata": r.metadata} {
			err := tx.Each(ctx, "SELECT "+k+", value FROM "+table+" WHERE request_id = ?", []any{id}, func(rows *sql.Rows) error {
				var kk, v string
				if err := rows.Scan(&kk, &v); err != nil {
					return err
				}
				m[kk] = v
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, found
}

type spanDBRow struct {
	exp        int64
	parent     sql.NullString
	name       string
	typ        sql.NullString
	status     string
	start      int64
	end        sql.NullInt64
	duration   sql.NullInt64
	content    map[string]any
	contentRaw string
}

// readSpans reads a trace's span rows keyed by span id.
func readSpans(t *testing.T, db *metadata.DB, traceID string) map[string]spanDBRow {
	t.Helper()
	ctx := context.Background()
	out := map[string]spanDBRow{}
	err := db.Read(ctx, func(tx *metadata.Tx) error {
		q := "SELECT span_id, experiment_id, parent_span_id, name, " + tx.Dialect().Quote("type") +
			", status, start_time_unix_nano, end_time_unix_nano, duration_ns, content FROM spans WHERE trace_id = ?"
		return tx.Each(ctx, q, []any{traceID}, func(rows *sql.Rows) error {
			var sid string
			var r spanDBRow
			if err := rows.Scan(&sid, &r.exp, &r.parent, &r.name, &r.typ, &r.status, &r.start, &r.end, &r.duration, &r.contentRaw); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(r.contentRaw), &r.content); err != nil {
				return err
			}
			out[sid] = r
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// count returns the rows of a table.
func count(t *testing.T, db *metadata.DB, table string) int {
	t.Helper()
	var n int
	err := db.Read(context.Background(), func(tx *metadata.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
