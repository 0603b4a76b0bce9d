package tracking

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// The experiment write routes of spec tracking-api.md §2.1 and §5.1.

func experimentNotFound(id int64) *wire.Error {
	return wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%d exists", id)
}

func experimentNotActive(id int64, stage string) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "The experiment %d must be in the 'active' state. Current state is %s.", id, stage)
}

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

// updateExperiment is POST experiments/update (rename).
func (a *API) updateExperiment(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	name, werr := p.reqStr("new_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if werr := validateExperimentName("new_name", name); werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
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
	if err != nil && metadata.IsUniqueViolation(err) {
		// Upstream surfaces the IntegrityError as BAD_REQUEST.
		err = &wire.Error{Code: wire.BadRequest, Message: "Experiment(name=" + name + ") already exists. Error: an experiment with this name exists (active or deleted)", Cause: err}
	}
	return a.send(c, fiber.Map{}, err)
}

// deleteExperiment is POST experiments/delete: the experiment (which must
// be active) and every run in it become deleted, and the assessments that
// name one of those runs as their source run are deleted.
func (a *API) deleteExperiment(c *fiber.Ctx) error {
	return a.setExperimentStage(c, "active", "deleted")
}

// restoreExperiment is POST experiments/restore: the experiment (which
// must be deleted) and all its runs become active again.
func (a *API) restoreExperiment(c *fiber.Ctx) error {
	return a.setExperimentStage(c, "deleted", "active")
}

func (a *API) setExperimentStage(c *fiber.Ctx, from, to string) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
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
	return a.send(c, fiber.Map{}, err)
}

// setExperimentTag is POST experiments/set-experiment-tag (upsert; the
// experiment must be active).
func (a *API) setExperimentTag(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	value, werr := p.str("value")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if werr := validateKey("key", key); werr != nil {
		return wire.Send(c, werr)
	}
	if runeLen(value) > maxExperimentTagValueLen {
		return wire.Send(c, exceedsLength("value", maxExperimentTagValueLen))
	}
	ctx := c.UserContext()
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		stage, err := lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != "active" {
			return experimentNotActive(id, stage)
		}
		return upsertKeyValue(ctx, tx, "experiment_tags", "experiment_id", id, key, value)
	})
	return a.send(c, fiber.Map{}, err)
}

// deleteExperimentTag is POST experiments/delete-experiment-tag.
func (a *API) deleteExperimentTag(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
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
	return a.send(c, fiber.Map{}, err)
}

// exactEq is "<col> = ?" compared byte for byte: MySQL's default
// collation ignores case (and trailing spaces), so it compares BINARY.
func exactEq(d schema.Dialect, col string) string {
	if d == schema.MySQL {
		return "BINARY " + d.Quote(col) + " = BINARY ?"
	}
	return d.Quote(col) + " = ?"
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
