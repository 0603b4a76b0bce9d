package tracing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

type client struct {
	*domaintest.Client
	db *metadata.DB
}

func newClient(t *testing.T, db *metadata.DB) client {
	return newClientWith(t, db, Config{Log: domaintest.Quiet})
}

func newClientWith(t *testing.T, db *metadata.DB, cfg Config) client {
	return client{domaintest.NewClient(t, NewAPI(db, cfg).Handlers()), db}
}

// call sends a JSON body (or a query for GET when body starts with "?");
// path is below /api.
func (c client) call(method, path, body string) (int, map[string]any) {
	c.T.Helper()
	if strings.HasPrefix(body, "?") {
		return c.Do(method, "/api"+path+body, "", "")
	}
	return c.Do(method, "/api"+path, "application/json", body)
}

func (c client) ok(method, path, body string) map[string]any {
	c.T.Helper()
	st, out := c.call(method, path, body)
	if st != 200 {
		c.T.Fatalf("%s %s %s: %d %v", method, path, body, st, out)
	}
	return out
}

// fails checks an error answer's status, code and (when not "") that the
// message contains msg.
func (c client) fails(method, path, body string, status int, code, msg string) {
	c.T.Helper()
	st, out := c.call(method, path, body)
	m, _ := out["message"].(string)
	if st != status || out["error_code"] != code || !strings.Contains(m, msg) {
		c.T.Errorf("%s %s %s: %d %v, want %d %s %q", method, path, body, st, out, status, code, msg)
	}
}

// experiment inserts an experiment row and returns its id.
func (c client) experiment(name, location, stage string) string {
	c.T.Helper()
	var id int64
	err := c.db.Write(context.Background(), func(tx *metadata.Tx) error {
		if _, err := tx.Exec(context.Background(), "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) VALUES (?, ?, ?, 1, 1, 'default')", name, location, stage); err != nil {
			return err
		}
		return tx.QueryRow(context.Background(), "SELECT experiment_id FROM experiments WHERE name = ?", name).Scan(&id)
	})
	if err != nil {
		c.T.Fatal(err)
	}
	return fmt.Sprint(id)
}

// exec runs SQL on the database (test setup: spans as tracing/otlp writes
// them).
func (c client) exec(q string, args ...any) {
	c.T.Helper()
	err := c.db.Write(context.Background(), func(tx *metadata.Tx) error {
		_, err := tx.Exec(context.Background(), q, args...)
		return err
	})
	if err != nil {
		c.T.Fatal(err)
	}
}

// count is SELECT COUNT(*) … on the database.
func (c client) count(q string, args ...any) int {
	c.T.Helper()
	var n int
	err := c.db.Read(context.Background(), func(tx *metadata.Tx) error {
		return tx.QueryRow(context.Background(), q, args...).Scan(&n)
	})
	if err != nil {
		c.T.Fatal(err)
	}
	return n
}

// startTrace creates a v3 trace and returns its info.
func (c client) startTrace(id, exp string, ms int64, extra string) map[string]any {
	c.T.Helper()
	body := fmt.Sprintf(`{"trace": {"trace_info": {"trace_id": %q, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": %q}}, "request_time": %q, "state": "OK"%s}}}`,
		id, exp, protoTimestamp(ms), extra)
	out := c.ok("POST", "/3.0/mlflow/traces", body)
	return obj(obj(out, "trace"), "trace_info")
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func list(m map[string]any, k string) []any {
	l, _ := m[k].([]any)
	return l
}

// traceIDs is the trace_id (v3) or request_id (v2) of each entry.
func traceIDs(xs []any) []string {
	out := []string{}
	for _, x := range xs {
		m := x.(map[string]any)
		if id, ok := m["trace_id"].(string); ok {
			out = append(out, id)
		} else {
			out = append(out, m["request_id"].(string))
		}
	}
	return out
}

// tid makes a v3 trace id from a small number.
func tid(n int) string { return fmt.Sprintf("tr-%032x", n) }

func mustReq(method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}
