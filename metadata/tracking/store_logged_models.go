package tracking

import (
	"context"
	"database/sql"
	"math"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// loadLoggedModel reads a model with tags, params and metrics.
func loadLoggedModel(ctx context.Context, tx *metadata.Tx, id string, allowDeleted bool) (*LoggedModel, error) {
	m, stage, err := scanLoggedModel(tx.QueryRow(ctx, "SELECT "+loggedModelColumns+" FROM logged_models WHERE model_id = ?", id))
	if isNoRows(err) || (err == nil && (m.Info.ModelID != id || (stage == "deleted" && !allowDeleted))) {
		return nil, loggedModelNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return m, fillLoggedModels(ctx, tx, []*LoggedModel{m})
}

// fillLoggedModels loads the tags, params and metrics of models whose info
// is loaded: three queries per 500 models (logged-models/search runs on
// every list_artifacts of an MLflow 3 client), not three per model.
func fillLoggedModels(ctx context.Context, tx *metadata.Tx, models []*LoggedModel) error {
	byID := make(map[string]*LoggedModel, len(models))
	ids := make([]string, len(models))
	for i, m := range models {
		byID[m.Info.ModelID] = m
		ids[i] = m.Info.ModelID
	}
	err := inChunks(ctx, tx, ids, "SELECT model_id, tag_key, tag_value FROM logged_model_tags WHERE model_id IN ", " ORDER BY model_id, tag_key",
		func(rows *sql.Rows) error {
			var id string
			var kv KeyValue
			if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
				return err
			}
			if m := byID[id]; m != nil {
				m.Info.Tags = append(m.Info.Tags, kv)
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = inChunks(ctx, tx, ids, "SELECT model_id, param_key, param_value FROM logged_model_params WHERE model_id IN ", " ORDER BY model_id, param_key",
		func(rows *sql.Rows) error {
			var id string
			var kv KeyValue
			if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
				return err
			}
			if m := byID[id]; m != nil {
				m.Data.Params = append(m.Data.Params, kv)
			}
			return nil
		})
	if err != nil {
		return err
	}
	return inChunks(ctx, tx, ids, `SELECT model_id, metric_name, metric_value, metric_timestamp_ms, metric_step, dataset_name, dataset_digest, run_id
FROM logged_model_metrics WHERE model_id IN `, " ORDER BY model_id, metric_name, metric_timestamp_ms, metric_step",
		func(rows *sql.Rows) error {
			var id string
			var mm LoggedModelMetric
			var v sql.NullFloat64
			var dn, dd, run sql.NullString
			if err := rows.Scan(&id, &mm.Key, &v, &mm.Timestamp, &mm.Step, &dn, &dd, &run); err != nil {
				return err
			}
			mm.Value = jsonFloat(v.Float64)
			if !v.Valid {
				mm.Value = jsonFloat(math.NaN())
			}
			mm.DatasetName, mm.DatasetDigest, mm.RunID, mm.ModelID = dn.String, dd.String, run.String, id
			if m := byID[id]; m != nil {
				m.Data.Metrics = append(m.Data.Metrics, mm)
			}
			return nil
		})
}

// upsertModelKV writes logged-model tags or params (last value wins).
func upsertModelKV(ctx context.Context, tx *metadata.Tx, table, kc, vc, modelID string, expID int64, kvs []KeyValue) error {
	for _, kv := range dedupeTags(kvs) {
		if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE model_id = ? AND "+exactEq(tx.Dialect(), kc), modelID, kv.Key); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (model_id, experiment_id, "+kc+", "+vc+") VALUES (?, ?, ?, ?)", modelID, expID, kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// writeLoggedModel runs fn on an existing, active model (row locked).
func (a *API) writeLoggedModel(ctx context.Context, id string, fn func(tx *metadata.Tx, expID int64) error) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		q := "SELECT model_id, experiment_id, lifecycle_stage FROM logged_models WHERE model_id = ?"
		if tx.Dialect() != schema.SQLite {
			q += " FOR UPDATE"
		}
		var got, stage string
		var exp int64
		err := tx.QueryRow(ctx, q, id).Scan(&got, &exp, &stage)
		if isNoRows(err) || (err == nil && (got != id || stage == "deleted")) {
			return loggedModelNotFound(id)
		}
		if err != nil {
			return err
		}
		return fn(tx, exp)
	})
}

// insertLoggedModel creates logged model id (PENDING) in the active experiment expID with its params and tags and returns it.
func (a *API) insertLoggedModel(ctx context.Context, expID int64, id, name, modelType, srcRun string, ps, tags []KeyValue) (*LoggedModel, error) {
	var m *LoggedModel
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		loc, err := activeExperimentLocation(ctx, tx, expID)
		if err != nil {
			return err
		}
		now := a.nowMillis()
		uri := appendURIPath(appendURIPath(appendURIPath(loc, "models"), id), "artifacts")
		var mt, sr any
		if modelType != "" {
			mt = modelType
		}
		if srcRun != "" {
			sr = srcRun
		}
		if _, err := tx.Exec(ctx, `INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message)
VALUES (?, ?, ?, ?, ?, ?, 1, 'active', ?, ?, NULL)`, id, expID, name, uri, now, now, mt, sr); err != nil {
			return err
		}
		if err := upsertModelKV(ctx, tx, "logged_model_params", "param_key", "param_value", id, expID, ps); err != nil {
			return err
		}
		if err := upsertModelKV(ctx, tx, "logged_model_tags", "tag_key", "tag_value", id, expID, tags); err != nil {
			return err
		}
		m, err = loadLoggedModel(ctx, tx, id, false)
		return err
	})
	return m, err
}

// setLoggedModelStatus sets the status of logged model id and returns it.
func (a *API) setLoggedModelStatus(ctx context.Context, id string, status int64) (*LoggedModel, error) {
	var m *LoggedModel
	err := a.writeLoggedModel(ctx, id, func(tx *metadata.Tx, _ int64) error {
		if _, err := tx.Exec(ctx, "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?", status, a.nowMillis(), id); err != nil {
			return err
		}
		var err error
		m, err = loadLoggedModel(ctx, tx, id, false)
		return err
	})
	return m, err
}

// markLoggedModelDeleted soft-deletes logged model id.
func (a *API) markLoggedModelDeleted(ctx context.Context, id string) error {
	return a.writeLoggedModel(ctx, id, func(tx *metadata.Tx, _ int64) error {
		_, err := tx.Exec(ctx, "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? WHERE model_id = ?", a.nowMillis(), id)
		return err
	})
}

// deleteLoggedModelTagRow deletes tag key of logged model id.
func (a *API) deleteLoggedModelTagRow(ctx context.Context, id, key string) error {
	return a.writeLoggedModel(ctx, id, func(tx *metadata.Tx, _ int64) error {
		res, err := tx.Exec(ctx, "DELETE FROM logged_model_tags WHERE model_id = ? AND "+exactEq(tx.Dialect(), "tag_key"), id, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return wire.Errorf(wire.ResourceDoesNotExist, "No tag with key %s found for model with ID %s.", wire.PyRepr(key), wire.PyRepr(id))
		}
		return nil
	})
}

// searchLoggedModelRows runs a logged-models/search query; next is the token of the following page, if any.
func (a *API) searchLoggedModelRows(ctx context.Context, q search.LoggedModelsQuery, maxResults, offset int64) ([]*LoggedModel, string, error) {
	var models []*LoggedModel
	var next string
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		text, args := q.Render(tx.Dialect())
		models = nil
		err := tx.Each(ctx, text, args, func(rows *sql.Rows) error {
			m, _, err := scanLoggedModel(rows)
			models = append(models, m)
			return err
		})
		if err != nil {
			return err
		}
		if int64(len(models)) > maxResults {
			models = models[:maxResults]
			next = wire.PageToken(offset + maxResults)
		}
		return fillLoggedModels(ctx, tx, models)
	})
	return models, next, err
}

// activeLoggedModel reads logged model id, which must exist and not be deleted, without its params, tags and metrics.
func (a *API) activeLoggedModel(ctx context.Context, id string) (*LoggedModel, error) {
	var m *LoggedModel
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var (
			err   error
			stage string
		)
		m, stage, err = scanLoggedModel(tx.QueryRow(ctx, "SELECT "+loggedModelColumns+" FROM logged_models WHERE model_id = ?", id))
		if isNoRows(err) || (err == nil && (m.Info.ModelID != id || stage == "deleted")) {
			return loggedModelNotFound(id)
		}
		return err
	})
	return m, err
}

// loggedModel reads logged model id (deleted ones only with allow).
func (a *API) loggedModel(ctx context.Context, id string, allow bool) (*LoggedModel, error) {
	var m *LoggedModel
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		m, err = loadLoggedModel(ctx, tx, id, allow)
		return err
	})
	return m, err
}

// setLoggedModelTagRows upserts tags of logged model id.
func (a *API) setLoggedModelTagRows(ctx context.Context, id string, tags []KeyValue) error {
	return a.writeLoggedModel(ctx, id, func(tx *metadata.Tx, exp int64) error {
		return upsertModelKV(ctx, tx, "logged_model_tags", "tag_key", "tag_value", id, exp, tags)
	})
}

// setLoggedModelParamRows upserts params of logged model id.
func (a *API) setLoggedModelParamRows(ctx context.Context, id string, ps []KeyValue) error {
	return a.writeLoggedModel(ctx, id, func(tx *metadata.Tx, exp int64) error {
		return upsertModelKV(ctx, tx, "logged_model_params", "param_key", "param_value", id, exp, ps)
	})
}
