package tracing

import (
	"sort"
	"testing"

	"github.com/ferryml/ferry/routes"
)

// TestHandlersMatchRouteTable: the routes the table says package tracing
// serves are exactly those API.Handlers serves.
func TestHandlersMatchRouteTable(t *testing.T) {
	t.Parallel()
	var table, served []string
	for _, rt := range routes.All {
		if rt.Provider == routes.Tracing {
			table = append(table, rt.Key())
		}
	}
	for k := range (&API{}).Handlers() {
		served = append(served, k)
	}
	sort.Strings(table)
	sort.Strings(served)
	if len(table) == 0 || len(table) != len(served) {
		t.Fatalf("route table marks %d routes as tracing's, API.Handlers serves %d:\n%q\n%q", len(table), len(served), table, served)
	}
	for i := range table {
		if table[i] != served[i] {
			t.Fatalf("route table %q, API.Handlers %q", table[i], served[i])
		}
	}
}
