package tracing

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// Column limits of the trace tables (backend-store.md).
const (
	maxTraceID      = 50
	maxKey          = 250
	maxValue        = 8000 // values beyond are truncated (spec §4, trace tag)
	maxPreview      = 1000
	maxClientReqID  = 50
	maxBatchIDs     = 1000 // ids per batch read
	idChunk         = 500  // ids per IN (...) list
	artifactTagKey  = "mlflow.artifactLocation"
	linkedPromptTag = "mlflow.linkedPrompts"
	// infoFinalizedKey (upstream 3.11 TraceMetadataKey.TRACE_INFO_FINALIZED)
	// is the metadata start-trace writes ("true") so that span batches
	// arriving later through /v1/traces (tracing/otlp) keep the time range,
	// token usage, cost, session and user the client finalized.
	infoFinalizedKey = "mlflow.trace.infoFinalized"
)

func traceNotFound(id string) error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Trace with ID %s not found.", id)
}

func newHexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// truncate cuts s to max characters (runes), as upstream truncates trace
// tag values.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max])
}

func idEq(d schema.Dialect, col string) string { return metadata.ExactEq(d, col) }

// experimentForTrace returns the artifact location of an active
// experiment, with upstream's errors for a missing or deleted one.
func experimentForTrace(ctx context.Context, tx *metadata.Tx, expID string) (int64, string, error) {
	id, err := strconv.ParseInt(expID, 10, 64)
	if err != nil {
		return 0, "", wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%s exists", expID)
	}
	var stage string
	var loc sql.NullString
	err = tx.QueryRow(ctx, "SELECT lifecycle_stage, artifact_location FROM experiments WHERE workspace = 'default' AND experiment_id = ?", id).Scan(&stage, &loc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%s exists", expID)
	}
	if err != nil {
		return 0, "", err
	}
	if stage != "active" {
		return 0, "", wire.Errorf(wire.InvalidParameterValue, "The experiment %s must be in the 'active' state. Current state is %s.", expID, stage)
	}
	return id, loc.String, nil
}

// traceArtifactLocation is upstream's trace artifact root:
// <experiment artifact_location>/traces/<trace id>/artifacts.
func traceArtifactLocation(expLoc, traceID string) string {
	base, suffix := expLoc, ""
	if i := strings.IndexAny(base, "?#"); i >= 0 {
		base, suffix = base[:i], base[i:]
	}
	return strings.TrimRight(base, "/") + "/traces/" + traceID + "/artifacts" + suffix
}

// upsertPairs replaces the given keys of a trace's tags or metadata.
func upsertPairs(ctx context.Context, tx *metadata.Tx, table, traceID string, kv map[string]string) error {
	k := tx.Dialect().Quote("key")
	for key, v := range kv {
		if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE request_id = ? AND "+idEq(tx.Dialect(), "key"), traceID, key); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" ("+k+", value, request_id) VALUES (?, ?, ?)", key, v, traceID); err != nil {
			return err
		}
	}
	return nil
}

// traceExists locks the trace row for writes on PostgreSQL and MySQL
// (SQLite writes are serialised) and reports whether it exists.
func traceExists(ctx context.Context, tx *metadata.Tx, id string, lock bool) (bool, int64, error) {
	q := "SELECT experiment_id FROM trace_info WHERE " + idEq(tx.Dialect(), "request_id")
	if lock && tx.Dialect() != schema.SQLite {
		q += " FOR UPDATE"
	}
	var exp int64
	err := tx.QueryRow(ctx, q, id).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, nil
	}
	return err == nil, exp, err
}

// lockTrace locks an existing trace's row (404 when there is none).
func lockTrace(ctx context.Context, tx *metadata.Tx, id string) error {
	found, _, err := traceExists(ctx, tx, id, true)
	if err == nil && !found {
		err = traceNotFound(id)
	}
	return err
}

// startTrace is StartTraceV3 (and the v2 start): it creates the trace,
// or, when spans arrived first (OTLP) and made the row, fills in its info
// and merges tags and metadata, then reads it back.
//
// The row is inserted if absent (ON CONFLICT DO NOTHING / ON DUPLICATE
// KEY), then locked: concurrent starts of one id (a client retry, an
// OTLP export) serialise on the row instead of failing a check-then-insert
// race. The answer is read in a fresh transaction (MySQL's snapshot of the
// write transaction predates rows other writers committed).
func (a *API) startTrace(ctx context.Context, t *traceRow, expID string) (*traceRow, error) {
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		exp, loc, err := experimentForTrace(ctx, tx, expID)
		if err != nil {
			return err
		}
		t.ExperimentID = exp
		ins := "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status, client_request_id, request_preview, response_preview) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
		if tx.Dialect() == schema.MySQL {
			ins += " ON DUPLICATE KEY UPDATE request_id = request_id"
		} else {
			ins += " ON CONFLICT (request_id) DO NOTHING"
		}
		res, err := tx.Exec(ctx, ins, t.ID, exp, t.TimestampMs, t.ExecutionTimeMs, t.Status, t.ClientRequestID, t.RequestPreview, t.ResponsePreview)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created := n == 1
		found, oldExp, err := traceExists(ctx, tx, t.ID, true)
		if err != nil {
			return err
		}
		if !found {
			// MySQL's case-insensitive key matched a trace whose id
			// differs only in case.
			return wire.Errorf(wire.ResourceAlreadyExists, "A trace whose ID differs from %s only in case exists.", t.ID)
		}
		if oldExp != exp {
			return wire.Errorf(wire.InvalidParameterValue, "Trace with ID %s already exists in another experiment.", t.ID)
		}
		if t.Tags == nil {
			t.Tags = map[string]string{}
		}
		if _, ok := t.Tags[artifactTagKey]; !ok && created {
			t.Tags[artifactTagKey] = traceArtifactLocation(loc, t.ID)
		}
		if !created {
			if _, err := tx.Exec(ctx, "UPDATE trace_info SET timestamp_ms = ?, execution_time_ms = ?, status = ?, client_request_id = ?, request_preview = ?, response_preview = ? WHERE request_id = ?",
				t.TimestampMs, t.ExecutionTimeMs, t.Status, t.ClientRequestID, t.RequestPreview, t.ResponsePreview, t.ID); err != nil {
				return err
			}
		}
		if err := upsertPairs(ctx, tx, "trace_tags", t.ID, t.Tags); err != nil {
			return err
		}
		return upsertPairs(ctx, tx, "trace_request_metadata", t.ID, t.Metadata)
	})
	if err != nil {
		return nil, err
	}
	return a.readTrace(ctx, t.ID)
}

// endTraceV2 is the legacy EndTrace: execution time from the end
// timestamp, the status, merged metadata and tags.
func (a *API) endTraceV2(ctx context.Context, id string, endMs int64, status string, md, tags map[string]string) (*traceRow, error) {
	var out *traceRow
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockTrace(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE trace_info SET execution_time_ms = ? - timestamp_ms, status = ? WHERE request_id = ?", endMs, status, id); err != nil {
			return err
		}
		if err := upsertPairs(ctx, tx, "trace_tags", id, tags); err != nil {
			return err
		}
		if err := upsertPairs(ctx, tx, "trace_request_metadata", id, md); err != nil {
			return err
		}
		rows, err := loadTraces(ctx, tx, []string{id}, true)
		if err != nil {
			return err
		}
		out = rows[0]
		return nil
	})
	return out, err
}

// chunks splits ids into IN-list sized pieces.
func chunks(ids []string) [][]any {
	var out [][]any
	for len(ids) > 0 {
		n := min(len(ids), idChunk)
		part := make([]any, n)
		for i, id := range ids[:n] {
			part[i] = id
		}
		out = append(out, part)
		ids = ids[n:]
	}
	return out
}

const traceColumns = "request_id, experiment_id, timestamp_ms, execution_time_ms, status, client_request_id, request_preview, response_preview"

func scanTrace(rows *sql.Rows) (*traceRow, error) {
	t := &traceRow{}
	var exec sql.NullInt64
	var cri, req, resp sql.NullString
	if err := rows.Scan(&t.ID, &t.ExperimentID, &t.TimestampMs, &exec, &t.Status, &cri, &req, &resp); err != nil {
		return nil, err
	}
	if exec.Valid {
		t.ExecutionTimeMs = &exec.Int64
	}
	t.ClientRequestID, t.RequestPreview, t.ResponsePreview = nullable(cri), nullable(req), nullable(resp)
	return t, nil
}

func nullable(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// loadTraces reads the traces with ids (in the order of ids, missing ones
// left out), with tags, metadata and assessments. The ids are compared
// exactly (MySQL: checked in Go, the PK index does the lookup).
func loadTraces(ctx context.Context, tx *metadata.Tx, ids []string, withAssessments bool) ([]*traceRow, error) {
	byID := map[string]*traceRow{}
	for _, part := range chunks(ids) {
		err := tx.Each(ctx, "SELECT "+traceColumns+" FROM trace_info WHERE request_id IN ("+metadata.Placeholders(len(part))+")", part, func(rows *sql.Rows) error {
			t, err := scanTrace(rows)
			if err == nil {
				byID[t.ID] = t
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	var out []*traceRow
	seen := map[string]bool{}
	for _, id := range ids {
		if t, ok := byID[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, t)
		}
	}
	return out, fillTraces(ctx, tx, out, withAssessments)
}

// fillTraces loads tags, metadata and assessments of ts, a fixed number
// of queries per 500 traces.
func fillTraces(ctx context.Context, tx *metadata.Tx, ts []*traceRow, withAssessments bool) error {
	if len(ts) == 0 {
		return nil
	}
	byID := make(map[string]*traceRow, len(ts))
	ids := make([]string, len(ts))
	for i, t := range ts {
		byID[t.ID] = t
		ids[i] = t.ID
	}
	k := tx.Dialect().Quote("key")
	for _, part := range chunks(ids) {
		in := " WHERE request_id IN (" + metadata.Placeholders(len(part)) + ")"
		for _, tbl := range []string{"trace_tags", "trace_request_metadata"} {
			err := tx.Each(ctx, "SELECT request_id, "+k+", value FROM "+tbl+in, part, func(rows *sql.Rows) error {
				var id, key string
				var v sql.NullString
				if err := rows.Scan(&id, &key, &v); err != nil {
					return err
				}
				t := byID[id]
				if t == nil {
					return nil
				}
				m := &t.Tags
				if tbl == "trace_request_metadata" {
					m = &t.Metadata
				}
				if *m == nil {
					*m = map[string]string{}
				}
				(*m)[key] = v.String
				return nil
			})
			if err != nil {
				return err
			}
		}
		if withAssessments {
			err := tx.Each(ctx, "SELECT "+assessmentColumns+" FROM assessments WHERE trace_id IN ("+metadata.Placeholders(len(part))+") ORDER BY created_timestamp, assessment_id", part, func(rows *sql.Rows) error {
				as, err := scanAssessment(rows)
				if err != nil {
					return err
				}
				if t := byID[as.TraceID]; t != nil {
					t.Assessments = append(t.Assessments, as)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// readTraces is a read transaction around loadTraces.
func (a *API) readTraces(ctx context.Context, ids []string) ([]*traceRow, error) {
	var out []*traceRow
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		out, err = loadTraces(ctx, tx, ids, true)
		return err
	})
	return out, err
}

// readTrace reads one trace, 404 when missing.
func (a *API) readTrace(ctx context.Context, id string) (*traceRow, error) {
	ts, err := a.readTraces(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, traceNotFound(id)
	}
	return ts[0], nil
}

// setTraceTag upserts a tag of an existing trace.
func (a *API) setTag(ctx context.Context, id, key, value string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockTrace(ctx, tx, id); err != nil {
			return err
		}
		return upsertPairs(ctx, tx, "trace_tags", id, map[string]string{key: value})
	})
}

// deleteTag deletes a tag, upstream's 404 when the trace or tag is
// missing.
func (a *API) deleteTag(ctx context.Context, id, key string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockTrace(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "DELETE FROM trace_tags WHERE request_id = ? AND "+idEq(tx.Dialect(), "key"), id, key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return wire.Errorf(wire.ResourceDoesNotExist, "No trace tag with key '%s' for trace with ID '%s'", key, id)
		}
		return nil
	})
}

// deleteTraces deletes an experiment's traces by id, or those at or
// before maxTs (the oldest maxTraces of them when maxTraces > 0); rows of
// the child tables go by FK cascade. It returns the deleted traces' ids
// and artifact locations (for the artifact cleanup).
func (a *API) deleteTraces(ctx context.Context, expID int64, ids []string, maxTs *int64, maxTraces int64) (map[string]string, error) {
	deleted := map[string]string{}
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := shareLockExperiment(ctx, tx, expID); err != nil {
			return err
		}
		var victims []string
		collect := func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			victims = append(victims, id)
			return nil
		}
		if maxTs != nil {
			q := "SELECT request_id FROM trace_info WHERE experiment_id = ? AND timestamp_ms <= ? ORDER BY timestamp_ms, request_id"
			args := []any{expID, *maxTs}
			if maxTraces > 0 {
				q += " LIMIT ?"
				args = append(args, maxTraces)
			}
			if err := tx.Each(ctx, q, args, collect); err != nil {
				return err
			}
		} else {
			for _, part := range chunks(ids) {
				args := append([]any{expID}, part...)
				if err := tx.Each(ctx, "SELECT request_id FROM trace_info WHERE experiment_id = ? AND request_id IN ("+metadata.Placeholders(len(part))+")", args, collect); err != nil {
					return err
				}
			}
			// MySQL's IN ignores case: keep the ids asked for exactly.
			asked := map[string]bool{}
			for _, id := range ids {
				asked[id] = true
			}
			kept := victims[:0]
			for _, id := range victims {
				if asked[id] {
					kept = append(kept, id)
				}
			}
			victims = kept
		}
		if len(victims) == 0 {
			return nil
		}
		k := tx.Dialect().Quote("key")
		for _, part := range chunks(victims) {
			in := "(" + metadata.Placeholders(len(part)) + ")"
			if err := tx.Each(ctx, "SELECT request_id, value FROM trace_tags WHERE "+k+" = '"+artifactTagKey+"' AND request_id IN "+in, part, func(rows *sql.Rows) error {
				var id string
				var v sql.NullString
				if err := rows.Scan(&id, &v); err != nil {
					return err
				}
				deleted[id] = v.String
				return nil
			}); err != nil {
				return err
			}
			// Spans, tags, metadata, assessments and metrics cascade.
			if _, err := tx.Exec(ctx, "DELETE FROM trace_info WHERE request_id IN "+in, part...); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM entity_associations WHERE source_type = 'trace' AND source_id IN "+in, part...); err != nil {
				return err
			}
		}
		for _, id := range victims {
			if _, ok := deleted[id]; !ok {
				deleted[id] = ""
			}
		}
		return nil
	})
	return deleted, err
}

// shareLockExperiment takes a shared lock on the experiment's row (none
// on SQLite, whose write transaction holds the whole database). A
// collection purging the experiment locks that row first and then deletes
// spans and trace_info by experiment; a trace delete deletes a trace's row
// and then its cascading spans. Without the lock the two take those rows
// in opposite orders and PostgreSQL or MariaDB kills one as a deadlock; with it they
// queue on the experiment's row, and trace deletes still run side by side.
func shareLockExperiment(ctx context.Context, tx *metadata.Tx, id int64) error {
	q := "SELECT experiment_id FROM experiments WHERE experiment_id = ?"
	switch tx.Dialect() {
	case schema.SQLite:
		return nil
	case schema.MySQL:
		q += " LOCK IN SHARE MODE" // MariaDB before 10.9 has no FOR SHARE
	default:
		q += " FOR SHARE"
	}
	var got int64
	err := tx.QueryRow(ctx, q, id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // no such experiment: there is nothing to delete
	}
	return err
}

// linkToRun records trace → run associations (entity_associations), as
// upstream's link_traces_to_run; existing links are kept.
func (a *API) linkToRun(ctx context.Context, ids []string, runID string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		found, err := loadTraces(ctx, tx, ids, false)
		if err != nil {
			return err
		}
		if len(found) != len(uniq(ids)) {
			have := map[string]bool{}
			for _, t := range found {
				have[t.ID] = true
			}
			for _, id := range ids {
				if !have[id] {
					return traceNotFound(id)
				}
			}
		}
		now := a.nowMillis()
		for _, id := range uniq(ids) {
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM entity_associations WHERE source_type = 'trace' AND "+idEq(tx.Dialect(), "source_id")+" AND destination_type = 'run' AND "+idEq(tx.Dialect(), "destination_id"), id, runID).Scan(&one)
			if err == nil {
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO entity_associations (association_id, source_type, source_id, destination_type, destination_id, created_time) VALUES (?, 'trace', ?, 'run', ?, ?)",
				newUUID(), id, runID, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// newUUID is a random UUID in its canonical 36-character form.
func newUUID() string {
	h := newHexID(16)
	b := []byte(h)
	b[12] = '4'
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32])
}

// linkPrompts merges prompt versions into the trace's
// mlflow.linkedPrompts tag (a JSON list of {"name", "version"}), as
// upstream's link_prompts_to_trace does through the tag.
func (a *API) linkPrompts(ctx context.Context, id string, pvs []promptVersion) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockTrace(ctx, tx, id); err != nil {
			return err
		}
		var cur sql.NullString
		err := tx.QueryRow(ctx, "SELECT value FROM trace_tags WHERE request_id = ? AND "+idEq(tx.Dialect(), "key"), id, linkedPromptTag).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		merged, werr := mergeLinkedPrompts(cur.String, pvs)
		if werr != nil {
			return werr
		}
		if utf8.RuneCountInString(merged) > maxValue {
			return wire.Errorf(wire.InvalidParameterValue, "Too many prompts linked to trace %s: the %s tag exceeds %d characters.", id, linkedPromptTag, maxValue)
		}
		return upsertPairs(ctx, tx, "trace_tags", id, map[string]string{linkedPromptTag: merged})
	})
}
