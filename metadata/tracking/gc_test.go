package tracking

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/tracing"
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
// shells) purge every deleted run, logged model and finished job exactly
// once between them, without errors.
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
			model, _ := newLoggedModel(t, f.c, exp, id, filepath.Join(f.dest, exp))
			if st, out := f.c.send("DELETE", "/logged-models/"+model, ``); st != 200 {
				t.Fatalf("delete model: %d %v", st, out)
			}
			f.c.mustPost("/runs/delete", `{"run_id": "`+id+`"}`)
		}
		f.c.mustPost("/experiments/delete", `{"experiment_id": "`+exp+`"}`)
		jobs := map[string]int{}
		for i := range gcJobBatch + 7 {
			jobs[fmt.Sprintf("job-%04d", i)] = 2
		}
		insertJobs(t, db, 1, jobs)
		var wg sync.WaitGroup
		var mu sync.Mutex
		reported := map[string]int{}
		results := make([]GCResult, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				results[i], errs[i] = f.api.GarbageCollect(context.Background(), GCOptions{Jobs: true, Report: func(l string) {
					mu.Lock()
					reported[l]++
					mu.Unlock()
				}})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		sum := GCResult{Runs: results[0].Runs + results[1].Runs, LoggedModels: results[0].LoggedModels + results[1].LoggedModels,
			Experiments: results[0].Experiments + results[1].Experiments, Jobs: results[0].Jobs + results[1].Jobs}
		if want := (GCResult{Runs: n, LoggedModels: n, Experiments: 1, Jobs: len(jobs)}); sum != want {
			t.Errorf("collections purged %+v between them (%+v), want %+v", sum, results, want)
		}
		for l, k := range reported {
			if k != 1 {
				t.Errorf("reported %d times: %s", k, l)
			}
		}
		_ = filepath.WalkDir(f.dest, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("artifact left: %s", p)
			}
			return nil
		})
	})
}

// newLoggedModel creates a logged model in exp with a param and a tag,
// a metric logged for it through run, and a file under its artifact
// location in dir (the directory its experiment's root maps to); it
// returns the model id and the file's path.
func newLoggedModel(t *testing.T, c *apiClient, exp, run, dir string) (string, string) {
	t.Helper()
	m := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`", "params": [{"key": "p", "value": "v"}], "tags": [{"key": "t", "value": "v"}]}`)["model"].(map[string]any)
	id := m["info"].(map[string]any)["model_id"].(string)
	c.mustPost("/runs/log-batch", `{"run_id": "`+run+`", "metrics": [{"key": "acc_`+id+`", "value": 1, "timestamp": 1, "step": 0, "model_id": "`+id+`"}]}`)
	return id, writeRel(t, dir, "models/"+id+"/artifacts/model.pkl")
}

// TestGarbageCollectLoggedModels: 3.11's purge of deleted logged models
// on the three databases — selection by last_updated_timestamp_ms with
// --older-than, named models checked before anything is purged,
// artifacts deleted through the store layer (proxied and file:// roots),
// the row gone with its params, tags and metrics, everything else kept,
// and a second collection a no-op.
func TestGarbageCollectLoggedModels(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		c := f.c
		ctx := context.Background()
		expA := c.mustPost("/experiments/create", `{"name": "a"}`)["experiment_id"].(string)
		run, _ := c.newRun(`{"experiment_id": "` + expA + `"}`)
		dirA := filepath.Join(f.dest, expA)
		old, oldArt := newLoggedModel(t, c, expA, run, dirA)
		young, youngArt := newLoggedModel(t, c, expA, run, dirA)
		alive, aliveArt := newLoggedModel(t, c, expA, run, dirA)
		elsewhere := t.TempDir()
		expC := c.mustPost("/experiments/create", `{"name": "c", "artifact_location": "file://`+filepath.ToSlash(elsewhere)+`"}`)["experiment_id"].(string)
		runC, _ := c.newRun(`{"experiment_id": "` + expC + `"}`)
		inC, cArt := newLoggedModel(t, c, expC, runC, elsewhere)
		siblingArt := writeRel(t, elsewhere, "other/keep.txt")
		deadRun, _ := c.newRun(`{"experiment_id": "` + expA + `"}`)

		// At T0: old, inC and a run deleted; young 59 minutes later.
		for _, id := range []string{old, inC} {
			if st, out := c.send("DELETE", "/logged-models/"+id, ``); st != 200 {
				t.Fatalf("delete %s: %d %v", id, st, out)
			}
		}
		c.mustPost("/runs/delete", `{"run_id": "`+deadRun+`"}`)
		f.now = f.now.Add(59 * time.Minute)
		if st, out := c.send("DELETE", "/logged-models/"+young, ``); st != 200 {
			t.Fatalf("delete young: %d %v", st, out)
		}
		f.now = f.now.Add(time.Minute) // T0 + 1 h

		// Named models are checked before anything is purged: the run
		// named with a bad model stays.
		_, err := f.api.GarbageCollect(ctx, GCOptions{RunIDs: []string{deadRun}, LoggedModelIDs: []string{old, alive}})
		wantCode(t, err, wire.InvalidParameterValue, "Logged model "+alive+" is not in `deleted` lifecycle stage")
		_, err = f.api.GarbageCollect(ctx, GCOptions{LoggedModelIDs: []string{young}, OlderThan: 30 * time.Minute, OlderThanText: "30m"})
		wantCode(t, err, wire.InvalidParameterValue, "Logged model "+young+" is not older than the required age. Only logged models older than 30m")
		_, err = f.api.GarbageCollect(ctx, GCOptions{LoggedModelIDs: []string{"m-0123456789abcdef0123456789abcdef"}})
		wantCode(t, err, wire.ResourceDoesNotExist, "m-0123456789abcdef0123456789abcdef")
		if !exists(oldArt) || count(t, db, "logged_models", "model_id", old) != 1 || count(t, db, "runs", "run_uuid", deadRun) != 1 {
			t.Fatal("a failed collection purged something")
		}

		var lines []string
		res, err := f.api.GarbageCollect(ctx, GCOptions{OlderThan: 30 * time.Minute, OlderThanText: "30m",
			Report: func(l string) { lines = append(lines, l) }})
		if err != nil || res != (GCResult{Runs: 1, LoggedModels: 2}) {
			t.Fatalf("GarbageCollect = %+v, %v; want 1 run and 2 logged models (old, inC)", res, err)
		}
		want := "Logged model with ID " + old + " has been permanently deleted."
		if len(lines) != 3 || !slices.Contains(lines, want) {
			t.Errorf("report %q, want 3 lines with %q", lines, want)
		}
		for _, p := range []string{oldArt, cArt} {
			if exists(p) {
				t.Errorf("artifact %s survived", p)
			}
		}
		for _, p := range []string{youngArt, aliveArt, siblingArt} {
			if !exists(p) {
				t.Errorf("artifact %s of a kept model was deleted", p)
			}
		}
		for _, id := range []string{old, inC} {
			for _, table := range []string{"logged_models", "logged_model_params", "logged_model_tags", "logged_model_metrics"} {
				if n := count(t, db, table, "model_id", id); n != 0 {
					t.Errorf("%d rows of %s left for purged model %s", n, table, id)
				}
			}
		}
		for _, id := range []string{young, alive} {
			for _, table := range []string{"logged_models", "logged_model_params", "logged_model_tags", "logged_model_metrics"} {
				if n := count(t, db, table, "model_id", id); n != 1 {
					t.Errorf("%d rows of %s for kept model %s, want 1", n, table, id)
				}
			}
		}
		// The run that logged the purged models' metrics keeps its own.
		if n := count(t, db, "metrics", "run_uuid", run); n != 3 {
			t.Errorf("run %s has %d metric rows, want 3", run, n)
		}
		if st, _ := c.get("/logged-models/"+old, url.Values{"allow_deleted": {"True"}}); st != 404 {
			t.Errorf("purged model: get = %d", st)
		}

		if res, err := f.api.GarbageCollect(ctx, GCOptions{OlderThan: 30 * time.Minute}); err != nil || res != (GCResult{}) {
			t.Errorf("second collection = %+v, %v; want nothing", res, err)
		}
		// Named without --older-than, the young one goes; alive stays.
		if res, err := f.api.GarbageCollect(ctx, GCOptions{LoggedModelIDs: []string{young, young}}); err != nil || res != (GCResult{LoggedModels: 1}) {
			t.Errorf("collection of the young model = %+v, %v", res, err)
		}
		if exists(youngArt) || count(t, db, "logged_models", "model_id", young) != 0 || count(t, db, "logged_models", "model_id", alive) != 1 {
			t.Error("wrong models purged by name")
		}
	})
}

// insertJobs adds job records id → status created at the given time.
func insertJobs(t *testing.T, db *metadata.DB, created int64, jobs map[string]int) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *metadata.Tx) error {
		for id, status := range jobs {
			if _, err := tx.Exec(context.Background(), "INSERT INTO jobs (id, creation_time, job_name, params, status, retry_count, last_update_time) VALUES (?, ?, 'j', '{}', ?, 0, ?)",
				id, created, status, created); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGarbageCollectJobs: --jobs / --job-ids on the three databases —
// only finished jobs (SUCCEEDED, FAILED, TIMEOUT, CANCELED) go, by
// creation_time with --older-than, only the named ones with --job-ids
// (missing or unfinished ones skipped silently), none without either
// option, and more than one batch.
func TestGarbageCollectJobs(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		ctx := context.Background()
		t0 := f.now.UnixMilli()
		insertJobs(t, db, t0, map[string]int{"pending": 0, "running": 1, "succeeded": 2, "failed": 3, "timeout": 4, "canceled": 5, "recovery": 6})
		insertJobs(t, db, t0+59*60*1000, map[string]int{"young": 2})
		f.now = f.now.Add(time.Hour)
		jobCount := func() int { t.Helper(); return count(t, db, "jobs", "job_name", "j") }

		if res, err := f.api.GarbageCollect(ctx, GCOptions{}); err != nil || res != (GCResult{}) || jobCount() != 8 {
			t.Fatalf("collection without --jobs = %+v, %v, %d jobs left; want jobs untouched", res, err, jobCount())
		}
		var lines []string
		res, err := f.api.GarbageCollect(ctx, GCOptions{JobIDs: []string{"succeeded", "pending", "nope", "succeeded"},
			Report: func(l string) { lines = append(lines, l) }})
		if err != nil || res != (GCResult{Jobs: 1}) || !slices.Equal(lines, []string{"Job with ID succeeded has been permanently deleted."}) {
			t.Fatalf("--job-ids = %+v, %v, %q; want only succeeded", res, err, lines)
		}
		res, err = f.api.GarbageCollect(ctx, GCOptions{Jobs: true, OlderThan: 30 * time.Minute, OlderThanText: "30m"})
		if err != nil || res != (GCResult{Jobs: 3}) {
			t.Fatalf("--jobs --older-than 30m = %+v, %v; want failed, timeout, canceled", res, err)
		}
		for id, want := range map[string]int{"pending": 1, "running": 1, "recovery": 1, "young": 1, "failed": 0, "timeout": 0, "canceled": 0} {
			if n := count(t, db, "jobs", "id", id); n != want {
				t.Errorf("job %s: %d rows, want %d", id, n, want)
			}
		}
		if res, err := f.api.GarbageCollect(ctx, GCOptions{Jobs: true}); err != nil || res != (GCResult{Jobs: 1}) || jobCount() != 3 {
			t.Errorf("--jobs = %+v, %v, %d left; want young gone, 3 unfinished left", res, err, jobCount())
		}

		// Past one batch: 2 full batches and one more.
		many := map[string]int{}
		for i := range 2*gcJobBatch + 1 {
			many[fmt.Sprintf("bulk-%04d", i)] = 3
		}
		insertJobs(t, db, t0, many)
		if res, err := f.api.GarbageCollect(ctx, GCOptions{Jobs: true}); err != nil || res.Jobs != len(many) || jobCount() != 3 {
			t.Errorf("bulk --jobs = %+v, %v, %d left; want %d deleted, 3 left", res, err, jobCount(), len(many))
		}
	})
}

// TestGarbageCollectAgainstExperimentPurge: an experiment purge and run
// and logged model purges of its runs and models at the same moment (two
// collections, one past them, the other in them) finish without error.
// Both lock the experiment's row first, then a model's or run's row
// before its children. Without the child order this failed with a
// deadlock in 3 runs out of 3 (PostgreSQL 40P01, MariaDB 1213); without
// the experiment's row, MariaDB still deadlocked in 3 of 20 runs
// (`go test -count=20 -run 'TestGarbageCollectAgainstExperimentPurge/mysql'`),
// the purge holding a model's experiment_id index entry and waiting for
// its primary row while the model's delete held the row and needed the
// entry.
func TestGarbageCollectAgainstExperimentPurge(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		ctx := context.Background()
		for round := range 4 {
			exp := f.c.mustPost("/experiments/create", `{"name": "x`+strconv.Itoa(round)+`"}`)["experiment_id"].(string)
			var runs, models []string
			for range 6 {
				run, _ := f.c.newRun(`{"experiment_id": "` + exp + `"}`)
				id, _ := newLoggedModel(t, f.c, exp, run, filepath.Join(f.dest, exp))
				if st, out := f.c.send("DELETE", "/logged-models/"+id, ``); st != 200 {
					t.Fatalf("delete model: %d %v", st, out)
				}
				f.c.mustPost("/runs/log-metric", `{"run_id": "`+run+`", "key": "m", "value": 2, "timestamp": 1, "step": 0}`)
				f.c.mustPost("/runs/delete", `{"run_id": "`+run+`"}`)
				runs = append(runs, run)
				models = append(models, id)
			}
			f.c.mustPost("/experiments/delete", `{"experiment_id": "`+exp+`"}`)
			expID, _ := strconv.ParseInt(exp, 10, 64)
			var wg sync.WaitGroup
			errs := make([]error, 1+len(models)+len(runs))
			wg.Go(func() { _, errs[0] = f.api.hardDeleteExperiment(ctx, expID) })
			for i, id := range models {
				wg.Go(func() { _, errs[1+i] = f.api.gcLoggedModel(ctx, id, nil) })
			}
			for i, id := range runs {
				wg.Go(func() { _, errs[1+len(models)+i] = f.api.gcRun(ctx, id, false, GCOptions{}, nil) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if n := count(t, db, "experiments", "experiment_id", expID); n != 0 {
				t.Errorf("round %d: experiment left", round)
			}
			for _, id := range models {
				if n := count(t, db, "logged_models", "model_id", id) + count(t, db, "logged_model_metrics", "model_id", id); n != 0 {
					t.Errorf("round %d: rows of model %s left", round, id)
				}
			}
			for _, id := range runs {
				if n := count(t, db, "runs", "run_uuid", id) + count(t, db, "metrics", "run_uuid", id); n != 0 {
					t.Errorf("round %d: rows of run %s left", round, id)
				}
			}
		}
	})
}

// TestGarbageCollectAgainstTraceDelete: a client deleting the traces of
// a deleted experiment while a collection purges it. The purge deletes
// spans and trace_info by experiment (index entries, then rows); the trace
// delete took a trace's row and then its cascading spans, the opposite
// order, and PostgreSQL and MariaDB answered one of the two with a deadlock.
func TestGarbageCollectAgainstTraceDelete(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		traces := domaintest.NewClient(t, tracing.NewAPI(db, tracing.Config{Log: quiet}).Handlers())
		ctx := context.Background()
		for round := range 6 {
			exp := f.c.mustPost("/experiments/create", `{"name": "t`+strconv.Itoa(round)+`"}`)["experiment_id"].(string)
			expID, _ := strconv.ParseInt(exp, 10, 64)
			var ids []string
			err := db.Write(ctx, func(tx *metadata.Tx) error {
				for i := range 12 {
					id := fmt.Sprintf("tr-%d-%d", round, i)
					ids = append(ids, id)
					if _, err := tx.Exec(ctx, "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, status) VALUES (?, ?, ?, ?)", id, expID, int64(1700000000000+i), "OK"); err != nil {
						return err
					}
					for s := range 3 {
						if _, err := tx.Exec(ctx, "INSERT INTO spans (trace_id, experiment_id, span_id, name, type, status, start_time_unix_nano, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
							id, expID, fmt.Sprintf("s%d", s), "span", "CHAIN", "OK", int64(s), "{}"); err != nil {
							return err
						}
					}
					if _, err := tx.Exec(ctx, "INSERT INTO trace_tags ("+tx.Dialect().Quote("key")+", value, request_id) VALUES (?, ?, ?)", "k", "v", id); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			f.c.mustPost("/experiments/delete", `{"experiment_id": "`+exp+`"}`)
			var wg sync.WaitGroup
			var purgeErr error
			wg.Go(func() { _, purgeErr = f.api.hardDeleteExperiment(ctx, expID) })
			answers := make([]string, len(ids))
			for i, id := range ids {
				wg.Go(func() {
					st, out := traces.Do("POST", "/api/2.0/mlflow/traces/delete-traces", "application/json",
						`{"experiment_id": "`+exp+`", "request_ids": ["`+id+`"]}`)
					if st != 200 {
						answers[i] = fmt.Sprintf("%d %v", st, out)
					}
				})
			}
			wg.Wait()
			if purgeErr != nil {
				t.Fatalf("round %d: purge: %v", round, purgeErr)
			}
			for i, a := range answers {
				if a != "" {
					t.Errorf("round %d: delete %s: %s", round, ids[i], a)
				}
			}
			if n := count(t, db, "trace_info", "experiment_id", expID) + count(t, db, "spans", "experiment_id", expID); n != 0 {
				t.Errorf("round %d: %d trace rows left", round, n)
			}
			if n := count(t, db, "experiments", "experiment_id", expID); n != 0 {
				t.Errorf("round %d: experiment left", round)
			}
		}
	})
}

// TestGarbageCollectUnresolvableRoot: a run or logged model whose artifact
// root no store can serve (here an unknown scheme) is purged anyway, with
// the artifacts reported as not deleted, as upstream's gc does on an
// InvalidUrlException.
func TestGarbageCollectUnresolvableRoot(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		f := newGCFixture(t, db)
		c := f.c
		ctx := context.Background()
		exp := c.mustPost("/experiments/create", `{"name": "unresolvable"}`)["experiment_id"].(string)
		run, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		model := c.mustPost("/logged-models", `{"experiment_id": "`+exp+`", "name": "lm"}`)["model"].(map[string]any)["info"].(map[string]any)["model_id"].(string)
		err := db.Write(ctx, func(tx *metadata.Tx) error {
			if _, err := tx.Exec(ctx, "UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", "nosuchscheme://bucket/"+run, run); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE logged_models SET artifact_location = ? WHERE model_id = ?", "nosuchscheme://bucket/"+model, model)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c.mustPost("/runs/delete", `{"run_id": "`+run+`"}`)
		if st, out := c.send("DELETE", "/logged-models/"+model, ``); st != 200 {
			t.Fatalf("delete logged model: %d %v", st, out)
		}

		var lines []string
		res, err := f.api.GarbageCollect(ctx, GCOptions{Report: func(l string) { lines = append(lines, l) }})
		if err != nil || res.Runs != 1 || res.LoggedModels != 1 {
			t.Fatalf("GarbageCollect = %+v, %v; want the run and the model purged", res, err)
		}
		report := strings.Join(lines, "\n")
		for _, what := range []string{"run " + run, "logged model " + model} {
			if !strings.Contains(report, "Unable to resolve the artifact URL 'nosuchscheme://bucket/") || !strings.Contains(report, what) {
				t.Errorf("report does not say the artifacts of %s were skipped:\n%s", what, report)
			}
		}
		if count(t, db, "runs", "run_uuid", run) != 0 || count(t, db, "logged_models", "model_id", model) != 0 {
			t.Error("rows left after the collection")
		}
	})
}
