package otlp

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// Rows per multi-row statement: far below maxBindArgs (11 arguments a span
// row), and small enough that one statement never holds much text.
const rowsPerStatement = 500

// ingest writes one request's spans in one transaction: all of them and
// their traces' info, tags and metadata, or nothing.
func (a *API) ingest(ctx context.Context, expRaw, runID string, rows []spanRow, aggs []*traceAgg) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		expID, artifactLoc, err := activeExperiment(ctx, tx, expRaw)
		if err != nil {
			return err
		}
		if err := upsertTraceInfos(ctx, tx, expID, aggs); err != nil {
			return err
		}
		rows = dedupe(rows)
		if err := upsertSpans(ctx, tx, expID, rows); err != nil {
			return err
		}
		if err := writeTraceTags(ctx, tx, artifactLoc, aggs); err != nil {
			return err
		}
		return writeExtras(ctx, tx, rows, aggs, runID, time.Now().UnixMilli())
	})
}

// activeExperiment resolves the x-mlflow-experiment-id header: 404 for an
// unknown experiment (or an id that is not a number, as upstream's lookup
// finds none), 400 for a deleted one.
func activeExperiment(ctx context.Context, tx *metadata.Tx, raw string) (int64, string, error) {
	notFound := wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%s exists", raw)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 0 {
		return 0, "", notFound
	}
	var stage, loc sql.NullString
	err = tx.QueryRow(ctx, "SELECT lifecycle_stage, artifact_location FROM experiments WHERE workspace = 'default' AND experiment_id = ?", id).Scan(&stage, &loc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", notFound
	}
	if err != nil {
		return 0, "", err
	}
	if stage.String != "active" {
		return 0, "", wire.Errorf(wire.InvalidParameterValue, "The experiment %d must be in the 'active' state. Current state is %s.", id, stage.String)
	}
	return id, loc.String, nil
}

// traceState is the trace_info status a request's spans give a trace: the
// root span's outcome, or IN_PROGRESS until the root span arrives.
func traceState(a *traceAgg) string {
	switch {
	case a.root == nil:
		return "IN_PROGRESS"
	case a.root.status == "ERROR":
		return "ERROR"
	default:
		return "OK"
	}
}

func execTime(start int64, end *int64) *int64 {
	if end == nil {
		return nil
	}
	d := *end - start
	return &d
}

// upsertTraceInfos creates the trace_info rows of new traces and merges the
// request's time range and state into existing ones (upstream's log_spans:
// request_time is the earliest span start, execution_duration reaches the
// latest span end, and the state moves from IN_PROGRESS to the root span's
// outcome). A trace id that belongs to another experiment fails the request.
func upsertTraceInfos(ctx context.Context, tx *metadata.Tx, expID int64, aggs []*traceAgg) error {
	d := tx.Dialect()
	cols := "request_id, experiment_id, timestamp_ms, execution_time_ms, status, request_preview, response_preview"
	for _, chunk := range chunks(len(aggs), rowsPerStatement) {
		part := aggs[chunk[0]:chunk[1]]
		args := make([]any, 0, 7*len(part))
		for _, a := range part {
			var req, resp *string
			if a.root != nil {
				req, resp = preview(a.root.inputs), preview(a.root.outputs)
			}
			args = append(args, a.id, expID, a.minStart, execTime(a.minStart, a.maxEnd), traceState(a), req, resp)
		}
		q := "INSERT INTO trace_info (" + cols + ") VALUES " + valueRows(len(part), 7) + doNothing(d, "request_id")
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	byID := make(map[string]*traceAgg, len(aggs))
	for _, a := range aggs {
		byID[a.id] = a
	}
	type current struct {
		id                   string
		exp, ts              int64
		exec                 sql.NullInt64
		status               string
		reqPrev, respPrevSet bool
		finalized            bool
	}
	var cur []current
	for _, chunk := range chunks(len(aggs), rowsPerStatement) {
		args := make([]any, 0, chunk[1]-chunk[0])
		for _, a := range aggs[chunk[0]:chunk[1]] {
			args = append(args, a.id)
		}
		// The infoFinalized flag start-trace sets makes its time range,
		// user, session, usage and cost authoritative (upstream 3.11).
		q := "SELECT request_id, experiment_id, timestamp_ms, execution_time_ms, status, " +
			"request_preview IS NOT NULL, response_preview IS NOT NULL, " +
			"EXISTS (SELECT 1 FROM trace_request_metadata m WHERE m.request_id = trace_info.request_id AND m." + d.Quote("key") +
			" = '" + metaInfoFinalized + "') FROM trace_info WHERE request_id IN (" +
			metadata.Placeholders(len(args)) + ") ORDER BY request_id" + forUpdate(d)
		err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
			var c current
			if err := r.Scan(&c.id, &c.exp, &c.ts, &c.exec, &c.status, &c.reqPrev, &c.respPrevSet, &c.finalized); err != nil {
				return err
			}
			cur = append(cur, c)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, c := range cur {
		a := byID[c.id]
		if a == nil {
			continue // MySQL compares ids without case; only exact ids are ours
		}
		if c.exp != expID {
			return wire.Errorf(wire.InvalidParameterValue,
				"Trace with ID '%s' already exists in experiment %d; it cannot be logged to experiment %d.", c.id, c.exp, expID)
		}
		a.finalized = c.finalized
		start := c.ts
		var end *int64
		if c.exec.Valid {
			e := c.ts + c.exec.Int64
			end = &e
		}
		if !c.finalized { // start-trace's range is authoritative once finalized
			start = min(start, a.minStart)
			if a.maxEnd != nil && (end == nil || *a.maxEnd > *end) {
				end = a.maxEnd
			}
		}
		status := c.status
		if a.root != nil && (status == "IN_PROGRESS" || status == "STATE_UNSPECIFIED") {
			status = traceState(a)
		}
		exec := execTime(start, end)
		var reqPrev, respPrev *string
		if a.root != nil {
			if !c.reqPrev {
				reqPrev = preview(a.root.inputs)
			}
			if !c.respPrevSet {
				respPrev = preview(a.root.outputs)
			}
		}
		same := start == c.ts && status == c.status && reqPrev == nil && respPrev == nil &&
			((exec == nil && !c.exec.Valid) || (exec != nil && c.exec.Valid && *exec == c.exec.Int64))
		if same {
			continue
		}
		_, err := tx.Exec(ctx, "UPDATE trace_info SET timestamp_ms = ?, execution_time_ms = ?, status = ?, "+
			"request_preview = COALESCE(request_preview, ?), response_preview = COALESCE(response_preview, ?) WHERE request_id = ?",
			start, exec, status, reqPrev, respPrev, c.id)
		if err != nil {
			return err
		}
	}
	return nil
}

// dedupe keeps the last row of each (trace, span): PostgreSQL refuses an
// upsert that touches one row twice.
func dedupe(rows []spanRow) []spanRow {
	type key struct{ t, s string }
	last := make(map[key]int, len(rows))
	for i, r := range rows {
		last[key{r.traceID, r.spanID}] = i
	}
	if len(last) == len(rows) {
		return rows
	}
	out := make([]spanRow, 0, len(last))
	for i, r := range rows {
		if last[key{r.traceID, r.spanID}] == i {
			out = append(out, r)
		}
	}
	return out
}

// upsertSpans writes span rows, replacing a span logged before (upstream
// merges by primary key). duration_ns is generated by the database;
// dimension_attributes holds the span's model and provider (NULL without).
func upsertSpans(ctx context.Context, tx *metadata.Tx, expID int64, rows []spanRow) error {
	d := tx.Dialect()
	typ := d.Quote("type")
	cols := []string{"trace_id", "experiment_id", "span_id", "parent_span_id", "name", typ, "status",
		"start_time_unix_nano", "end_time_unix_nano", "content", "dimension_attributes"}
	set := make([]string, 0, len(cols)-2)
	for _, c := range cols {
		if c == "trace_id" || c == "span_id" {
			continue
		}
		if d == schema.MySQL {
			set = append(set, c+" = VALUES("+c+")")
		} else {
			set = append(set, c+" = excluded."+c)
		}
	}
	suffix := " ON CONFLICT (trace_id, span_id) DO UPDATE SET " + strings.Join(set, ", ")
	if d == schema.MySQL {
		suffix = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	head := "INSERT INTO spans (" + strings.Join(cols, ", ") + ") VALUES "
	for _, chunk := range chunks(len(rows), rowsPerStatement) {
		part := rows[chunk[0]:chunk[1]]
		args := make([]any, 0, len(cols)*len(part))
		for i := range part {
			r := &part[i]
			var parent *string
			if r.parentID != "" {
				parent = &r.parentID
			}
			args = append(args, r.traceID, expID, r.spanID, parent, r.name, r.spanType, r.status, r.start, r.end, r.content, r.extras.dims)
		}
		if _, err := tx.Exec(ctx, head+valueRows(len(part), len(cols))+suffix, args...); err != nil {
			return err
		}
	}
	return nil
}

// writeTraceTags marks every trace's spans as stored in the tracking store
// (the tag the client checks before uploading traces.json) and gives new
// traces what upstream's start_trace would: the artifact location, the
// trace name (the root span's), and the trace schema version.
func writeTraceTags(ctx context.Context, tx *metadata.Tx, artifactLoc string, aggs []*traceAgg) error {
	d := tx.Dialect()
	k, v := d.Quote("key"), d.Quote("value")
	var upsert, ifAbsent, meta []any
	for _, a := range aggs {
		upsert = append(upsert, tagSpansLocation, spansTrackingStore, a.id)
		ifAbsent = append(ifAbsent, tagArtifactLoc, strings.TrimSuffix(artifactLoc, "/")+"/traces/"+a.id+"/artifacts", a.id)
		if a.root != nil {
			ifAbsent = append(ifAbsent, tagTraceName, a.root.name, a.id)
		}
		meta = append(meta, metaSchemaVersion, traceSchemaVersion, a.id)
	}
	replace := " ON CONFLICT (" + k + ", request_id) DO UPDATE SET " + v + " = excluded." + v
	if d == schema.MySQL {
		replace = " ON DUPLICATE KEY UPDATE " + v + " = VALUES(" + v + ")"
	}
	for _, w := range []struct {
		table, suffix string
		args          []any
	}{
		{"trace_tags", replace, upsert},
		{"trace_tags", doNothing(d, k+", request_id"), ifAbsent},
		{"trace_request_metadata", doNothing(d, k+", request_id"), meta},
	} {
		n := len(w.args) / 3
		for _, chunk := range chunks(n, rowsPerStatement) {
			q := "INSERT INTO " + w.table + " (" + k + ", " + v + ", request_id) VALUES " + valueRows(chunk[1]-chunk[0], 3) + w.suffix
			if _, err := tx.Exec(ctx, q, w.args[3*chunk[0]:3*chunk[1]]...); err != nil {
				return err
			}
		}
	}
	return nil
}

// doNothing is the dialect's "keep the existing row" conflict clause.
func doNothing(d schema.Dialect, conflictCols string) string {
	if d == schema.MySQL {
		return " ON DUPLICATE KEY UPDATE request_id = request_id"
	}
	return " ON CONFLICT (" + conflictCols + ") DO NOTHING"
}

// forUpdate locks the selected rows on the databases with row locks (SQLite
// serialises writers already).
func forUpdate(d schema.Dialect) string {
	if d == schema.SQLite {
		return ""
	}
	return " FOR UPDATE"
}

// valueRows is "(?, ?), (?, ?)" for n rows of width columns.
func valueRows(n, width int) string {
	row := "(" + metadata.Placeholders(width) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// chunks splits [0, n) into [start, end) ranges of at most size.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for i := 0; i < n; i += size {
		out = append(out, [2]int{i, min(i+size, n)})
	}
	return out
}
