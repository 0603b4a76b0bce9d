package tracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// GCOptions selects what GarbageCollect purges, as the options of
// upstream's `mlflow gc` (spec backend-store.md §7).
type GCOptions struct {
	// OlderThan: only runs deleted, and experiments last updated, at least
	// this long ago; 0 = no age limit (upstream without --older-than).
	OlderThan time.Duration
	// OlderThanText is --older-than as given, for messages.
	OlderThanText string
	// RunIDs: only these runs (each must be deleted, and old enough);
	// empty = every deleted run old enough.
	RunIDs []string
	// ExperimentIDs: these experiments (each must be deleted, and old
	// enough); empty = every deleted experiment old enough.
	ExperimentIDs []string
	// Report, when set, is told of every run and experiment purged, with
	// upstream's wording.
	Report func(line string)
}

// GCResult counts what GarbageCollect purged.
type GCResult struct {
	Runs, Experiments int
}

// GarbageCollect permanently deletes runs and experiments in the
// `deleted` lifecycle stage, as upstream's `mlflow gc`: first every
// selected run (its artifacts through the store layer — the artifacts
// destination for proxied roots, the root's own store otherwise — then
// its rows), then every selected experiment with whatever rows are left
// under it. The runs of a selected experiment are purged with it.
//
// Errors as upstream: a run or experiment that is not deleted, or not
// old enough with OlderThan, stops the collection (what was purged
// before stays purged). It is idempotent, so two collections may run at
// once (two replicas, two shells): a run or experiment that a query
// selected and that another collection purged meanwhile is skipped,
// deleting missing artifacts succeeds, and the row deletes only touch
// rows still marked deleted. Only ids given explicitly that do not exist
// are an error (RESOURCE_DOES_NOT_EXIST, as upstream's get_run).
// Logged models, traces and registered models are not collected (see
// NOTES.md).
func (a *API) GarbageCollect(ctx context.Context, opts GCOptions) (GCResult, error) {
	var res GCResult
	report := opts.Report
	if report == nil {
		report = func(string) {}
	}
	threshold := a.nowMillis() - opts.OlderThan.Milliseconds()

	var oldRuns []string
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		oldRuns, err = stringColumn(ctx, tx, "SELECT run_uuid FROM runs WHERE lifecycle_stage = 'deleted' AND deleted_time IS NOT NULL AND deleted_time <= ? ORDER BY run_uuid", threshold)
		return err
	})
	if err != nil {
		return res, err
	}
	runIDs, explicitRuns := opts.RunIDs, len(opts.RunIDs) > 0
	if !explicitRuns {
		runIDs = oldRuns
	}
	expIDs, err := a.gcExperiments(ctx, opts, threshold)
	if err != nil {
		return res, err
	}
	for _, id := range expIDs {
		err := a.db.Read(ctx, func(tx *metadata.Tx) error {
			ids, err := stringColumn(ctx, tx, "SELECT run_uuid FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'deleted' ORDER BY run_uuid", id)
			runIDs = append(runIDs, ids...)
			return err
		})
		if err != nil {
			return res, err
		}
	}

	seen := map[string]bool{}
	for _, id := range runIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		done, err := a.gcRun(ctx, id, explicitRuns && slices.Contains(opts.RunIDs, id), opts, oldRuns)
		if err != nil {
			return res, err
		}
		if done {
			res.Runs++
			report(fmt.Sprintf("Run with ID %s has been permanently deleted.", id))
		}
	}
	for _, id := range expIDs {
		done, err := a.hardDeleteExperiment(ctx, id)
		if err != nil {
			return res, err
		}
		if done {
			res.Experiments++
			report(fmt.Sprintf("Experiment with ID %d has been permanently deleted.", id))
		}
	}
	return res, nil
}

// gcExperiments returns the experiments to purge: the given ids, checked,
// or every deleted experiment last updated at or before threshold.
func (a *API) gcExperiments(ctx context.Context, opts GCOptions, threshold int64) ([]int64, error) {
	var ids []int64
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		if len(opts.ExperimentIDs) == 0 {
			return tx.Each(ctx, "SELECT experiment_id FROM experiments WHERE workspace = 'default' AND lifecycle_stage = 'deleted' AND last_update_time <= ? ORDER BY experiment_id",
				[]any{threshold}, func(rows *sql.Rows) error {
					var id int64
					err := rows.Scan(&id)
					ids = append(ids, id)
					return err
				})
		}
		for _, s := range opts.ExperimentIDs {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return wire.Errorf(wire.InvalidParameterValue, "Invalid experiment ID: '%s'", s)
			}
			e, err := loadExperiment(ctx, tx, "experiment_id = ?", id)
			if isNoRows(err) {
				return experimentNotFound(id)
			}
			if err != nil {
				return err
			}
			if e.LifecycleStage != "deleted" {
				return wire.Errorf(wire.InvalidParameterValue, "Experiment %d is not in `deleted` lifecycle stage. Only experiments in `deleted` lifecycle stage can be deleted.", id)
			}
			if opts.OlderThan > 0 && e.LastUpdateTime >= threshold {
				return wire.Errorf(wire.InvalidParameterValue, "Experiment %d is not older than the required age. Only experiments older than %s can be deleted.", id, opts.OlderThanText)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return nil
	})
	return ids, err
}

// gcRun checks and purges one run: its artifacts, then its rows. done is
// false when the run is already gone and was not asked for by id (another
// collection purged it).
func (a *API) gcRun(ctx context.Context, id string, explicit bool, opts GCOptions, oldRuns []string) (done bool, err error) {
	var stage, root sql.NullString
	err = a.db.Read(ctx, func(tx *metadata.Tx) error {
		return tx.QueryRow(ctx, "SELECT lifecycle_stage, artifact_uri FROM runs WHERE run_uuid = ?", id).Scan(&stage, &root)
	})
	switch {
	case isNoRows(err) && !explicit:
		return false, nil
	case isNoRows(err):
		return false, runNotFound(id)
	case err != nil:
		return false, err
	}
	if stage.String != "deleted" {
		return false, wire.Errorf(wire.InvalidParameterValue, "Run %s is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.", id)
	}
	if opts.OlderThan > 0 && !slices.Contains(oldRuns, id) {
		return false, wire.Errorf(wire.InvalidParameterValue, "Run %s is not older than the required age. Only runs older than %s can be deleted.", id, opts.OlderThanText)
	}
	if root.String != "" {
		if err := a.deleteArtifactRoot(ctx, root.String); err != nil {
			return false, fmt.Errorf("run %s: delete artifacts at %s: %w", id, root.String, err)
		}
	}
	err = a.db.Write(ctx, func(tx *metadata.Tx) error {
		// The run's row is locked before its children, in the order the
		// experiment purge takes them too: two collections on MySQL
		// otherwise deadlock on each other's child-row locks.
		stage, err := lockedRunStage(ctx, tx, "run_uuid = ?", id)
		if err != nil || len(stage) == 0 || stage[0] != "deleted" {
			return err // purged or restored meanwhile
		}
		for _, table := range []string{"metrics", "latest_metrics", "params", "tags"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE run_uuid = ?", id); err != nil {
				return err
			}
		}
		done, err = deletedAny(ctx, tx, "DELETE FROM runs WHERE run_uuid = ? AND lifecycle_stage = 'deleted'", id)
		return err
	})
	return done, err
}

// deleteArtifactRoot deletes everything under a run's artifact root, as
// upstream's artifact_repo.delete_artifacts(). A proxied root resolves
// under the artifacts destination (upstream goes through the tracking
// server's DELETE route to the same place); a root that resolves to the
// destination's own root is refused rather than emptying the destination.
func (a *API) deleteArtifactRoot(ctx context.Context, root string) error {
	s, key, release, werr := a.roots.Locate(ctx, root, "")
	if werr != nil {
		return werr
	}
	defer release()
	if key == "" && a.cfg.Artifacts != nil && s == stores.Store(a.cfg.Artifacts) {
		return errors.New("the artifact root is the whole artifacts destination; refusing to delete it")
	}
	return s.Delete(ctx, key)
}

// hardDeleteExperiment deletes a deleted experiment and every row under
// it (upstream deletes it through the ORM, which cascades to its runs and
// tags; the database cascades the rest). The tables whose foreign key to
// experiments does not cascade are emptied first, so that the delete
// works on every dialect. done is false when another collection (or a
// restore) got there first.
func (a *API) hardDeleteExperiment(ctx context.Context, id int64) (done bool, err error) {
	err = a.db.Write(ctx, func(tx *metadata.Tx) error {
		stage, err := lockExperiment(ctx, tx, id)
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.ResourceDoesNotExist {
			return nil // purged meanwhile by another collection
		}
		if err != nil || stage != "deleted" { // restored meanwhile: keep it
			return err
		}
		if _, err := lockedRunStage(ctx, tx, "experiment_id = ?", id); err != nil {
			return err
		}
		runs := "SELECT run_uuid FROM runs WHERE experiment_id = ?"
		for _, table := range []string{"metrics", "latest_metrics", "params", "tags"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE run_uuid IN ("+runs+")", id); err != nil {
				return err
			}
		}
		for _, table := range []string{"runs", "experiment_tags", "logged_model_metrics", "logged_model_params",
			"logged_model_tags", "logged_models", "spans", "trace_info", "online_scoring_configs"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE experiment_id = ?", id); err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
		}
		done, err = deletedAny(ctx, tx, "DELETE FROM experiments WHERE experiment_id = ? AND lifecycle_stage = 'deleted'", id)
		return err
	})
	return done, err
}

// stringColumn reads the one string column q selects.
func stringColumn(ctx context.Context, tx *metadata.Tx, q string, args ...any) ([]string, error) {
	var out []string
	err := tx.Each(ctx, q, args, func(rows *sql.Rows) error {
		var s string
		err := rows.Scan(&s)
		out = append(out, s)
		return err
	})
	return out, err
}

// lockedRunStage reads the lifecycle stage of the runs matching where,
// locking their rows on PostgreSQL and MySQL (SQLite's write transaction
// holds the whole database).
func lockedRunStage(ctx context.Context, tx *metadata.Tx, where string, arg any) ([]string, error) {
	q := "SELECT lifecycle_stage FROM runs WHERE " + where + " ORDER BY run_uuid"
	if tx.Dialect() != schema.SQLite {
		q += " FOR UPDATE"
	}
	return stringColumn(ctx, tx, q, arg)
}

// deletedAny runs the DELETE q and says whether it removed a row.
func deletedAny(ctx context.Context, tx *metadata.Tx, q string, args ...any) (bool, error) {
	r, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n > 0, err
}
