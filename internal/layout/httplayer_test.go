package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// txUses lists where src (one Go file) names metadata.Tx or calls
// .db.Read / .db.Write: what a domain's HTTP layer must not do.
func txUses(t *testing.T, name, src string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		switch x := sel.X.(type) {
		case *ast.Ident:
			if x.Name == "metadata" && sel.Sel.Name == "Tx" {
				out = append(out, fset.Position(sel.Pos()).String()+": metadata.Tx")
			}
		case *ast.SelectorExpr:
			if x.Sel.Name == "db" && (sel.Sel.Name == "Read" || sel.Sel.Name == "Write") {
				out = append(out, fset.Position(sel.Pos()).String()+": db."+sel.Sel.Name)
			}
		}
		return true
	})
	return out
}

// TestHTTPLayerOpensNoTransaction: in every domain package, the HTTP layer
// (api*.go) leaves SQL and transactions to the queries (store_*.go).
func TestHTTPLayerOpensNoTransaction(t *testing.T) {
	files, err := filepath.Glob("../../metadata/*/api*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		if _, core := domainOf(strings.TrimPrefix(filepath.Dir(p), "../../")); core {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, u := range txUses(t, p, string(src)) {
			t.Errorf("HTTP layer opens a transaction: %s", u)
		}
	}
	if checked == 0 {
		t.Fatal("no api*.go file found under metadata/<domain>/: the check would pass vacuously")
	}
}

func TestTxUsesFindsViolations(t *testing.T) {
	src := `package x
func (a *API) h() error {
	return a.db.Read(ctx, func(tx *metadata.Tx) error { return nil })
}`
	if got := txUses(t, "x.go", src); len(got) != 2 {
		t.Fatalf("txUses = %q, want db.Read and metadata.Tx", got)
	}
}
