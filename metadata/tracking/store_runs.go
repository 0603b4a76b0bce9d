package tracking

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// SQL operations on runs and their params, tags and metrics (spec
// tracking-api.md §5.2–§5.6). Every write transaction starts by locking
// the run's row (FOR UPDATE on PostgreSQL and MySQL; SQLite writes are
// serialised already), so concurrent writers to one run are ordered and
// the read-then-write steps below (param immutability, latest_metrics)
// cannot race.

const runTagName = "mlflow.runName"

// maxFloat replaces ±Inf in the metrics tables, as upstream does.
const maxFloat = 1.7976931348623157e308

const runColumns = "run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage"

func runNotFound(id string) *wire.Error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Run with id=%s not found", id)
}

func runNotActive(ri *RunInfo) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "The run %s must be in the 'active' state. Current state is %s.", ri.RunID, ri.LifecycleStage)
}

// newRunID is uuid4().hex: 32 lower-case hex characters.
func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRunInfo(s rowScanner) (*RunInfo, error) {
	var (
		ri                          RunInfo
		name, user, status, uri, st sql.NullString
		start, end                  sql.NullInt64
		exp                         sql.NullInt64
	)
	if err := s.Scan(&ri.RunID, &name, &exp, &user, &status, &start, &end, &uri, &st); err != nil {
		return nil, err
	}
	ri.RunUUID = ri.RunID
	ri.RunName, ri.UserID, ri.Status, ri.ArtifactURI, ri.LifecycleStage = name.String, user.String, status.String, uri.String, st.String
	ri.StartTime, ri.EndTime = start.Int64, end.Int64
	if exp.Valid {
		ri.ExperimentID = strconv.FormatInt(exp.Int64, 10)
	}
	return &ri, nil
}

// loadRunInfo reads a run's info; lock takes the row lock of a write
// transaction. The id must match exactly (MySQL's collation would match
// other cases).
func loadRunInfo(ctx context.Context, tx *metadata.Tx, id string, lock bool) (*RunInfo, error) {
	q := "SELECT " + runColumns + " FROM runs WHERE run_uuid = ?"
	if lock && tx.Dialect() != schema.SQLite {
		q += " FOR UPDATE"
	}
	ri, err := scanRunInfo(tx.QueryRow(ctx, q, id))
	if isNoRows(err) || (err == nil && ri.RunID != id) {
		return nil, runNotFound(id)
	}
	return ri, err
}

// activeRun locks a run for a write and refuses a deleted one.
func activeRun(ctx context.Context, tx *metadata.Tx, id string) (*RunInfo, error) {
	ri, err := loadRunInfo(ctx, tx, id, true)
	if err != nil {
		return nil, err
	}
	if ri.LifecycleStage != "active" {
		return nil, runNotActive(ri)
	}
	return ri, nil
}

// loadRun reads a whole run: info, latest metrics, params, tags and,
// when asked, inputs and outputs (fillRuns, as runs/search does).
func loadRun(ctx context.Context, tx *metadata.Tx, id string, withIO bool) (*Run, error) {
	ri, err := loadRunInfo(ctx, tx, id, false)
	if err != nil {
		return nil, err
	}
	run := &Run{Info: *ri}
	if err := fillRuns(ctx, tx, []*Run{run}, withIO); err != nil {
		return nil, err
	}
	return run, nil
}

// keyValues reads the params or tags (table) of one run, by key.
func keyValues(ctx context.Context, tx *metadata.Tx, table, runID string) ([]KeyValue, error) {
	k := tx.Dialect().Quote("key")
	var out []KeyValue
	err := tx.Each(ctx, "SELECT "+k+", value FROM "+table+" WHERE run_uuid = ? ORDER BY "+k, []any{runID},
		func(rows *sql.Rows) error {
			var kv KeyValue
			var v sql.NullString
			if err := rows.Scan(&kv.Key, &v); err != nil {
				return err
			}
			kv.Value = v.String
			out = append(out, kv)
			return nil
		})
	return out, err
}

func scanMetric(s rowScanner) (Metric, error) {
	var (
		m     Metric
		v     float64
		ts    sql.NullInt64
		isNaN bool
	)
	if err := s.Scan(&m.Key, &v, &ts, &m.Step, &isNaN); err != nil {
		return m, err
	}
	if isNaN {
		v = math.NaN()
	}
	m.Value, m.Timestamp = jsonFloat(v), ts.Int64
	return m, nil
}

// setRunName renames a run and upserts its mlflow.runName tag.
func setRunName(ctx context.Context, tx *metadata.Tx, runID, name string) error {
	if _, err := tx.Exec(ctx, "UPDATE runs SET name = ? WHERE run_uuid = ?", name, runID); err != nil {
		return err
	}
	return upsertKeyValue(ctx, tx, "tags", "run_uuid", runID, runTagName, name)
}

// setTags upserts run tags (last value wins per key); mlflow.runName also
// renames the run, and an empty run name changes nothing (upstream's
// update_run_info ignores a falsy name).
func setTags(ctx context.Context, tx *metadata.Tx, runID string, tags []KeyValue) error {
	for _, t := range dedupeTags(tags) {
		if t.Key == runTagName {
			if t.Value == "" {
				continue
			}
			if err := setRunName(ctx, tx, runID, t.Value); err != nil {
				return err
			}
			continue
		}
		if err := upsertKeyValue(ctx, tx, "tags", "run_uuid", runID, t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

// logParams inserts params that are new, accepts re-logging an equal
// value and refuses a different one. single selects upstream's
// log_param message over log_batch's.
func logParams(ctx context.Context, tx *metadata.Tx, runID string, ps []KeyValue, single bool) error {
	existing, err := keyValues(ctx, tx, "params", runID)
	if err != nil {
		return err
	}
	old := make(map[string]string, len(existing))
	for _, kv := range existing {
		old[kv.Key] = kv.Value
	}
	var conflicts []string
	var fresh []KeyValue
	for _, p := range ps {
		if v, ok := old[p.Key]; ok {
			if v != p.Value {
				if single {
					return wire.Errorf(wire.InvalidParameterValue,
						"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.",
						p.Key, v, runID, p.Value)
				}
				conflicts = append(conflicts, "{'key': "+wire.PyRepr(p.Key)+", 'old_value': "+wire.PyRepr(v)+", 'new_value': "+wire.PyRepr(p.Value)+"}")
			}
			continue
		}
		fresh = append(fresh, p)
	}
	if len(conflicts) > 0 {
		return wire.Errorf(wire.InvalidParameterValue,
			"Changing param values is not allowed. Params were already logged='[%s]' for run ID='%s'.", joinComma(conflicts), runID)
	}
	k := tx.Dialect().Quote("key")
	for _, p := range fresh {
		if _, err := tx.Exec(ctx, "INSERT INTO params ("+k+", value, run_uuid) VALUES (?, ?, ?)", p.Key, p.Value, runID); err != nil {
			return err
		}
	}
	return nil
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// metricIn is a metric to log, already validated.
type metricIn struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
	// ModelID, when set, also logs the value as a metric of that logged
	// model (logged_model_metrics), with the optional dataset fields.
	ModelID, DatasetName, DatasetDigest string
}

// logMetrics appends metrics (exact duplicates, in the request or in the
// table, are ignored) and advances latest_metrics to the greatest
// (step, timestamp, value) per key, as upstream does. NaN is stored as 0
// with is_nan, ±Inf as ±max float.
func logMetrics(ctx context.Context, tx *metadata.Tx, runID string, ms []metricIn) error {
	type row struct {
		key       string
		value     float64
		timestamp int64
		step      int64
		isNaN     bool
	}
	seen := map[row]bool{}
	var rows []row
	for _, m := range ms {
		r := row{key: m.Key, value: m.Value, timestamp: m.Timestamp, step: m.Step}
		switch {
		case math.IsNaN(m.Value):
			r.value, r.isNaN = 0, true
		case math.IsInf(m.Value, 1):
			r.value = maxFloat
		case math.IsInf(m.Value, -1):
			r.value = -maxFloat
		}
		if seen[r] {
			continue
		}
		seen[r] = true
		rows = append(rows, r)
	}
	k, ts := tx.Dialect().Quote("key"), tx.Dialect().Quote("timestamp")
	// Multi-row inserts (100 rows a statement) keep a 1000-metric batch
	// to a handful of round trips on PostgreSQL and MySQL.
	const perInsert = 100
	for off := 0; off < len(rows); off += perInsert {
		chunk := rows[off:min(off+perInsert, len(rows))]
		q := "INSERT INTO metrics (" + k + ", value, " + ts + ", run_uuid, step, is_nan) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", len(chunk)), ", ")
		if tx.Dialect() == schema.MySQL {
			q += " ON DUPLICATE KEY UPDATE run_uuid = run_uuid"
		} else {
			q += " ON CONFLICT DO NOTHING"
		}
		args := make([]any, 0, 6*len(chunk))
		for _, r := range chunk {
			args = append(args, r.key, r.value, r.timestamp, runID, r.step, r.isNaN)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	latest := map[string]row{}
	var order []string
	for _, r := range rows {
		cur, ok := latest[r.key]
		if !ok {
			order = append(order, r.key)
		}
		if !ok || greaterMetric(r.step, r.timestamp, r.value, cur.step, cur.timestamp, cur.value) {
			latest[r.key] = r
		}
	}
	sort.Strings(order)
	// The current latest values of all keys in one query per 500 keys.
	type cur struct {
		step, stamp int64
		value       float64
	}
	existing := map[string]cur{}
	for off := 0; off < len(order); off += 500 {
		chunk := order[off:min(off+500, len(order))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, runID)
		for _, key := range chunk {
			args = append(args, key)
		}
		err := tx.Each(ctx, "SELECT "+k+", step, "+ts+", value FROM latest_metrics WHERE run_uuid = ? AND "+k+" IN ("+metadata.Placeholders(len(chunk))+")", args,
			func(rows *sql.Rows) error {
				var key string
				var step, stamp sql.NullInt64
				var value float64
				if err := rows.Scan(&key, &step, &stamp, &value); err != nil {
					return err
				}
				existing[key] = cur{step: step.Int64, stamp: stamp.Int64, value: value} // exact keys only (MySQL matches case variants)
				return nil
			})
		if err != nil {
			return err
		}
	}
	for _, key := range order {
		r := latest[key]
		c, ok := existing[key]
		switch {
		case !ok:
			if _, err := tx.Exec(ctx, "INSERT INTO latest_metrics ("+k+", value, "+ts+", step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
				r.key, r.value, r.timestamp, r.step, r.isNaN, runID); err != nil {
				return err
			}
		case greaterMetric(r.step, r.timestamp, r.value, c.step, c.stamp, c.value):
			if _, err := tx.Exec(ctx, "UPDATE latest_metrics SET value = ?, "+ts+" = ?, step = ?, is_nan = ? WHERE run_uuid = ? AND "+exactEq(tx.Dialect(), "key"),
				r.value, r.timestamp, r.step, r.isNaN, runID, r.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// greaterMetric compares (step, timestamp, value) tuples.
func greaterMetric(s1, t1 int64, v1 float64, s2, t2 int64, v2 float64) bool {
	if s1 != s2 {
		return s1 > s2
	}
	if t1 != t2 {
		return t1 > t2
	}
	return v1 > v2
}

// writeActiveRun runs fn in a write transaction on a locked, active run.
func (a *API) writeActiveRun(ctx context.Context, id string, fn func(*metadata.Tx) error) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := activeRun(ctx, tx, id); err != nil {
			return err
		}
		return fn(tx)
	})
}

// insertRun creates run id in the active experiment expID with its tags and returns it.
func (a *API) insertRun(ctx context.Context, expID int64, id, runName, userID string, start int64, tags []KeyValue) (*Run, error) {
	var run *Run
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		loc, err := activeExperimentLocation(ctx, tx, expID)
		if err != nil {
			return err
		}
		uri := appendURIPath(appendURIPath(loc, id), "artifacts")
		if _, err := tx.Exec(ctx, `INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time)
VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)`, id, runName, userID, start, uri, expID); err != nil {
			return err
		}
		k := tx.Dialect().Quote("key")
		for _, t := range tags {
			if _, err := tx.Exec(ctx, "INSERT INTO tags ("+k+", value, run_uuid) VALUES (?, ?, ?)", t.Key, t.Value, id); err != nil {
				return err
			}
		}
		run, err = loadRun(ctx, tx, id, false)
		if err == nil {
			run.Inputs = &RunInputs{}
		}
		return err
	})
	return run, err
}

// updateRunRow sets what runs/update names of the active run id and returns its info.
func (a *API) updateRunRow(ctx context.Context, id string, status string, hasStatus bool, end int64, hasEnd bool, name string) (*RunInfo, error) {
	var info *RunInfo
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := activeRun(ctx, tx, id); err != nil {
			return err
		}
		if hasStatus {
			if _, err := tx.Exec(ctx, "UPDATE runs SET status = ? WHERE run_uuid = ?", status, id); err != nil {
				return err
			}
		}
		if hasEnd {
			if _, err := tx.Exec(ctx, "UPDATE runs SET end_time = ? WHERE run_uuid = ?", end, id); err != nil {
				return err
			}
		}
		if name != "" {
			if err := setRunName(ctx, tx, id, name); err != nil {
				return err
			}
		}
		var err error
		info, err = loadRunInfo(ctx, tx, id, false)
		return err
	})
	return info, err
}

// moveRun sets run id's lifecycle stage; deleting it drops its assessments.
func (a *API) moveRun(ctx context.Context, id, stage string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := loadRunInfo(ctx, tx, id, true); err != nil {
			return err
		}
		var deleted any
		if stage == "deleted" {
			deleted = a.nowMillis()
			// 3.11: the run's evaluation assessments go with it (not restored).
			if err := deleteRunAssessments(ctx, tx, []string{id}); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?", stage, deleted, id)
		return err
	})
}

// deleteRunTag deletes tag key of the active run id.
func (a *API) deleteRunTag(ctx context.Context, id, key string) error {
	return a.writeActiveRun(ctx, id, func(tx *metadata.Tx) error {
		res, err := tx.Exec(ctx, "DELETE FROM tags WHERE run_uuid = ? AND "+exactEq(tx.Dialect(), "key"), id, key)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return wire.Errorf(wire.ResourceDoesNotExist, "No tag with name: %s in run with id %s", key, id)
		}
		return nil
	})
}

// appendLogModelHistory appends entry to the active run id's mlflow.log-model.history tag.
func (a *API) appendLogModelHistory(ctx context.Context, id, entry string) error {
	return a.writeActiveRun(ctx, id, func(tx *metadata.Tx) error {
		var prev string
		err := tx.QueryRow(ctx, "SELECT value FROM tags WHERE run_uuid = ? AND "+exactEq(tx.Dialect(), "key"), id, logModelHistoryTag).Scan(&prev)
		value := "[" + entry + "]"
		switch {
		case isNoRows(err):
		case err != nil:
			return err
		default:
			old, perr := pyDumps([]byte(prev))
			if perr != nil || !strings.HasPrefix(old, "[") {
				return wire.Errorf(wire.InvalidParameterValue, "The run's '%s' tag is not a JSON list; cannot append to it.", logModelHistoryTag)
			}
			if old == "[]" {
				value = "[" + entry + "]"
			} else {
				value = old[:len(old)-1] + ", " + entry + "]"
			}
		}
		if runeLen(value) > maxTagValueLen {
			return exceedsLength(logModelHistoryTag, maxTagValueLen)
		}
		return upsertKeyValue(ctx, tx, "tags", "run_uuid", id, logModelHistoryTag, value)
	})
}

// runInfo reads the info of run id (any lifecycle stage).
func (a *API) runInfo(ctx context.Context, id string) (*RunInfo, error) {
	var ri *RunInfo
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		ri, err = loadRunInfo(ctx, tx, id, false)
		return err
	})
	return ri, err
}

// runByID reads run id with its data, inputs and outputs.
func (a *API) runByID(ctx context.Context, id string) (*Run, error) {
	var run *Run
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		run, err = loadRun(ctx, tx, id, true)
		return err
	})
	return run, err
}

// setRunTag upserts a tag of the active run id.
func (a *API) setRunTag(ctx context.Context, id string, tag KeyValue) error {
	return a.writeActiveRun(ctx, id, func(tx *metadata.Tx) error {
		return setTags(ctx, tx, id, []KeyValue{tag})
	})
}

// logRunParam logs a param of the active run id (a changed value is refused).
func (a *API) logRunParam(ctx context.Context, id string, param KeyValue) error {
	return a.writeActiveRun(ctx, id, func(tx *metadata.Tx) error {
		return logParams(ctx, tx, id, []KeyValue{param}, true)
	})
}

// logRunMetric logs a metric of the active run id, and on the logged model it names.
func (a *API) logRunMetric(ctx context.Context, id string, m metricIn) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		ri, err := activeRun(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := logMetrics(ctx, tx, id, []metricIn{m}); err != nil {
			return err
		}
		return logModelMetrics(ctx, tx, ri, []metricIn{m})
	})
}

// logRunBatch logs params, metrics and tags of the active run id in one transaction.
func (a *API) logRunBatch(ctx context.Context, id string, ps []KeyValue, metrics []metricIn, tags []KeyValue) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		ri, err := activeRun(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(ps) > 0 {
			if err := logParams(ctx, tx, id, ps, false); err != nil {
				return err
			}
		}
		if len(metrics) > 0 {
			if err := logMetrics(ctx, tx, id, metrics); err != nil {
				return err
			}
			if err := logModelMetrics(ctx, tx, ri, metrics); err != nil {
				return err
			}
		}
		return setTags(ctx, tx, id, tags)
	})
}
