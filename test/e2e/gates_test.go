package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// artifactRoute is one mlflow-artifacts route as a request, with the Flask
// rule upstream names in its 503 text.
type artifactRoute struct {
	method, path, rule string
}

// artifactRoutes are every mlflow-artifacts route (path after
// <api>/2.0/mlflow-artifacts), with a concrete artifact path.
var artifactRoutes = []artifactRoute{
	{http.MethodGet, "/artifacts", "/mlflow-artifacts/artifacts"},
	{http.MethodGet, "/artifacts/a/b.txt", "/mlflow-artifacts/artifacts/<path:artifact_path>"},
	{http.MethodHead, "/artifacts/a/b.txt", "/mlflow-artifacts/artifacts/<path:artifact_path>"},
	{http.MethodPut, "/artifacts/a/b.txt", "/mlflow-artifacts/artifacts/<path:artifact_path>"},
	{http.MethodDelete, "/artifacts/a/b.txt", "/mlflow-artifacts/artifacts/<path:artifact_path>"},
	{http.MethodPost, "/mpu/create/a", "/mlflow-artifacts/mpu/create/<path:artifact_path>"},
	{http.MethodPost, "/mpu/complete/a", "/mlflow-artifacts/mpu/complete/<path:artifact_path>"},
	{http.MethodPost, "/mpu/abort/a", "/mlflow-artifacts/mpu/abort/<path:artifact_path>"},
	{http.MethodGet, "/presigned/a/b.txt", "/mlflow-artifacts/presigned/<path:artifact_path>"},
}

// TestNoServeArtifacts: with --no-serve-artifacts every artifact route on
// both mounts answers 503 text/html with upstream's text naming the Flask
// rule (static prefix included), before any path or body validation; the
// server routes keep working.
func TestNoServeArtifacts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, prefix string
		args, env    []string
	}{
		{"flag", "", []string{"--no-serve-artifacts"}, nil},
		{"flag with prefix", "/mlflow", []string{"--no-serve-artifacts", "--static-prefix", "/mlflow"}, nil},
		{"env", "", nil, []string{"MLFLOW_SERVE_ARTIFACTS=false"}},
	}
	for _, c := range cases {
		prefix := c.prefix
		t.Run(c.name, func(t *testing.T) {
			f := startFerryEnv(t, c.env, c.args...)
			for _, api := range apis {
				for _, rt := range artifactRoutes {
					for _, path := range []string{rt.path, strings.Replace(rt.path, "a/b.txt", "..%2F..%2Fsentinel.txt", 1)} {
						r := do(t, rt.method, f.Art(api, path), strings.NewReader(`{"path":"x"}`))
						want := "Endpoint: " + prefix + api + "/2.0" + rt.rule + " disabled due to the mlflow server running with `--no-serve-artifacts`. To enable artifacts server functionality, run `mlflow server` with `--serve-artifacts`"
						if rt.method == http.MethodHead {
							want = ""
						}
						what := rt.method + " " + api + path
						expectBody(t, what, r, 503, "text/html; charset=utf-8", want)
					}
				}
			}
			if r := get(t, f.URL("/version")); r.Status != 200 {
				t.Errorf("/version with --no-serve-artifacts: %s", r)
			}
			if entries := tempFiles(t, f.Dest); len(entries) != 0 {
				t.Errorf("temp files: %v", entries)
			}
		})
	}
}

// TestArtifactsOnly: tracking routes answer 503 with upstream's text,
// artifact routes and server-info work.
func TestArtifactsOnly(t *testing.T) {
	t.Parallel()
	f := startFerry(t, "--artifacts-only")
	tracking := []struct{ method, path string }{
		{http.MethodGet, "/api/2.0/mlflow/experiments/search"},
		{http.MethodPost, "/api/2.0/mlflow/runs/create"},
		{http.MethodGet, "/ajax-api/2.0/mlflow/experiments/get-by-name"},
		{http.MethodPost, "/api/2.0/mlflow/registered-models/create"},
		{http.MethodPost, "/ajax-api/2.0/mlflow/runs/log-batch"},
		{http.MethodPost, "/api/3.0/mlflow/traces"},
	}
	for _, tr := range tracking {
		r := do(t, tr.method, f.URL(tr.path), strings.NewReader(`{}`), "Content-Type", jsonCT)
		want := "Endpoint: " + tr.path + " disabled due to the mlflow server running in `--artifacts-only` mode. To enable tracking server functionality, run `mlflow server` without `--artifacts-only`"
		expectBody(t, tr.method+" "+tr.path, r, 503, "text/html; charset=utf-8", want)
	}
	for _, api := range apis {
		u := f.Art(api, "/artifacts/only/x.txt")
		mustPut(t, u, []byte("x"))
		if r := get(t, u); r.Status != 200 || string(r.Body) != "x" {
			t.Errorf("artifact GET in artifacts-only mode: %s", r)
		}
		expectBody(t, "list", get(t, f.Art(api, "/artifacts?path=only")), 200, jsonCT, `{"files":[{"path":"x.txt","is_dir":false,"file_size":1}]}`)
		r := get(t, f.URL(api+"/3.0/mlflow/server-info"))
		if r.Status != 200 || !regexp.MustCompile(`^\{"store_type":(null|"[A-Za-z]+"),"workspaces_enabled":false\}$`).Match(r.Body) {
			t.Errorf("server-info in artifacts-only mode: %s", r)
		}
	}
}

// TestStaticPrefix: with --static-prefix /mlflow the prefixed health,
// version, server-info and artifact routes work and the unprefixed ones
// are 404; /metrics stays at the root.
func TestStaticPrefix(t *testing.T) {
	t.Parallel()
	f := startFerry(t, "--static-prefix", "/mlflow")
	root := "http://" + f.Addr()
	expectBody(t, "prefixed /health", get(t, root+"/mlflow/health"), 200, "", "OK")
	expectBody(t, "prefixed /version", get(t, root+"/mlflow/version"), 200, "", "3.11.2.dev0")
	for _, api := range apis {
		u := root + "/mlflow" + api + "/2.0/mlflow-artifacts/artifacts/p/x.txt"
		expectBody(t, "prefixed PUT", put(t, u, []byte("prefixed")), 200, jsonCT, emptyJSON)
		expectBody(t, "prefixed GET", get(t, u), 200, "text/plain", "prefixed")
		expectBody(t, "prefixed list", get(t, root+"/mlflow"+api+"/2.0/mlflow-artifacts/artifacts?path=p"), 200, jsonCT,
			`{"files":[{"path":"x.txt","is_dir":false,"file_size":8}]}`)
		expectBody(t, "prefixed server-info", get(t, root+"/mlflow"+api+"/3.0/mlflow/server-info"), 200, jsonCT,
			`{"store_type":"SqlStore","workspaces_enabled":false}`)
		r := do(t, http.MethodPost, root+"/mlflow"+api+"/2.0/mlflow-artifacts/mpu/create/p", strings.NewReader(`{"path":"a"}`), "Content-Type", jsonCT)
		expectBody(t, "prefixed mpu", r, 501, jsonCT, mpuNotSupported)

		for _, unprefixed := range []struct{ method, path string }{
			{http.MethodGet, api + "/2.0/mlflow-artifacts/artifacts/p/x.txt"},
			{http.MethodPut, api + "/2.0/mlflow-artifacts/artifacts/p/y.txt"},
			{http.MethodGet, api + "/2.0/mlflow-artifacts/artifacts?path=p"},
			{http.MethodGet, api + "/3.0/mlflow/server-info"},
		} {
			if r := do(t, unprefixed.method, root+unprefixed.path, strings.NewReader("z")); r.Status != 404 {
				t.Errorf("unprefixed %s %s: %s, want 404", unprefixed.method, unprefixed.path, r)
			}
		}
	}
	for _, p := range []string{"/health", "/version", "/mlflowx/health", "/mlflow"} {
		if r := get(t, root+p); r.Status != 404 {
			t.Errorf("GET %s with --static-prefix /mlflow: %s, want 404", p, r)
		}
	}
	if r := get(t, root+"/metrics"); r.Status != 200 {
		t.Errorf("/metrics: %s", r)
	}
}

// TestBadStaticPrefix: prefixes without a leading slash or with a trailing
// slash make the binary exit non-zero with a message naming the problem,
// whether they come from the flag or from MLFLOW_STATIC_PREFIX.
func TestBadStaticPrefix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		args  []string
		env   []string
		wants []string
	}{
		{"no leading slash", []string{"--static-prefix", "mlflow"}, nil, []string{`--static-prefix "mlflow" must begin with a '/'`}},
		{"trailing slash", []string{"--static-prefix", "/mlflow/"}, nil, []string{`--static-prefix "/mlflow/" should not end with a '/'`}},
		{"both", []string{"--static-prefix=mlflow/"}, nil, []string{"must begin with a '/'", "should not end with a '/'"}},
		{"lone slash", []string{"--static-prefix", "/"}, nil, []string{"should not end with a '/'"}},
		{"from env", nil, []string{"MLFLOW_STATIC_PREFIX=mlflow"}, []string{"must begin with a '/'"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			port := freePort(t)
			args := append([]string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--artifacts-destination", dir + "/art"}, c.args...)
			cmd := exec.CommandContext(ctx, ferryBin, args...)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(), c.env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("ferry kept running with a bad prefix; output:\n%s", out.String())
			}
			var ee *exec.ExitError
			if err == nil || !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit code; output:\n%s", err, out.String())
			}
			for _, w := range c.wants {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "ferry listening") {
				t.Errorf("ferry started listening before refusing its configuration:\n%s", out.String())
			}
		})
	}
}

// TestVersionAndServerInfo covers GET /version, server-info's exact shape on
// both mounts, X-Ferry-Version on every response (errors included), the
// `ferry version` output and ferry_build_info agreeing with them.
func TestVersionAndServerInfo(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(ferryBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("ferry version: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`^ferry (\S+) \(MLflow API 3\.11\.2\.dev0\)\n$`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ferry version printed %q, want \"ferry <version> (MLflow API 3.11.2.dev0)\\n\"", out)
	}
	version := m[1]

	f := startFerry(t)
	expectBody(t, "/version", get(t, f.URL("/version")), 200, "", "3.11.2.dev0")
	expectBody(t, "/health", get(t, f.URL("/health")), 200, "", "OK")
	for _, api := range apis {
		expectBody(t, "server-info", get(t, f.URL(api+"/3.0/mlflow/server-info")), 200, jsonCT,
			`{"store_type":"SqlStore","workspaces_enabled":false}`)
	}
	for _, u := range []string{
		f.URL("/version"), f.URL("/health"), f.URL("/api/3.0/mlflow/server-info"), "http://" + f.Addr() + "/metrics",
		f.Art("/api", "/artifacts/none.txt"), f.Art("/api", "/artifacts/..%2Fx"), f.URL("/no/such/route"),
	} {
		if r := get(t, u); r.Header.Get("X-Ferry-Version") != version {
			t.Errorf("GET %s: X-Ferry-Version %q, want %q", u, r.Header.Get("X-Ferry-Version"), version)
		}
	}
	if got := f.Metrics(t).Sum("ferry_build_info", "version="+version, "mlflow_version=3.11.2.dev0"); got != 1 {
		t.Errorf("ferry_build_info{version=%q,mlflow_version=\"3.11.2.dev0\"} = %v, want 1", version, got)
	}
	if out, err := exec.Command(ferryBin, "version", "extra").CombinedOutput(); err == nil {
		t.Errorf("ferry version with an argument succeeded: %s", out)
	}
}

// TestWorkspaceHeader: a non-blank X-MLFLOW-WORKSPACE header is refused with
// 500 FEATURE_DISABLED JSON on every route but server-info; a blank one is
// ignored, and a refused upload stores nothing.
func TestWorkspaceHeader(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	mustPut(t, f.Art("/api", "/artifacts/ws/a.txt"), []byte("a"))
	const disabled = `{"error_code":"FEATURE_DISABLED","message":"Workspace APIs are not available: workspaces are not enabled on this server","sqlstate":"KAM00","error_class":"FEATURE_DISABLED"}`
	refused := []struct{ method, url string }{
		{http.MethodGet, f.URL("/health")},
		{http.MethodGet, f.URL("/version")},
		{http.MethodGet, f.URL("/api/2.0/mlflow/experiments/search")},
	}
	for _, api := range apis {
		for _, rt := range artifactRoutes {
			if rt.method != http.MethodHead {
				refused = append(refused, struct{ method, url string }{rt.method, f.Art(api, strings.Replace(rt.path, "a/b.txt", "ws/a.txt", 1))})
			}
		}
	}
	for _, ws := range []string{"team-a", "default", " x "} {
		for _, rq := range refused {
			r := do(t, rq.method, rq.url, strings.NewReader(`{"path":"z"}`), "X-MLFLOW-WORKSPACE", ws, "Content-Type", jsonCT)
			expectBody(t, rq.method+" "+rq.url+" workspace "+ws, r, 500, jsonCT, disabled)
		}
	}
	// The refused PUT and DELETE changed nothing.
	expectBody(t, "object after refused requests", get(t, f.Art("/api", "/artifacts/ws/a.txt")), 200, "text/plain", "a")
	for _, api := range apis {
		expectBody(t, "server-info with workspace", get(t, f.URL(api+"/3.0/mlflow/server-info"), "X-MLFLOW-WORKSPACE", "team-a"), 200, jsonCT,
			`{"store_type":"SqlStore","workspaces_enabled":false}`)
	}
	for _, blank := range []string{"", "   ", "\t"} {
		r := get(t, f.Art("/api", "/artifacts/ws/a.txt"), "X-MLFLOW-WORKSPACE", blank)
		if r.Status != 200 || string(r.Body) != "a" {
			t.Errorf("blank workspace header %q: %s, want 200", blank, r)
		}
	}
}
