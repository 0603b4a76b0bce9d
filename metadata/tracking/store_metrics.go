package tracking

import (
	"context"
	"database/sql"
	"math"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/wire"
)

// metricHistory reads a page of metric key's history of run id (limit 0: all, from offset).
func (a *API) metricHistory(ctx context.Context, id, key string, limit, offset int64) ([]Metric, string, error) {
	var metrics []Metric
	var next string
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		k, ts := tx.Dialect().Quote("key"), tx.Dialect().Quote("timestamp")
		q := "SELECT " + k + ", value, " + ts + ", step, is_nan FROM metrics WHERE run_uuid = ? AND " + exactEq(tx.Dialect(), "key") +
			" ORDER BY " + ts + ", step, value"
		args := []any{id, key}
		if limit > 0 {
			q += " LIMIT ? OFFSET ?"
			args = append(args, limit+1, offset)
		}
		skip := int64(0)
		err := tx.Each(ctx, q, args, func(rows *sql.Rows) error {
			m, err := scanMetric(rows)
			if err != nil {
				return err
			}
			if limit == 0 && skip < offset {
				skip++
				return nil
			}
			metrics = append(metrics, m)
			return nil
		})
		if err != nil {
			return err
		}
		if limit > 0 && int64(len(metrics)) > limit {
			metrics = metrics[:limit]
			next = wire.PageToken(offset + limit)
		}
		return nil
	})
	return metrics, next, err
}

// metricHistoryBulkInterval reads metric key of every run in runIDs, sampled to maxResults steps (within start..end when both are given).
func (a *API) metricHistoryBulkInterval(ctx context.Context, runIDs []string, key string, start, end int64, hasStart, hasEnd bool, maxResults int64) ([]MetricWithRunID, error) {
	var out []MetricWithRunID
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		k, ts := tx.Dialect().Quote("key"), tx.Dialect().Quote("timestamp")
		q := "SELECT run_uuid, " + k + ", value, " + ts + ", step, is_nan FROM metrics WHERE run_uuid = ? AND " + exactEq(tx.Dialect(), "key") +
			" ORDER BY step, " + ts + ", value"
		// Every run's history, ordered as the final answer wants it.
		hist := make(map[string][]MetricWithRunID, len(runIDs))
		for _, id := range runIDs {
			if _, done := hist[id]; done {
				continue
			}
			var ms []MetricWithRunID
			err := tx.Each(ctx, q, []any{id, key}, func(rows *sql.Rows) error {
				var run string
				var m Metric
				var v float64
				var isNaN bool
				var stamp *int64
				if err := rows.Scan(&run, &m.Key, &v, &stamp, &m.Step, &isNaN); err != nil {
					return err
				}
				if run != id { // MySQL's collation matches other cases
					return nil
				}
				mv := MetricWithRunID{Key: m.Key, Value: jsonFloat(v), Step: m.Step, RunID: run}
				if isNaN {
					mv.Value = jsonFloat(math.NaN())
				}
				if stamp != nil {
					mv.Timestamp = *stamp
				}
				ms = append(ms, mv)
				return nil
			})
			if err != nil {
				return err
			}
			hist[id] = ms
		}
		steps := sampledSteps(runIDs, hist, start, end, hasStart && hasEnd, int(maxResults))
		for _, id := range runIDs {
			n := 0
			for _, m := range hist[id] {
				if n == maxHistoryPerRunInterval {
					break
				}
				if steps[m.Step] {
					out = append(out, m)
					n++
				}
			}
		}
		return nil
	})
	return out, err
}
