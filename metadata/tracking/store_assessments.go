package tracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/ferryml/ferry/metadata"
)

// assessmentSourceRunKey is upstream's AssessmentMetadataKey.SOURCE_RUN_ID:
// the assessment_metadata key (a JSON object of strings) that names the
// evaluation run an assessment came from.
const assessmentSourceRunKey = "mlflow.assessment.sourceRunId"

// assessmentDeleteBatch is the number of assessment ids per DELETE.
const assessmentDeleteBatch = 500

// deleteRunAssessments hard-deletes the assessments whose metadata names one
// of runIDs as mlflow.assessment.sourceRunId, as upstream's
// _mark_run_deleted does for runs/delete and, for every run of the
// experiment, experiments/delete. Upstream matches the JSON text with a
// substring test for `"mlflow.assessment.sourceRunId": "<run id>"` (the
// json.dumps rendering it writes) and ignores the run_id column; restore
// does not bring the rows back.
//
// The run id never becomes SQL text: candidates are pre-selected with a
// bound LIKE argument (wildcards escaped), then each candidate's metadata
// is decoded and its top-level key compared exactly in Go before the row is
// deleted by assessment_id. For one run the pattern names the run; for
// many (an experiment) it names only the key, so the table is read once
// and the work grows with assessments + runs, not their product.
func deleteRunAssessments(ctx context.Context, tx *metadata.Tx, runIDs []string) error {
	if len(runIDs) == 0 {
		return nil
	}
	want := make(map[string]bool, len(runIDs))
	for _, id := range runIDs {
		want[id] = true
	}
	pattern := `"` + assessmentSourceRunKey + `": "`
	if len(runIDs) == 1 {
		pattern += runIDs[0] + `"`
	}
	ids, err := runAssessmentIDs(ctx, tx, "%"+likeEscape(pattern)+"%", want)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		m := min(len(ids), assessmentDeleteBatch)
		args := make([]any, m)
		for i, id := range ids[:m] {
			args[i] = id
		}
		ids = ids[m:]
		if _, err := tx.Exec(ctx, "DELETE FROM assessments WHERE assessment_id IN ("+metadata.Placeholders(m)+")", args...); err != nil {
			return err
		}
	}
	return nil
}

// runAssessmentIDs returns the ids of the assessments whose metadata matches
// the LIKE pattern and names one of the runs in want as its source run.
func runAssessmentIDs(ctx context.Context, tx *metadata.Tx, pattern string, want map[string]bool) ([]string, error) {
	var ids []string
	err := tx.Each(ctx, "SELECT assessment_id, assessment_metadata FROM assessments WHERE assessment_metadata LIKE ? ESCAPE '!'", []any{pattern},
		func(rows *sql.Rows) error {
			var id string
			var meta *string
			if err := rows.Scan(&id, &meta); err != nil {
				return err
			}
			if meta != nil && want[sourceRunID(*meta)] {
				ids = append(ids, id)
			}
			return nil
		})
	return ids, err
}

// sourceRunID is the mlflow.assessment.sourceRunId value of an
// assessment_metadata JSON object, or "" when it has none (or the text is
// not such an object).
func sourceRunID(meta string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(meta), &m) != nil {
		return ""
	}
	var v string
	if json.Unmarshal(m[assessmentSourceRunKey], &v) != nil {
		return ""
	}
	return v
}

// likeEscape escapes LIKE wildcards for `LIKE ? ESCAPE '!'`.
func likeEscape(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}

// experimentRunIDs lists the ids of every run of an experiment, whatever
// its lifecycle stage.
func experimentRunIDs(ctx context.Context, tx *metadata.Tx, experimentID int64) ([]string, error) {
	var ids []string
	err := tx.Each(ctx, "SELECT run_uuid FROM runs WHERE experiment_id = ? ORDER BY run_uuid", []any{experimentID},
		func(rows *sql.Rows) error {
			var id string
			err := rows.Scan(&id)
			ids = append(ids, id)
			return err
		})
	return ids, err
}
