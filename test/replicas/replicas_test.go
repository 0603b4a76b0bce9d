package replicas

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata/schema"
)

const createMsg = "empty database: creating upstream MLflow schema"

type experimentsPage struct {
	Experiments []struct {
		ID   string `json:"experiment_id"`
		Name string `json:"name"`
	} `json:"experiments"`
	NextPageToken string `json:"next_page_token"`
}

// Three replicas started at the same moment on an empty database all
// serve, the schema is created once, a page token from one replica is
// valid on the others, and `ferry db upgrade` run twice at once beside
// them is safe.
func TestThreeReplicasOnEmptyDatabase(t *testing.T) {
	for _, kind := range []string{"postgresql", "mysql", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			db := freshDatabase(t, kind)
			rs := startReplicas(t, db, 3)
			for _, r := range rs {
				r.waitHealthy(t, 90*time.Second)
			}
			if revs := db.revisions(t); !slices.Equal(revs, []string{schema.Head}) {
				t.Fatalf("alembic_version = %v, want [%s]", revs, schema.Head)
			}
			creators := 0
			for _, r := range rs {
				creators += r.countLogs(createMsg)
			}
			if db.schemaOnce && creators != 1 {
				t.Errorf("%d replicas logged %q, want exactly 1", creators, createMsg)
			}

			// Writes through every replica; seven experiments besides Default.
			var all []string
			for i := range 7 {
				var out struct {
					ID string `json:"experiment_id"`
				}
				rs[i%3].call(t, "experiments/create", map[string]any{"name": fmt.Sprintf("replica-%d-exp-%d", i%3, i)}, &out)
				all = append(all, out.ID)
			}

			// Page through on replicas 0, 1, 2, 0, ...: the token of one
			// process is valid on the next.
			var paged []string
			token := ""
			for page := 0; ; page++ {
				if page > 10 {
					t.Fatal("paging does not end")
				}
				var out experimentsPage
				req := map[string]any{"max_results": 3}
				if token != "" {
					req["page_token"] = token
				}
				rs[page%3].call(t, "experiments/search", req, &out)
				for _, e := range out.Experiments {
					paged = append(paged, e.ID)
				}
				if token = out.NextPageToken; token == "" {
					break
				}
			}
			var full experimentsPage
			rs[2].call(t, "experiments/search", map[string]any{"max_results": 100}, &full)
			var fullIDs []string
			for _, e := range full.Experiments {
				fullIDs = append(fullIDs, e.ID)
			}
			if !slices.Equal(paged, fullIDs) || len(fullIDs) != 8 {
				t.Errorf("paged across replicas %v, single search %v (want 8 ids)", paged, fullIDs)
			}
			for _, id := range all {
				if !slices.Contains(paged, id) {
					t.Errorf("experiment %s missing from the search", id)
				}
			}

			// Two upgrades at once beside the running replicas.
			errs, outs := runConcurrently(upgrade(db.uri), upgrade(db.uri))
			for i, err := range errs {
				if err != nil {
					t.Errorf("ferry db upgrade #%d: %v\n%s", i, err, outs[i])
				}
			}
			if revs := db.revisions(t); !slices.Equal(revs, []string{schema.Head}) {
				t.Fatalf("after upgrades alembic_version = %v", revs)
			}
			for _, r := range rs {
				r.call(t, "experiments/create", map[string]any{"name": fmt.Sprintf("after-upgrade-%d", r.port)}, nil)
			}
		})
	}
}

// `ferry db upgrade URI` run from two shells at once on an empty
// database: both exit 0 and the schema is created once.
func TestConcurrentUpgradeOnEmptyDatabase(t *testing.T) {
	for _, kind := range []string{"postgresql", "mysql", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			db := freshDatabase(t, kind)
			errs, outs := runConcurrently(upgrade(db.uri), upgrade(db.uri))
			creators := 0
			for i, err := range errs {
				if err != nil {
					t.Errorf("ferry db upgrade #%d: %v\n%s", i, err, outs[i])
				}
				creators += strings.Count(outs[i], createMsg)
			}
			if db.schemaOnce && creators != 1 {
				t.Errorf("%d upgrade runs logged %q, want exactly 1:\n%s", creators, createMsg, strings.Join(outs, "\n---\n"))
			}
			if revs := db.revisions(t); !slices.Equal(revs, []string{schema.Head}) {
				t.Fatalf("alembic_version = %v, want [%s]", revs, schema.Head)
			}
		})
	}
}
