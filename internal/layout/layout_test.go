package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ferryml/ferry"

// coreUnderMetadata are the metadata subpackages that belong to the core;
// every other metadata/<name> is a domain.
var coreUnderMetadata = map[string]bool{"schema": true, "dburi": true, "search": true, "internal": true}

// domainOf returns the domain a package belongs to ("" for none) and
// whether it is part of the metadata core. Paths are module-relative.
func domainOf(pkg string) (domain string, core bool) {
	if pkg == "metadata" {
		return "", true
	}
	rest, ok := strings.CutPrefix(pkg, "metadata/")
	if !ok {
		return "", false
	}
	top, _, _ := strings.Cut(rest, "/")
	if coreUnderMetadata[top] {
		return "", true
	}
	return top, false
}

func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// violations applies the rules to deps: package → its transitive Ferry
// dependencies, all module-relative.
func violations(deps map[string][]string) []string {
	var out []string
	for pkg, ds := range deps {
		pd, pcore := domainOf(pkg)
		for _, d := range ds {
			dd, _ := domainOf(d)
			switch {
			case pcore && dd != "":
				out = append(out, "core package "+pkg+" imports domain "+d)
			case pd != "" && dd != "" && dd != pd:
				out = append(out, "domain "+pkg+" imports another domain, "+d)
			// stores may be built from its own internal packages; those come
			// along wherever stores is allowed (drivers do not).
			case pkg == "wire" && !storesCore(d):
				out = append(out, "wire imports "+d+" (only stores is allowed)")
			case under(pkg, "stores") && !under(d, "stores"):
				out = append(out, pkg+" imports "+d+", above stores/")
			case pkg == "routes" && d != "wire" && !storesCore(d):
				out = append(out, "routes imports "+d+" (only wire is allowed)")
			}
		}
	}
	sort.Strings(out)
	return out
}

// ferryDeps lists every package of the module (tests excluded) with its
// transitive Ferry dependencies, from `go list -deps`.
func ferryDeps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Deps", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	deps := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := func(s string) (string, bool) {
			if s == module {
				return ".", true
			}
			return strings.CutPrefix(s, module+"/")
		}
		pkg, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		deps[pkg] = nil
		for _, d := range p.Deps {
			if r, ok := rel(d); ok {
				deps[pkg] = append(deps[pkg], r)
			}
		}
	}
	return deps
}

// TestImportRules fails when a package breaks the layout's import rules.
func TestImportRules(t *testing.T) {
	deps := ferryDeps(t)
	for _, must := range []string{"wire", "stores", "metadata", "metadata/tracking", "routes"} {
		if _, ok := deps[must]; !ok {
			t.Fatalf("go list did not report %s: the rules would check nothing", must)
		}
	}
	for _, v := range violations(deps) {
		t.Error(v)
	}
}

// storesCore reports whether d is the stores package or one of its
// internal packages (which it is built from).
func storesCore(d string) bool { return d == "stores" || under(d, "stores/internal") }

// TestRulesCatchViolations: each rule reports the graph that breaks it.
func TestRulesCatchViolations(t *testing.T) {
	for name, tc := range map[string]struct {
		deps map[string][]string
		want string
	}{
		"core imports domain":     {map[string][]string{"metadata/search": {"metadata/tracking"}}, "core package metadata/search imports domain"},
		"domain imports domain":   {map[string][]string{"metadata/registry": {"metadata", "metadata/tracking/http"}}, "domain metadata/registry imports another domain"},
		"wire imports proxy":      {map[string][]string{"wire": {"stores", "proxy"}}, "wire imports proxy"},
		"wire imports a driver":   {map[string][]string{"wire": {"stores", "stores/s3"}}, "wire imports stores/s3"},
		"stores imports wire":     {map[string][]string{"stores/s3": {"stores", "wire"}}, "stores/s3 imports wire, above stores/"},
		"routes imports metadata": {map[string][]string{"routes": {"wire", "metadata"}}, "routes imports metadata"},
	} {
		got := violations(tc.deps)
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%s: %q, want one violation %q", name, got, tc.want)
		}
	}
	ok := map[string][]string{
		"metadata/tracking": {"metadata", "metadata/schema", "metadata/tracking/sub", "wire", "stores", "routes"},
		"metadata":          {"metadata/schema", "metadata/dburi", "wire", "stores"},
		"proxy":             {"wire", "stores", "routes", "metadata/tracking"},
		"wire":              {"stores", "stores/internal/gctune"},
		"routes":            {"wire", "stores", "stores/internal/gctune"},
	}
	if got := violations(ok); len(got) != 0 {
		t.Errorf("allowed graph reported: %q", got)
	}
}
