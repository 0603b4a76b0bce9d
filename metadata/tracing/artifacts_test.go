package tracing

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/stores"
	_ "github.com/ferryml/ferry/stores/local"
)

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTraceArtifacts(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		ctx := context.Background()
		dest := t.TempDir()
		raw, err := stores.Open(ctx, dest)
		if err != nil {
			t.Fatal(err)
		}
		opener := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), domaintest.Quiet)
		t.Cleanup(func() { opener.Close() })
		c := newClientWith(t, db, Config{Log: domaintest.Quiet, Artifacts: raw,
			OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) { return opener.Acquire(ctx, uri) }})
		proxied := c.experiment("p", "mlflow-artifacts:/7", "active")
		localDir := t.TempDir()
		local := c.experiment("l", localDir, "active")

		get := func(query string) (int, string) {
			t.Helper()
			return c.Raw("GET", "/ajax-api/2.0/mlflow/get-trace-artifact"+query, "", "")
		}
		const att = "0b7f7c2e-4d8a-4b55-9a41-2f1c7d3e9a10"

		// Spans in the table answer traces.json from them.
		c.startTrace(tid(1), proxied, 1, "")
		c.span(tid(1), proxied, "00000000000000aa", "", 5, `{"k": "\"v\""}`)
		st, body := get("?request_id=" + tid(1))
		if st != 200 || !strings.HasPrefix(body, `{"spans": [{"trace_id": "`+tid(1)+`"`) {
			t.Errorf("spans as trace data: %d %s", st, body)
		}
		resp, err := c.App.Test(mustReq("GET", "/ajax-api/3.0/mlflow/get-trace-artifact?request_id="+tid(1)), 10000)
		if err != nil {
			t.Fatal(err)
		}
		if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "text/plain" || cd != "attachment; filename=traces.json" {
			t.Errorf("headers %q %q", ct, cd)
		}
		resp.Body.Close()

		// Without spans: the stored traces.json, and attachments by UUID.
		c.startTrace(tid(2), proxied, 2, "")
		writeFile(t, filepath.Join(dest, "7/traces", tid(2), "artifacts/traces.json"), `{"spans": []}`)
		writeFile(t, filepath.Join(dest, "7/traces", tid(2), "artifacts/attachments", att), "PNG")
		if st, body := get("?request_id=" + tid(2)); st != 200 || body != `{"spans": []}` {
			t.Errorf("stored trace data: %d %s", st, body)
		}
		if st, body := get("?request_id=" + tid(2) + "&path=" + att); st != 200 || body != "PNG" {
			t.Errorf("attachment: %d %s", st, body)
		}
		for _, q := range []string{"?request_id=" + tid(2) + "&path=../traces.json", "?request_id=" + tid(2) + "&path=%2e%2e%2f" + att[6:],
			"?request_id=" + tid(2) + "&path=", "?request_id=" + tid(2) + "&path=" + strings.ToUpper(att)[:35] + "/"} {
			if st, body := get(q); st != 400 || !strings.Contains(body, "Attachment path must be a valid UUID") {
				t.Errorf("%s: %d %s", q, st, body)
			}
		}
		if st, _ := get("?request_id=" + tid(2) + "&path=" + strings.Replace(att, "0b", "0c", 1)); st != 404 {
			t.Errorf("missing attachment: %d", st)
		}
		if st, body := get(""); st != 400 || !strings.Contains(body, `Request must include the \"request_id\" query parameter.`) || !strings.Contains(body, "BAD_REQUEST") {
			t.Errorf("no request_id: %d %s", st, body)
		}
		if st, body := get("?request_id=tr-none"); st != 404 || !strings.Contains(body, "Trace with ID 'tr-none' not found.") {
			t.Errorf("unknown trace: %d %s", st, body)
		}
		if st, _ := get("?request_id=..%2F..%2Fetc"); st != 404 {
			t.Errorf("traversal in request_id: %d", st)
		}

		// A local (non-proxied) experiment location goes through OpenStore.
		c.startTrace(tid(3), local, 3, "")
		writeFile(t, filepath.Join(localDir, "traces", tid(3), "artifacts/traces.json"), `{"spans": [1]}`)
		if st, body := get("?request_id=" + tid(3)); st != 200 || body != `{"spans": [1]}` {
			t.Errorf("local trace data: %d %s", st, body)
		}

		// Deleting traces deletes their artifact directories; a location
		// a client pointed elsewhere is left alone.
		c.startTrace(tid(4), proxied, 4, "")
		writeFile(t, filepath.Join(dest, "victim/traces.json"), "keep")
		c.ok("PATCH", "/3.0/mlflow/traces/"+tid(4)+"/tags", `{"key": "mlflow.artifactLocation", "value": "mlflow-artifacts:/victim"}`)
		c.ok("POST", "/3.0/mlflow/traces/delete-traces", `{"experiment_id": "`+proxied+`", "request_ids": ["`+tid(2)+`", "`+tid(4)+`"]}`)
		c.ok("POST", "/3.0/mlflow/traces/delete-traces", `{"experiment_id": "`+local+`", "request_ids": ["`+tid(3)+`"]}`)
		for _, p := range []string{filepath.Join(dest, "7/traces", tid(2), "artifacts"), filepath.Join(localDir, "traces", tid(3), "artifacts")} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s still there (%v)", p, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dest, "victim/traces.json")); err != nil {
			t.Errorf("a hostile artifact location made Ferry delete: %v", err)
		}
	})
}
