package tracking

import (
	"context"
	"database/sql"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// insertTrace writes a bare trace_info row (traces are tier 3: no route
// creates them yet).
func insertTrace(t *testing.T, api *API, traceID, experimentID string) {
	t.Helper()
	exp, err := strconv.ParseInt(experimentID, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	err = api.db.Write(context.Background(), func(tx *metadata.Tx) error {
		_, err := tx.Exec(context.Background(), "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, status) VALUES (?, ?, ?, ?)",
			traceID, exp, int64(1700000000000), "OK")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// insertAssessment writes an assessments row as upstream's create_assessment
// would; runCol and meta are nil for NULL.
func insertAssessment(t *testing.T, api *API, id, traceID string, runCol, meta any) {
	t.Helper()
	err := api.db.Write(context.Background(), func(tx *metadata.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO assessments (assessment_id, trace_id, name, assessment_type, value, created_timestamp,
last_updated_timestamp, source_type, source_id, run_id, valid, assessment_metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, traceID, "quality", "feedback", "0.5", int64(1700000000000), int64(1700000000000), "LLM_JUDGE", "judge", runCol, true, meta)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assessmentIDs lists the assessment ids left in the database, sorted.
func assessmentIDs(t *testing.T, api *API) []string {
	t.Helper()
	var ids []string
	err := api.db.Read(context.Background(), func(tx *metadata.Tx) error {
		ids = nil
		return tx.Each(context.Background(), "SELECT assessment_id FROM assessments", nil, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

// sourceRunMeta is assessment_metadata as upstream writes it (json.dumps).
func sourceRunMeta(runID string) string {
	return `{"mlflow.assessment.sourceRunId": "` + runID + `"}`
}

func TestRunDeleteDeletesAssessments(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		run, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		other, _ := c.newRun(`{"experiment_id": "` + exp + `"}`)
		insertTrace(t, api, "tr-1", exp)

		// Deleted with the run: the metadata names it (alone, or among
		// other keys in json.dumps order).
		insertAssessment(t, api, "a-meta", "tr-1", nil, sourceRunMeta(run))
		insertAssessment(t, api, "a-meta-more", "tr-1", nil,
			`{"mlflow.assessment.judgeCost": "0.01", "mlflow.assessment.sourceRunId": "`+run+`", "k": "v"}`)
		// Kept: another run, no metadata, the run only in the run_id
		// column (upstream ignores it), the id as a prefix, the
		// sourceRunId text inside another value, a case variant, and
		// compact JSON (upstream's pattern is json.dumps' ": ").
		keep := []string{"a-col", "a-compact", "a-embedded", "a-empty", "a-none", "a-other", "a-prefix", "a-upper"}
		insertAssessment(t, api, "a-other", "tr-1", other, sourceRunMeta(other))
		insertAssessment(t, api, "a-none", "tr-1", nil, nil)
		insertAssessment(t, api, "a-empty", "tr-1", nil, `{}`)
		insertAssessment(t, api, "a-col", "tr-1", run, nil)
		insertAssessment(t, api, "a-prefix", "tr-1", nil, sourceRunMeta(run+"0"))
		insertAssessment(t, api, "a-embedded", "tr-1", nil, `{"note": "{\"mlflow.assessment.sourceRunId\": \"`+run+`\"}"}`)
		insertAssessment(t, api, "a-upper", "tr-1", nil, sourceRunMeta(strings.ToUpper(run)))
		insertAssessment(t, api, "a-compact", "tr-1", nil, `{"mlflow.assessment.sourceRunId":"`+run+`"}`)

		c.mustPost("/runs/delete", `{"run_id": "`+run+`"}`)
		if got := assessmentIDs(t, api); strings.Join(got, ",") != strings.Join(keep, ",") {
			t.Fatalf("after delete: %v, want %v", got, keep)
		}
		if st := c.run(run)["info"].(map[string]any)["lifecycle_stage"]; st != "deleted" {
			t.Fatalf("run stage: %v", st)
		}
		// Restore does not bring them back.
		c.mustPost("/runs/restore", `{"run_id": "`+run+`"}`)
		if got := assessmentIDs(t, api); strings.Join(got, ",") != strings.Join(keep, ",") {
			t.Fatalf("after restore: %v, want %v", got, keep)
		}
		// Deleting an already deleted run deletes again (no state check).
		c.mustPost("/runs/delete", `{"run_id": "`+run+`"}`)
		insertAssessment(t, api, "a-late", "tr-1", nil, sourceRunMeta(run))
		c.mustPost("/runs/delete", `{"run_id": "`+run+`"}`)
		if got := assessmentIDs(t, api); strings.Join(got, ",") != strings.Join(keep, ",") {
			t.Fatalf("after second delete: %v, want %v", got, keep)
		}
		// An unknown run deletes nothing.
		c.expectErrors([]errCase{{"unknown run", "/runs/delete", `{"run_id": "` + strings.Repeat("f", 32) + `"}`, 404, "RESOURCE_DOES_NOT_EXIST", "not found"}})

		// Experiment deletion deletes the assessments of all its runs,
		// including runs deleted before; restore does not bring them back.
		exp2 := c.mustPost("/experiments/create", `{"name": "e2"}`)["experiment_id"].(string)
		r2, _ := c.newRun(`{"experiment_id": "` + exp2 + `"}`)
		r3, _ := c.newRun(`{"experiment_id": "` + exp2 + `"}`)
		c.mustPost("/runs/delete", `{"run_id": "`+r2+`"}`)
		insertTrace(t, api, "tr-2", exp2)
		insertAssessment(t, api, "b-r2", "tr-2", nil, sourceRunMeta(r2))
		insertAssessment(t, api, "b-r3", "tr-2", nil, sourceRunMeta(r3))
		insertAssessment(t, api, "b-other", "tr-2", nil, sourceRunMeta(other))
		c.mustPost("/experiments/delete", `{"experiment_id": "`+exp2+`"}`)
		keep2 := append(append([]string{}, keep...), "b-other")
		sort.Strings(keep2)
		if got := assessmentIDs(t, api); strings.Join(got, ",") != strings.Join(keep2, ",") {
			t.Fatalf("after experiment delete: %v, want %v", got, keep2)
		}
		c.mustPost("/experiments/restore", `{"experiment_id": "`+exp2+`"}`)
		if got := assessmentIDs(t, api); strings.Join(got, ",") != strings.Join(keep2, ",") {
			t.Fatalf("after experiment restore: %v, want %v", got, keep2)
		}

		// LIKE wildcards in a run id are escaped: "a_b%" must not match
		// "aXbYZ", and the JSON check keeps "a_b%x".
		insertAssessment(t, api, "c-wild", "tr-1", nil, sourceRunMeta("aXbYZ"))
		insertAssessment(t, api, "c-wild2", "tr-1", nil, sourceRunMeta("a_b%x"))
		insertAssessment(t, api, "c-exact", "tr-1", nil, sourceRunMeta("a_b%"))
		err := api.db.Write(context.Background(), func(tx *metadata.Tx) error {
			return deleteRunAssessments(context.Background(), tx, []string{"a_b%", "a_b%", "' OR 1=1 --"})
		})
		if err != nil {
			t.Fatal(err)
		}
		keep3 := append(append([]string{}, keep2...), "c-wild", "c-wild2")
		sort.Strings(keep3)
		if got := assessmentIDs(t, api); strings.Join(got, ",") != strings.Join(keep3, ",") {
			t.Fatalf("wildcards: %v, want %v", got, keep3)
		}
	})
}

func TestDeleteRunAssessmentsBatches(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "e"}`)["experiment_id"].(string)
		insertTrace(t, api, "tr-1", exp)
		// Many runs (the experiment-delete path: one scan, ids matched
		// in Go), and more matching assessments than one DELETE takes.
		var runIDs []string
		for i := range 107 {
			runIDs = append(runIDs, "run"+strconv.Itoa(i))
		}
		err := api.db.Write(context.Background(), func(tx *metadata.Tx) error {
			for i := range assessmentDeleteBatch + 3 {
				_, err := tx.Exec(context.Background(), `INSERT INTO assessments (assessment_id, trace_id, name, assessment_type, value, created_timestamp,
last_updated_timestamp, source_type, valid, assessment_metadata) VALUES (?, ?, 'q', 'feedback', '1', 1, 1, 'CODE', ?, ?)`,
					"x"+strconv.Itoa(i), "tr-1", true, sourceRunMeta(runIDs[i%len(runIDs)]))
				if err != nil {
					return err
				}
			}
			insertKept := `INSERT INTO assessments (assessment_id, trace_id, name, assessment_type, value, created_timestamp,
last_updated_timestamp, source_type, valid, assessment_metadata) VALUES ('kept', 'tr-1', 'q', 'feedback', '1', 1, 1, 'CODE', ?, ?)`
			if _, err := tx.Exec(context.Background(), insertKept, true, sourceRunMeta("run-other")); err != nil {
				return err
			}
			return deleteRunAssessments(context.Background(), tx, runIDs)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := assessmentIDs(t, api); strings.Join(got, ",") != "kept" {
			t.Fatalf("left: %v", got)
		}
	})
}
