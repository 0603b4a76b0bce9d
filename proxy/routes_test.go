package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/config"
	"github.com/ferryml/ferry/proxy"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/wire"
)

// appFor builds a server without artifacts (no network) for route tests.
func appFor(t *testing.T, cfg *config.Config, api routes.Handlers) *fiber.App {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := proxy.New(proxy.Options{
		Config: cfg, API: api, Registry: reg, Gatherer: reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), FerryVersion: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv.App
}

type answer struct {
	status int
	ct     string
	body   map[string]any
	text   string
}

func call(t *testing.T, app *fiber.App, method, path string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(`{}`))
	req.Host = "localhost" // the Host check refuses httptest's example.com
	req.Header.Set("Content-Type", "application/json")
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, ct: resp.Header.Get("Content-Type"), text: string(data)}
	_ = json.Unmarshal(data, &a.body)
	return a
}

// fields lists a JSON object's keys, sorted.
func fields(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// TestKnownUnimplementedIs501UnknownIs404 is the route table's rule: a
// route upstream serves and Ferry does not answers 501 NOT_IMPLEMENTED in
// the error shape wire.Send gives every error; a path upstream does not
// serve answers 404 ENDPOINT_NOT_FOUND, under /api and /ajax-api alike.
func TestKnownUnimplementedIs501UnknownIs404(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "/mlflow"} {
		app := appFor(t, &config.Config{StaticPrefix: prefix}, nil)
		var want map[string]any
		raw, _ := json.Marshal(wire.BodyOf(wire.Errorf(wire.NotImplemented, "x")))
		_ = json.Unmarshal(raw, &want)
		for _, p := range []struct{ method, path string }{
			{"POST", prefix + "/api/2.0/mlflow/webhooks"},
			{"POST", prefix + "/ajax-api/2.0/mlflow/webhooks"},
			{"GET", prefix + "/api/3.0/mlflow/traces/tr-1"},
			{"GET", prefix + "/get-artifact"},
			{"POST", prefix + "/ajax-api/2.0/mlflow/upload-artifact"},
			{"POST", "/v1/traces"}, // FastAPI: never prefixed
			// Served routes whose domain this app does not wire.
			{"POST", prefix + "/api/2.0/mlflow/runs/create"},
			{"POST", prefix + "/ajax-api/2.0/mlflow/registered-models/create"},
		} {
			a := call(t, app, p.method, p.path)
			if a.status != 501 || a.body["error_code"] != "NOT_IMPLEMENTED" || fields(a.body) != fields(want) ||
				!strings.Contains(a.body["message"].(string), p.path) {
				t.Errorf("%s %s: %d %s, want 501 NOT_IMPLEMENTED shaped as %s", p.method, p.path, a.status, a.text, fields(want))
			}
		}
		raw, _ = json.Marshal(wire.BodyOf(wire.Errorf(wire.EndpointNotFound, "x")))
		_ = json.Unmarshal(raw, &want)
		for _, p := range []struct{ method, path string }{
			{"POST", prefix + "/api/2.0/mlflow/registered-models/create-all"},
			{"GET", prefix + "/api/2.0/mlflow/no/such/route"},
			{"GET", prefix + "/api/3.0/mlflow/experiments/get"}, // 2.0-only RPC
			{"GET", prefix + "/ajax-api/2.0/mlflow/no-such-route"},
			{"POST", prefix + "/ajax-api/3.0/mlflow/traces/nope/nope/nope"},
			{"GET", prefix + "/ajax-api/9.9/anything"},
			{"GET", prefix + "/api/2.0/mlflow/unified-traces"}, // upstream: Databricks-only stub
		} {
			a := call(t, app, p.method, p.path)
			if a.status != 404 || a.body["error_code"] != "ENDPOINT_NOT_FOUND" || fields(a.body) != fields(want) {
				t.Errorf("%s %s: %d %s, want 404 ENDPOINT_NOT_FOUND shaped as %s", p.method, p.path, a.status, a.text, fields(want))
			}
		}
		if prefix != "" {
			if a := call(t, app, "POST", "/api/2.0/mlflow/registered-models/create"); a.status != 404 {
				t.Errorf("unprefixed route with --static-prefix: %d, want 404", a.status)
			}
		}
	}
}

// TestServedRoutesReachTheirHandlers: a domain's handler is mounted on both
// copies of its route, GET rules answer HEAD, and a handler for a route the
// table does not list as served stops the server from starting.
func TestServedRoutesReachTheirHandlers(t *testing.T) {
	t.Parallel()
	hit := func(c *fiber.Ctx) error { return c.SendString("hit " + c.Params("model_id")) }
	app := appFor(t, &config.Config{}, routes.Handlers{
		"POST /2.0/mlflow/experiments/create":      hit,
		"GET /2.0/mlflow/logged-models/<model_id>": hit,
	})
	for _, p := range []struct{ method, path, want string }{
		{"POST", "/api/2.0/mlflow/experiments/create", "hit "},
		{"POST", "/ajax-api/2.0/mlflow/experiments/create", "hit "},
		{"GET", "/api/2.0/mlflow/logged-models/m-1", "hit m-1"},
		{"HEAD", "/api/2.0/mlflow/logged-models/m-1", ""},
		// Static before dynamic: search is its own (unimplemented here) route.
		{"POST", "/api/2.0/mlflow/logged-models/search", "NOT_IMPLEMENTED"},
	} {
		a := call(t, app, p.method, p.path)
		if (a.status != 200 && p.want != "NOT_IMPLEMENTED") || !strings.Contains(a.text, p.want) {
			t.Errorf("%s %s: %d %q, want %q", p.method, p.path, a.status, a.text, p.want)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a handler for an unlisted route did not panic")
			}
		}()
		appFor(t, &config.Config{}, routes.Handlers{"POST /2.0/mlflow/experiments/frobnicate": hit})
	}()
}

// TestArtifactsOnlyGatesEveryTrackingPath: the gate's 503 text covers known
// and unknown /mlflow/ paths alike, as before the route table.
func TestArtifactsOnlyGatesEveryTrackingPath(t *testing.T) {
	t.Parallel()
	app := appFor(t, &config.Config{ArtifactsOnly: true, StaticPrefix: "/p"}, nil)
	for _, p := range []string{"/p/api/2.0/mlflow/registered-models/create", "/p/ajax-api/2.0/mlflow/nope", "/p/api/2.0/mlflow/artifacts/presigned-upload-url"} {
		a := call(t, app, "POST", p)
		if a.status != 503 || !strings.Contains(a.text, "Endpoint: "+p+" disabled") {
			t.Errorf("POST %s: %d %q, want the 503 gate", p, a.status, a.text)
		}
	}
	// Upstream guards /model-versions/get-artifact too.
	if a := call(t, app, "GET", "/p/model-versions/get-artifact?name=m&version=1&path=x"); a.status != 503 || !strings.Contains(a.text, "Endpoint: /p/model-versions/get-artifact disabled due to the mlflow server running in `--artifacts-only` mode") {
		t.Errorf("model-versions/get-artifact under --artifacts-only: %d %q", a.status, a.text)
	}
	if a := call(t, app, "GET", "/p/api/3.0/mlflow/server-info"); a.status != 200 {
		t.Errorf("server-info under --artifacts-only: %d %s", a.status, a.text)
	}
}

// TestProxyServesItsRoutes: every route the table gives package proxy is
// mounted with a handler (none answers the table's 501).
func TestProxyServesItsRoutes(t *testing.T) {
	t.Parallel()
	app := appFor(t, &config.Config{}, nil)
	n := 0
	for _, rt := range routes.All {
		if rt.Provider != routes.Proxy {
			continue
		}
		for _, u := range rt.URLs("") {
			path := strings.NewReplacer("<path:artifact_path>", "a/b.txt").Replace(u)
			if a := call(t, app, rt.Method, path); a.status == 501 && strings.Contains(a.text, "Ferry does not implement") {
				t.Errorf("%s %s: the 501 of an unserved route", rt.Method, path)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d proxy routes in the table", n)
	}
}
