package otlp

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
)

// Column limit of entity_associations ids (VARCHAR(36)).
const maxAssocIDChars = 36

// writeExtras writes upstream 3.11's log_spans extras, in the request's
// transaction after the spans and trace rows (so the trace_info rows are
// locked and the span_metrics foreign key finds its span):
//   - span_metrics: each span's cost (input_cost, output_cost, total_cost);
//   - trace metadata mlflow.trace.tokenUsage / mlflow.trace.cost: the
//     trace's stored sums plus this request's, and trace_metrics rows with
//     the token totals; mlflow.trace.session / mlflow.trace.user from the
//     session.id / user.id attributes when the trace has none. All of these
//     are skipped for a trace start-trace finalized (its values are
//     authoritative);
//   - trace tags from mlflow.traceTag.<key> attributes (replaced);
//   - with runID (x-mlflow-run-id), a trace → run entity association for
//     each trace whose root span is in the request.
func writeExtras(ctx context.Context, tx *metadata.Tx, rows []spanRow, aggs []*traceAgg, runID string, nowMs int64) error {
	d := tx.Dialect()
	k, v := d.Quote("key"), d.Quote("value")

	var spanMetrics []any
	for i := range rows {
		r := &rows[i]
		for _, key := range costKeys {
			if f, ok := r.extras.cost[key]; ok {
				spanMetrics = append(spanMetrics, r.traceID, r.spanID, key, f)
			}
		}
	}
	if err := insertRows(ctx, tx, "span_metrics", []string{"trace_id", "span_id", k, v}, []string{"trace_id", "span_id", k}, []string{v}, spanMetrics); err != nil {
		return err
	}

	stored, err := storedSums(ctx, tx, aggs)
	if err != nil {
		return err
	}
	var meta, metaIfAbsent, traceMetrics, tags []any
	for _, a := range aggs {
		if !a.finalized {
			if a.usage != nil {
				total := parseStored(stored[a.id][metaTokenUsage], tokenKeys, json.Number.Int64)
				for key, n := range a.usage {
					total[key] = addSat(total[key], n)
				}
				meta = append(meta, metaTokenUsage, usageJSON(total), a.id)
				for i, key := range tokenKeys {
					if n, ok := total[key]; ok || i < 3 {
						traceMetrics = append(traceMetrics, a.id, key, float64(n))
					}
				}
			}
			if a.cost != nil {
				total := parseStored(stored[a.id][metaCost], costKeys, json.Number.Float64)
				for key, f := range a.cost {
					total[key] += f
				}
				meta = append(meta, metaCost, costJSON(total), a.id)
			}
			if a.session != "" && fits(metaSession, a.session) {
				metaIfAbsent = append(metaIfAbsent, metaSession, a.session, a.id)
			}
			if a.user != "" && fits(metaUser, a.user) {
				metaIfAbsent = append(metaIfAbsent, metaUser, a.user, a.id)
			}
		}
		last := map[string]string{}
		var order []string
		for _, t := range a.tags {
			if _, seen := last[t.k]; !seen {
				order = append(order, t.k)
			}
			last[t.k] = t.v
		}
		for _, key := range order {
			if fits(key, last[key]) {
				tags = append(tags, key, last[key], a.id)
			}
		}
	}
	kvCols := []string{k, v, "request_id"}
	kvKey := []string{k, "request_id"}
	for _, w := range []struct {
		table          string
		cols, conflict []string
		update         []string
		args           []any
	}{
		{"trace_request_metadata", kvCols, kvKey, []string{v}, meta},
		{"trace_request_metadata", kvCols, kvKey, nil, metaIfAbsent},
		{"trace_metrics", []string{"request_id", k, v}, []string{"request_id", k}, []string{v}, traceMetrics},
		{"trace_tags", kvCols, kvKey, []string{v}, tags},
	} {
		if err := insertRows(ctx, tx, w.table, w.cols, w.conflict, w.update, w.args); err != nil {
			return err
		}
	}
	return linkToRun(ctx, tx, aggs, runID, nowMs)
}

// linkToRun associates the request's completed traces with the run named
// by x-mlflow-run-id, as upstream's export_traces calls link_traces_to_run
// for them. Upstream logs and ignores a failed link; an id the association
// columns cannot hold (over 36 bytes, not UTF-8, a NUL) is likewise
// ignored here, so the link never fails the request.
func linkToRun(ctx context.Context, tx *metadata.Tx, aggs []*traceAgg, runID string, nowMs int64) error {
	if runID == "" || len(runID) > maxAssocIDChars || !utf8.ValidString(runID) || strings.ContainsRune(runID, 0) {
		return nil
	}
	var links []any
	for _, a := range aggs {
		if a.root != nil && len(a.id) <= maxAssocIDChars {
			links = append(links, uuid.NewString(), "trace", a.id, "run", runID, nowMs)
		}
	}
	cols := []string{"association_id", "source_type", "source_id", "destination_type", "destination_id", "created_time"}
	return insertRows(ctx, tx, "entity_associations", cols, []string{"source_type", "source_id", "destination_type", "destination_id"}, nil, links)
}

// storedSums reads the token usage and cost metadata the request's
// unfinalized traces already have, keyed by trace id then metadata key. A
// locking read: under MySQL's repeatable read a plain SELECT would see the
// snapshot from before this transaction waited for the trace_info row
// lock, and a concurrent request's sums would be lost (the concurrency
// test catches it).
func storedSums(ctx context.Context, tx *metadata.Tx, aggs []*traceAgg) (map[string]map[string]string, error) {
	var ids []any
	for _, a := range aggs {
		if !a.finalized && (a.usage != nil || a.cost != nil) {
			ids = append(ids, a.id)
		}
	}
	out := map[string]map[string]string{}
	k, v := tx.Dialect().Quote("key"), tx.Dialect().Quote("value")
	for _, chunk := range chunks(len(ids), rowsPerStatement) {
		args := append([]any{metaTokenUsage, metaCost}, ids[chunk[0]:chunk[1]]...)
		q := "SELECT request_id, " + k + ", " + v + " FROM trace_request_metadata WHERE " + k + " IN (?, ?) AND request_id IN (" +
			metadata.Placeholders(chunk[1]-chunk[0]) + ")" + forUpdate(tx.Dialect())
		err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
			var id, key string
			var val sql.NullString
			if err := r.Scan(&id, &key, &val); err != nil {
				return err
			}
			if out[id] == nil {
				out[id] = map[string]string{}
			}
			out[id][key] = val.String
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertRows inserts rows of len(cols) values each (args flat), in
// multi-row statements. On a conflict over the conflict columns the update
// columns take the new values, or the existing row is kept when update is
// empty.
func insertRows(ctx context.Context, tx *metadata.Tx, table string, cols, conflict, update []string, args []any) error {
	width := len(cols)
	if len(args) == 0 {
		return nil
	}
	d := tx.Dialect()
	set := make([]string, 0, len(update))
	for _, c := range update {
		if d == schema.MySQL {
			set = append(set, c+" = VALUES("+c+")")
		} else {
			set = append(set, c+" = excluded."+c)
		}
	}
	var suffix string
	switch {
	case d == schema.MySQL && len(set) == 0:
		suffix = " ON DUPLICATE KEY UPDATE " + cols[0] + " = " + cols[0]
	case d == schema.MySQL:
		suffix = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	case len(set) == 0:
		suffix = " ON CONFLICT (" + strings.Join(conflict, ", ") + ") DO NOTHING"
	default:
		suffix = " ON CONFLICT (" + strings.Join(conflict, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
	}
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for _, chunk := range chunks(len(args)/width, rowsPerStatement) {
		q := head + valueRows(chunk[1]-chunk[0], width) + suffix
		if _, err := tx.Exec(ctx, q, args[width*chunk[0]:width*chunk[1]]...); err != nil {
			return err
		}
	}
	return nil
}
