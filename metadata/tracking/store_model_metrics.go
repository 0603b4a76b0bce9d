package tracking

import (
	"context"
	"math"
	"sort"
	"strconv"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
)

// logModelMetrics writes the metrics that name a logged model (model_id)
// to logged_model_metrics as well, as upstream's _log_model_metrics does
// for log-metric and log-batch: exact duplicates are dropped, NaN is
// stored as 0 and ±Inf as ±max float (the table has no is_nan column),
// dataset_uuid stays NULL. A row that repeats the primary key (model,
// name, timestamp, step, run) keeps its first value. Every named model
// must exist, else the whole request fails with 404 (upstream fails on
// the foreign key, after the run metrics were committed).
func logModelMetrics(ctx context.Context, tx *metadata.Tx, ri *RunInfo, ms []metricIn) error {
	type row struct {
		model, key, dsName, dsDigest string
		value                        float64
		ts, step                     int64
	}
	seen := map[row]bool{}
	var rows []row
	models := map[string]bool{}
	for _, m := range ms {
		if m.ModelID == "" {
			continue
		}
		r := row{model: m.ModelID, key: m.Key, dsName: m.DatasetName, dsDigest: m.DatasetDigest, value: m.Value, ts: m.Timestamp, step: m.Step}
		switch {
		case math.IsNaN(r.value):
			r.value = 0
		case math.IsInf(r.value, 1):
			r.value = maxFloat
		case math.IsInf(r.value, -1):
			r.value = -maxFloat
		}
		if seen[r] {
			continue
		}
		seen[r] = true
		rows = append(rows, r)
		models[m.ModelID] = true
	}
	if len(rows) == 0 {
		return nil
	}
	ids := make([]string, 0, len(models))
	for id := range models {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var got string
		err := tx.QueryRow(ctx, "SELECT model_id FROM logged_models WHERE model_id = ?", id).Scan(&got)
		if isNoRows(err) || (err == nil && got != id) {
			return loggedModelNotFound(id)
		}
		if err != nil {
			return err
		}
	}
	exp, err := strconv.ParseInt(ri.ExperimentID, 10, 64)
	if err != nil {
		return err
	}
	ins := `INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, experiment_id, run_id, dataset_uuid, dataset_name, dataset_digest)
VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`
	if tx.Dialect() == schema.MySQL {
		ins += " ON DUPLICATE KEY UPDATE model_id = model_id"
	} else {
		ins += " ON CONFLICT DO NOTHING"
	}
	for _, r := range rows {
		if _, err := tx.Exec(ctx, ins, r.model, r.key, r.ts, r.step, r.value, exp, ri.RunID, nullIfEmpty(r.dsName), nullIfEmpty(r.dsDigest)); err != nil {
			return err
		}
	}
	return nil
}

// nullIfEmpty maps "" to SQL NULL (proto: field unset).
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
