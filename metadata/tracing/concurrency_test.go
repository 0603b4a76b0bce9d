package tracing

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestConcurrentStarts: clients (or an OTLP export and the client's
// start) racing to create the same trace all succeed, and one row with
// every tag results.
func TestConcurrentStarts(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("c", "/tmp/c", "active")
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				body := fmt.Sprintf(`{"trace": {"trace_info": {"trace_id": %q, "trace_location": {"mlflow_experiment": {"experiment_id": %q}}, "tags": {"t%d": "v"}}}}`, tid(1), exp, i)
				if st, out := c.call("POST", "/3.0/mlflow/traces", body); st != 200 {
					errs <- fmt.Sprintf("start %d: %d %v", i, st, out)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		tags := obj(obj(obj(c.ok("GET", "/3.0/mlflow/traces/"+tid(1), ""), "trace"), "trace_info"), "tags")
		if len(tags) != n+1 {
			t.Errorf("tags after concurrent starts: %v", tags)
		}
	})
}
