package tracing

import (
	"testing"

	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/routes"
)

// TestHandlersMatchRouteTable: the routes the table says package tracing
// serves are exactly those API.Handlers serves.
func TestHandlersMatchRouteTable(t *testing.T) {
	t.Parallel()
	domaintest.HandlersMatchRouteTable(t, routes.Tracing, (&API{}).Handlers())
}
