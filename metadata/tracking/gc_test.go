package tracking

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/local"
	"github.com/ferryml/ferry/wire"
)

// gcFixture is an API serving artifacts from a local destination, with
// file:// roots opened through a stores.Opener, and a settable clock.
type gcFixture struct {
	api  *API
	c    *apiClient
	dest string
	now  time.Time
}

func newGCFixture(t *testing.T, db *metadata.DB) *gcFixture {
	t.Helper()
	f := &gcFixture{dest: t.TempDir(), now: time.UnixMilli(1700000000000)}
	ls, err := local.New(f.dest)
	if err != nil {
		t.Fatal(err)
	}
	m := stores.NewMetrics(prometheus.NewRegistry())
	opener := stores.NewOpener(m, quiet)
	t.Cleanup(func() { opener.Close() })
	f.api = NewAPI(db, APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet,
		Artifacts: stores.Instrument(ls, "local", m, quiet),
		OpenStore: func(ctx context.Context, uri string) (stores.Store, func(), error) { return opener.Acquire(ctx, uri) },
	})
	f.api.now = func() time.Time { return f.now }
	f.c = &apiClient{domaintest.NewClient(t, f.api.Handlers())}
	return f
}

// writeRel puts a file holding its own name at rel under dir (made as
// needed) and returns its path.
func writeRel(t *testing.T, dir, rel string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	domaintest.WriteFile(t, p, rel)
	return p
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// count counts rows of table where col = v.
func count(t *testing.T, db *metadata.DB, table, col string, v any) int {
	t.Helper()
	var n int
	err := db.Read(context.Background(), func(tx *metadata.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table+" WHERE "+col+" = ?", v).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code wire.ErrorCode, msg string) {
	t.Helper()
	we, ok := err.(*wire.Error)
	if !ok || we.Code != code || !strings.Contains(we.Message, msg) {
		t.Fatalf("error = %v, want %s containing %q", err, code, msg)
	}
}

// TestGarbageCollect: upstream `mlflow gc` semantics on the three
// databases — what is selected with and without --older-than, explicit
// ids checked, artifacts deleted through the store layer (proxied roots
// under the destination, file:// roots through their own store), rows
// gone, everything else untouched, and a second run a no-op.
func TestGarbageCollect(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		c := f.c
		ctx := context.Background()
		expA := c.mustPost("/experiments/create", `{"name": "a"}`)["experiment_id"].(string)
		old, _ := c.newRun(`{"experiment_id": "` + expA + `"}`)
		alive, _ := c.newRun(`{"experiment_id": "` + expA + `"}`)
		young, _ := c.newRun(`{"experiment_id": "` + expA + `"}`)
		c.mustPost("/runs/log-batch", `{"run_id": "`+old+`", "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}],
			"params": [{"key": "p", "value": "v"}], "tags": [{"key": "t", "value": "v"}]}`)
		oldArt := writeRel(t, f.dest, expA+"/"+old+"/artifacts/model/weights.bin")
		aliveArt := writeRel(t, f.dest, expA+"/"+alive+"/artifacts/a.txt")

		expB := c.mustPost("/experiments/create", `{"name": "b", "tags": [{"key": "k", "value": "v"}]}`)["experiment_id"].(string)
		inB, _ := c.newRun(`{"experiment_id": "` + expB + `"}`)
		c.mustPost("/runs/log-metric", `{"run_id": "`+inB+`", "key": "m", "value": 2, "timestamp": 1, "step": 0}`)
		c.mustPost("/logged-models", `{"experiment_id": "`+expB+`", "name": "lm"}`)
		bArt := writeRel(t, f.dest, expB+"/"+inB+"/artifacts/b.txt")

		elsewhere := t.TempDir()
		expC := c.mustPost("/experiments/create", `{"name": "c", "artifact_location": "file://`+filepath.ToSlash(elsewhere)+`"}`)["experiment_id"].(string)
		inC, _ := c.newRun(`{"experiment_id": "` + expC + `"}`)
		cArt := writeRel(t, elsewhere, inC+"/artifacts/c.txt")
		siblingArt := writeRel(t, elsewhere, "other/keep.txt")

		// At T0: old and inC deleted, experiment b deleted (its run too).
		c.mustPost("/runs/delete", `{"run_id": "`+old+`"}`)
		c.mustPost("/runs/delete", `{"run_id": "`+inC+`"}`)
		c.mustPost("/experiments/delete", `{"experiment_id": "`+expB+`"}`)
		f.now = f.now.Add(59 * time.Minute)
		c.mustPost("/runs/delete", `{"run_id": "`+young+`"}`)
		f.now = f.now.Add(time.Minute) // T0 + 1 h

		// Explicit ids are checked first; nothing is purged on error.
		_, err := f.api.GarbageCollect(ctx, GCOptions{RunIDs: []string{alive}})
		wantCode(t, err, wire.InvalidParameterValue, "is not in `deleted` lifecycle stage")
		_, err = f.api.GarbageCollect(ctx, GCOptions{RunIDs: []string{young}, OlderThan: 30 * time.Minute, OlderThanText: "30m"})
		wantCode(t, err, wire.InvalidParameterValue, "is not older than the required age. Only runs older than 30m")
		_, err = f.api.GarbageCollect(ctx, GCOptions{RunIDs: []string{"0123456789abcdef0123456789abcdef"}})
		wantCode(t, err, wire.ResourceDoesNotExist, "0123456789abcdef0123456789abcdef")
		_, err = f.api.GarbageCollect(ctx, GCOptions{ExperimentIDs: []string{expA}})
		wantCode(t, err, wire.InvalidParameterValue, "Experiment "+expA+" is not in `deleted` lifecycle stage")
		_, err = f.api.GarbageCollect(ctx, GCOptions{ExperimentIDs: []string{"x'; DROP TABLE runs;--"}})
		wantCode(t, err, wire.InvalidParameterValue, "Invalid experiment ID")
		if !exists(oldArt) || count(t, db, "runs", "run_uuid", old) != 1 {
			t.Fatal("a failed collection purged something")
		}

		var lines []string
		res, err := f.api.GarbageCollect(ctx, GCOptions{OlderThan: 30 * time.Minute, OlderThanText: "30m",
			Report: func(l string) { lines = append(lines, l) }})
		if err != nil || res.Runs != 3 || res.Experiments != 1 {
			t.Fatalf("GarbageCollect = %+v, %v; want 3 runs (old, inB, inC), 1 experiment", res, err)
		}
		if len(lines) != 4 || !strings.Contains(strings.Join(lines, "\n"), "Run with ID "+old+" has been permanently deleted.") {
			t.Errorf("report %q", lines)
		}
		for _, p := range []string{oldArt, bArt, cArt} {
			if exists(p) {
				t.Errorf("artifact %s survived", p)
			}
		}
		for _, p := range []string{aliveArt, siblingArt} {
			if !exists(p) {
				t.Errorf("artifact %s of a kept run was deleted", p)
			}
		}
		for _, id := range []string{old, inB, inC} {
			for _, table := range []string{"runs", "metrics", "latest_metrics", "params", "tags"} {
				if n := count(t, db, table, "run_uuid", id); n != 0 {
					t.Errorf("%d rows of %s left for purged run %s", n, table, id)
				}
			}
		}
		for _, id := range []string{alive, young} {
			if count(t, db, "runs", "run_uuid", id) != 1 {
				t.Errorf("run %s purged", id)
			}
		}
		for _, table := range []string{"experiments", "experiment_tags", "logged_models"} {
			if n := count(t, db, table, "experiment_id", expB); n != 0 {
				t.Errorf("%d rows of %s left for purged experiment", n, table)
			}
		}
		if st, _ := c.get("/experiments/get", url.Values{"experiment_id": {expB}}); st != 404 {
			t.Errorf("purged experiment: get = %d", st)
		}

		if res, err := f.api.GarbageCollect(ctx, GCOptions{OlderThan: 30 * time.Minute}); err != nil || res != (GCResult{}) {
			t.Errorf("second collection = %+v, %v; want nothing", res, err)
		}
		// Without --older-than every deleted run goes.
		if res, err := f.api.GarbageCollect(ctx, GCOptions{}); err != nil || res.Runs != 1 {
			t.Errorf("collection without age = %+v, %v; want the young run", res, err)
		}
		if count(t, db, "runs", "run_uuid", young) != 0 || count(t, db, "runs", "run_uuid", alive) != 1 {
			t.Error("wrong runs purged without --older-than")
		}
	})
}

// TestGarbageCollectConcurrent: two collections at once (two replicas or
// shells) purge every deleted run exactly once between them, without
// errors.
func TestGarbageCollectConcurrent(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		exp := f.c.mustPost("/experiments/create", `{"name": "x"}`)["experiment_id"].(string)
		const n = 12
		for range n {
			id, _ := f.c.newRun(`{"experiment_id": "` + exp + `"}`)
			f.c.mustPost("/runs/log-metric", `{"run_id": "`+id+`", "key": "m", "value": 2, "timestamp": 1, "step": 0}`)
			writeRel(t, f.dest, exp+"/"+id+"/artifacts/f.txt")
			f.c.mustPost("/runs/delete", `{"run_id": "`+id+`"}`)
		}
		f.c.mustPost("/experiments/delete", `{"experiment_id": "`+exp+`"}`)
		var wg sync.WaitGroup
		results := make([]GCResult, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { results[i], errs[i] = f.api.GarbageCollect(context.Background(), GCOptions{}) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if r, e := results[0].Runs+results[1].Runs, results[0].Experiments+results[1].Experiments; r != n || e != 1 {
			t.Errorf("collections purged %d runs and %d experiments (%+v), want %d and 1", r, e, results, n)
		}
		_ = filepath.WalkDir(f.dest, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("artifact left: %s", p)
			}
			return nil
		})
	})
}
