package otlp

import (
	"testing"

	"github.com/ferryml/ferry/routes"
)

// TestHandlersMatchRouteTable: the routes the table marks as otlp's are
// exactly those API.Handlers serves.
func TestHandlersMatchRouteTable(t *testing.T) {
	t.Parallel()
	table := map[string]bool{}
	for _, rt := range routes.All {
		if rt.Provider == routes.OTLP {
			table[rt.Key()] = true
		}
	}
	served := (&API{}).Handlers()
	if len(table) == 0 || len(table) != len(served) {
		t.Fatalf("route table marks %v as otlp's, API.Handlers serves %d", table, len(served))
	}
	for k := range served {
		if !table[k] {
			t.Errorf("API.Handlers serves %q, which the table does not mark as otlp's", k)
		}
	}
}
