package tracking

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// errNoRows is returned by lookups that find nothing; callers turn it
// into the entity's own 404 message.
var errNoRows = sql.ErrNoRows

// EnsureDefaultExperiment creates experiment 0 ("Default", location
// <root>/0, workspace 'default') when it is missing, as upstream does on
// every store start.
func (a *API) EnsureDefaultExperiment(ctx context.Context) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM experiments WHERE experiment_id = 0").Scan(&n); err != nil || n > 0 {
			return err
		}
		if tx.Dialect() == schema.MySQL {
			// An explicit 0 in an AUTO_INCREMENT column means "next value"
			// unless this mode is on (upstream sets it the same way).
			if _, err := tx.Exec(ctx, "SET @@SESSION.sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"); err != nil {
				return err
			}
		}
		now := a.nowMillis()
		_, err := tx.Exec(ctx, `INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace)
VALUES (0, 'Default', ?, 'active', ?, ?, 'default')`, a.experimentLocation(0), now, now)
		return err
	})
}

// insertExperiment creates an experiment and its tags, returning its id.
// location "" means <default root>/<id>.
func (a *API) insertExperiment(ctx context.Context, name, location string, tags []KeyValue) (int64, error) {
	var id int64
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		now := a.nowMillis()
		const ins = `INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace)
VALUES (?, ?, 'active', ?, ?, 'default')`
		var loc any
		if location != "" {
			loc = location
		}
		if tx.Dialect() == schema.Postgres {
			if err := tx.QueryRow(ctx, ins+" RETURNING experiment_id", name, loc, now, now).Scan(&id); err != nil {
				return err
			}
		} else {
			res, err := tx.Exec(ctx, ins, name, loc, now, now)
			if err != nil {
				return err
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		if location == "" {
			if _, err := tx.Exec(ctx, "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", a.experimentLocation(id), id); err != nil {
				return err
			}
		}
		for _, t := range dedupeTags(tags) {
			if _, err := tx.Exec(ctx, "INSERT INTO experiment_tags ("+tx.Dialect().Quote("key")+", value, experiment_id) VALUES (?, ?, ?)", t.Key, t.Value, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && metadata.IsUniqueViolation(err) {
		return 0, &wire.Error{Code: wire.ResourceAlreadyExists,
			Message: "Experiment(name=" + name + ") already exists. Error: an experiment with this name exists (active or deleted)", Cause: err}
	}
	return id, err
}

// dedupeTags keeps the last value per key, as upstream's session merge does.
func dedupeTags(tags []KeyValue) []KeyValue {
	pos := map[string]int{}
	var out []KeyValue
	for _, t := range tags {
		if i, ok := pos[t.Key]; ok {
			out[i] = t
			continue
		}
		pos[t.Key] = len(out)
		out = append(out, t)
	}
	return out
}

const experimentColumns = "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time"

// activeExperimentLocation is the artifact location of an active
// experiment, where runs and logged models are created: 404 for an unknown
// experiment, 400 for a deleted one.
func activeExperimentLocation(ctx context.Context, tx *metadata.Tx, id int64) (string, error) {
	var stage, loc sql.NullString
	err := tx.QueryRow(ctx, "SELECT lifecycle_stage, artifact_location FROM experiments WHERE workspace = 'default' AND experiment_id = ?", id).Scan(&stage, &loc)
	if isNoRows(err) {
		return "", experimentNotFound(id)
	}
	if err != nil {
		return "", err
	}
	if stage.String != "active" {
		return "", experimentNotActive(id, stage.String)
	}
	return loc.String, nil
}

// scanExperiment reads the experimentColumns of one row (a *sql.Row or
// *sql.Rows).
func scanExperiment(row interface{ Scan(...any) error }) (*Experiment, error) {
	var (
		e              Experiment
		id             int64
		loc, stage     sql.NullString
		created, moved sql.NullInt64
	)
	if err := row.Scan(&id, &e.Name, &loc, &stage, &created, &moved); err != nil {
		return nil, err
	}
	e.ExperimentID = strconv.FormatInt(id, 10)
	e.ArtifactLocation, e.LifecycleStage = loc.String, stage.String
	e.CreationTime, e.LastUpdateTime = created.Int64, moved.Int64
	return &e, nil
}

// loadExperiment reads one experiment (any lifecycle stage) with its tags
// by id (where = "experiment_id = ?") or name ("name = ?").
func loadExperiment(ctx context.Context, tx *metadata.Tx, where string, arg any) (*Experiment, error) {
	q := "SELECT " + experimentColumns + " FROM experiments WHERE workspace = 'default' AND " + where
	e, err := scanExperiment(tx.QueryRow(ctx, q, arg))
	if err != nil {
		return nil, err
	}
	id, _ := strconv.ParseInt(e.ExperimentID, 10, 64) // written by scanExperiment
	k := tx.Dialect().Quote("key")
	err = tx.Each(ctx, "SELECT "+k+", value FROM experiment_tags WHERE experiment_id = ? ORDER BY "+k, []any{id},
		func(rows *sql.Rows) error {
			var kv KeyValue
			var v sql.NullString
			if err := rows.Scan(&kv.Key, &v); err != nil {
				return err
			}
			kv.Value = v.String
			e.Tags = append(e.Tags, kv)
			return nil
		})
	return e, err
}

// experimentByName matches names exactly, also on MySQL whose default
// collation would ignore case.
func experimentByName(ctx context.Context, tx *metadata.Tx, name string) (*Experiment, error) {
	return loadExperiment(ctx, tx, metadata.ExactEq(tx.Dialect(), "name"), name)
}

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

// lockExperiment reads an experiment's lifecycle stage inside a write
// transaction, locking its row on PostgreSQL and MySQL.
func lockExperiment(ctx context.Context, tx *metadata.Tx, id int64) (string, error) {
	q := "SELECT lifecycle_stage FROM experiments WHERE workspace = 'default' AND experiment_id = ?"
	if tx.Dialect() != schema.SQLite {
		q += " FOR UPDATE"
	}
	var stage *string
	if err := tx.QueryRow(ctx, q, id).Scan(&stage); err != nil {
		if isNoRows(err) {
			return "", experimentNotFound(id)
		}
		return "", err
	}
	if stage == nil {
		return "", nil
	}
	return *stage, nil
}

// upsertKeyValue inserts or replaces (owner, key) -> value in a tag table
// keyed by (key, <ownerCol>).
func upsertKeyValue(ctx context.Context, tx *metadata.Tx, table, ownerCol string, owner any, key, value string) error {
	k := tx.Dialect().Quote("key")
	var q string
	switch tx.Dialect() {
	case schema.MySQL:
		q = "INSERT INTO " + table + " (" + k + ", value, " + ownerCol + ") VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)"
	default:
		q = "INSERT INTO " + table + " (" + k + ", value, " + ownerCol + ") VALUES (?, ?, ?) ON CONFLICT (" + k + ", " + ownerCol + ") DO UPDATE SET value = excluded.value"
	}
	_, err := tx.Exec(ctx, q, key, value, owner)
	return err
}

// renameExperiment gives the active experiment id a new name.
func (a *API) renameExperiment(ctx context.Context, id int64, name string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		stage, err := lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != "active" {
			return wire.Errorf(wire.InvalidState, "Cannot rename a non-active experiment.")
		}
		_, err = tx.Exec(ctx, "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?", name, a.nowMillis(), id)
		return err
	})
}

// moveExperiment moves experiment id, which must be in stage from, and all its runs to stage to; deleting drops the assessments of its runs.
func (a *API) moveExperiment(ctx context.Context, id int64, from, to string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		stage, err := lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != from {
			return experimentNotFound(id)
		}
		now := a.nowMillis()
		if _, err := tx.Exec(ctx, "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?", to, now, id); err != nil {
			return err
		}
		var deleted any
		if to == "deleted" {
			deleted = now
			// As upstream's _mark_run_deleted for every run of the
			// experiment (also those already deleted): their assessments go.
			runIDs, err := experimentRunIDs(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := deleteRunAssessments(ctx, tx, runIDs); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?", to, deleted, id)
		return err
	})
}

// setExperimentTagRow upserts a tag of the active experiment id.
func (a *API) setExperimentTagRow(ctx context.Context, id int64, key, value string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		stage, err := lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != "active" {
			return experimentNotActive(id, stage)
		}
		return upsertKeyValue(ctx, tx, "experiment_tags", "experiment_id", id, key, value)
	})
}

// deleteExperimentTagRow deletes a tag of the active experiment id.
func (a *API) deleteExperimentTagRow(ctx context.Context, id int64, key string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		stage, err := lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != "active" {
			return experimentNotActive(id, stage)
		}
		res, err := tx.Exec(ctx, "DELETE FROM experiment_tags WHERE experiment_id = ? AND "+exactEq(tx.Dialect(), "key"), id, key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return wire.Errorf(wire.ResourceDoesNotExist, "No tag with name: %s in experiment with id %d", key, id)
		}
		return nil
	})
}

// experimentByID reads experiment id with its tags.
func (a *API) experimentByID(ctx context.Context, id int64) (*Experiment, error) {
	var exp *Experiment
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		exp, err = loadExperiment(ctx, tx, "experiment_id = ?", id)
		return err
	})
	return exp, err
}

// experimentNamed reads the experiment called name, deleted ones included.
func (a *API) experimentNamed(ctx context.Context, name string) (*Experiment, error) {
	var exp *Experiment
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		exp, err = experimentByName(ctx, tx, name)
		return err
	})
	return exp, err
}
