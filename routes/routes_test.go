package routes

import (
	"os"
	"strings"
	"testing"
)

// TestTableIsWellFormed: one entry per method and rule, known methods and
// providers, and every rule turns into a fiber path without Flask syntax.
func TestTableIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	methods := map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}
	providers := map[Provider]bool{Proxy: true, Tracking: true, Registry: true, Tracing: true, OTLP: true, NotImplemented: true, Outside: true}
	for _, rt := range All {
		if !methods[rt.Method] || !providers[rt.Provider] || !strings.HasPrefix(rt.Path, "/") || rt.Area == "" {
			t.Errorf("malformed route %+v", rt)
		}
		for _, u := range rt.URLs("") {
			if k := rt.Method + " " + u; seen[k] {
				t.Errorf("duplicate route %s", k)
			} else {
				seen[k] = true
			}
			if fp := fiberPath(u); strings.ContainsAny(fp, "<>") {
				t.Errorf("%s: fiber path %s", u, fp)
			}
		}
	}
	if len(All) < 200 {
		t.Errorf("only %d routes: the table lost part of upstream's API", len(All))
	}
}

func TestFiberPath(t *testing.T) {
	for in, want := range map[string]string{
		"/2.0/mlflow-artifacts/artifacts/<path:artifact_path>":          "/2.0/mlflow-artifacts/artifacts/*",
		"/2.0/mlflow/logged-models/<model_id>/tags/<tag_key>":           "/2.0/mlflow/logged-models/:model_id/tags/:tag_key",
		"/gateway/gemini/v1beta/models/<endpoint_name>:generateContent": `/gateway/gemini/v1beta/models/:endpoint_name\:generateContent`,
	} {
		if got := fiberPath(in); got != want {
			t.Errorf("fiberPath(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestRoutesMarkdownMatchesTable fails when ROUTES.md drifts from the
// table; FERRY_UPDATE_ROUTES=1 rewrites it.
func TestRoutesMarkdownMatchesTable(t *testing.T) {
	const file = "../ROUTES.md"
	want := routesDoc()
	if os.Getenv("FERRY_UPDATE_ROUTES") == "1" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is not the route table; regenerate it with FERRY_UPDATE_ROUTES=1 go test ./routes/", file)
	}
}

func routesDoc() string {
	return "# Routes\n\n" +
		"Generated from the route table in `routes/table.go` by `FERRY_UPDATE_ROUTES=1 go test ./routes/`\n" +
		"(a test fails when this file drifts; `ferry routes` prints the same list). Every route upstream\n" +
		"MLflow 3.11 serves, without the `--static-prefix` (root-mounted FastAPI routes and `/metrics` never\n" +
		"take it). \"served\" names the Ferry package that serves it; **501** answers `NOT_IMPLEMENTED`;\n" +
		"**404** routes are left out on purpose (UI bundle, Databricks-only stubs, the local UI assistant)\n" +
		"and answer `ENDPOINT_NOT_FOUND` like any path upstream does not serve. With `--artifacts-only`\n" +
		"every route under `/{api,ajax-api}/{2.0,3.0}/mlflow/` except server-info answers upstream's 503 text.\n\n" +
		All.Markdown()
}
