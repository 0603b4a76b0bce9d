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
	// LoggedModelIDs: only these logged models (each must exist, be
	// deleted, and be old enough by last_updated_timestamp_ms); empty =
	// every deleted logged model old enough (3.11).
	LoggedModelIDs []string
	// Jobs also deletes finished job records (status SUCCEEDED, FAILED,
	// TIMEOUT or CANCELED) created at least OlderThan ago (3.11 --jobs).
	Jobs bool
	// JobIDs narrows the job clean-up to these ids and turns it on even
	// without Jobs, as upstream's --job-ids; ids that are missing or not
	// finished are skipped silently, as upstream.
	JobIDs []string
	// Report, when set, is told of every run, logged model, experiment
	// and job purged, with upstream's wording.
	Report func(line string)
}

// GCResult counts what GarbageCollect purged.
type GCResult struct {
	Runs, LoggedModels, Experiments, Jobs int
}

// GarbageCollect permanently deletes runs, logged models and experiments
// in the `deleted` lifecycle stage, and with Jobs or JobIDs finished job
// records, as upstream's (3.11) `mlflow gc`: first every selected run
// (its artifacts through the store layer — the artifacts destination for
// proxied roots, the root's own store otherwise — then its rows), then
// every selected logged model the same way, then every selected
// experiment with whatever rows are left under it, and last the jobs.
// The runs of a selected experiment are purged with it.
//
// Errors as upstream: a run or experiment that is not deleted, or not
// old enough with OlderThan, stops the collection (what was purged
// before stays purged). LoggedModelIDs are checked before anything is
// purged (upstream checks them after the runs), so a wrong model id
// purges nothing. It is idempotent, so two collections may run at once
// (two replicas, two shells): a run, model or experiment that a query
// selected and that another collection purged meanwhile is skipped,
// deleting missing artifacts succeeds, and the row deletes only touch
// rows still marked deleted (jobs: still finished). Only ids given
// explicitly that do not exist are an error (RESOURCE_DOES_NOT_EXIST, as
// upstream's get_run and get_logged_model); job ids excepted, as upstream.
// Traces and registered models are not collected (see NOTES.md).
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
	modelIDs, err := a.gcLoggedModels(ctx, opts, threshold)
	if err != nil {
		return res, err
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
	for _, id := range modelIDs {
		done, err := a.gcLoggedModel(ctx, id, report)
		if err != nil {
			return res, err
		}
		if done {
			res.LoggedModels++
			report(fmt.Sprintf("Logged model with ID %s has been permanently deleted.", id))
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
	if opts.Jobs || len(opts.JobIDs) > 0 {
		err := a.gcJobs(ctx, opts, threshold, func(id string) {
			res.Jobs++
			report(fmt.Sprintf("Job with ID %s has been permanently deleted.", id))
		})
		if err != nil {
			return res, err
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
	var experiment int64
	err = a.db.Read(ctx, func(tx *metadata.Tx) error {
		return tx.QueryRow(ctx, "SELECT lifecycle_stage, artifact_uri, experiment_id FROM runs WHERE run_uuid = ?", id).Scan(&stage, &root, &experiment)
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
		if err := a.purgeArtifacts(ctx, "run "+id, root.String, opts.Report); err != nil {
			return false, fmt.Errorf("run %s: delete artifacts at %s: %w", id, stores.RedactURI(root.String), err)
		}
	}
	err = a.db.Write(ctx, func(tx *metadata.Tx) error {
		// The experiment's row, then the run's row before its children:
		// the order the experiment purge takes them too. Two collections
		// on MySQL otherwise deadlock, on each other's child-row locks or
		// on the run's experiment_id index entry (see gcLoggedModel).
		if err := lockExperimentRow(ctx, tx, experiment); err != nil {
			return err
		}
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

// purgeArtifacts deletes the artifacts under root for what ("run <id>",
// "logged model <id>") before its rows go. A root no store can be found
// for (an unsupported or malformed URI: upstream's InvalidUrlException)
// is reported and skipped, as upstream's gc does, so the rows are purged
// anyway; every other failure (the store unavailable, a refusal) stops the
// collection with the rows kept, so a later run can finish the job.
func (a *API) purgeArtifacts(ctx context.Context, what, root string, report func(string)) error {
	err := a.deleteArtifactRoot(ctx, root)
	var we *wire.Error
	if !errors.As(err, &we) || (we.Code != wire.NotImplemented && we.Code != wire.InvalidParameterValue) {
		return err
	}
	msg := fmt.Sprintf("Unable to resolve the artifact URL '%s' of %s (%s). The gc process will continue and bypass artifact deletion. Please ensure that the artifact exists and consider manually deleting any unused artifacts.",
		stores.RedactURI(root), what, we.Message)
	a.log.Warn("gc: artifacts not deleted", "of", what, "root", stores.RedactURI(root), "err", we.Message)
	if report != nil {
		report(msg)
	}
	return nil
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
		// Its logged models' rows next, before their children, in the
		// order the logged model purge takes them (row, then children):
		// the other order deadlocks a collection purging the experiment
		// against one purging one of its models.
		if _, err := lockedLoggedModels(ctx, tx, "experiment_id = ?", id); err != nil {
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

// gcLoggedModels returns the logged models to purge, in id order: the
// given ids, each checked now (before anything is purged) to exist, be
// deleted and be old enough; or every deleted model whose
// last_updated_timestamp_ms is at or before threshold. The table has no
// deleted_time: the soft delete bumps last_updated_timestamp_ms, so that
// is when it was deleted unless it was touched after (upstream compares
// the same column).
func (a *API) gcLoggedModels(ctx context.Context, opts GCOptions, threshold int64) ([]string, error) {
	var ids []string
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		if len(opts.LoggedModelIDs) == 0 {
			var err error
			ids, err = stringColumn(ctx, tx, "SELECT model_id FROM logged_models WHERE lifecycle_stage = 'deleted' AND last_updated_timestamp_ms <= ? ORDER BY model_id", threshold)
			return err
		}
		for _, id := range opts.LoggedModelIDs {
			if slices.Contains(ids, id) {
				continue
			}
			var stage sql.NullString
			var updated sql.NullInt64
			err := tx.QueryRow(ctx, "SELECT lifecycle_stage, last_updated_timestamp_ms FROM logged_models WHERE model_id = ?", id).Scan(&stage, &updated)
			if isNoRows(err) {
				return loggedModelNotFound(id)
			}
			if err != nil {
				return err
			}
			if stage.String != "deleted" {
				return wire.Errorf(wire.InvalidParameterValue, "Logged model %s is not in `deleted` lifecycle stage. Only logged models in `deleted` lifecycle stage can be deleted.", id)
			}
			if opts.OlderThan > 0 && updated.Int64 > threshold {
				return wire.Errorf(wire.InvalidParameterValue, "Logged model %s is not older than the required age. Only logged models older than %s can be deleted.", id, opts.OlderThanText)
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil
	})
	return ids, err
}

// gcLoggedModel purges one deleted logged model: its artifacts through
// the store of its artifact_location (as a run's root), then its params,
// tags and metrics and its row. done is false when it is gone or no
// longer deleted (another collection purged it, or it was restored).
func (a *API) gcLoggedModel(ctx context.Context, id string, report func(string)) (done bool, err error) {
	var stage, root sql.NullString
	var experiment int64
	err = a.db.Read(ctx, func(tx *metadata.Tx) error {
		return tx.QueryRow(ctx, "SELECT lifecycle_stage, artifact_location, experiment_id FROM logged_models WHERE model_id = ?", id).Scan(&stage, &root, &experiment)
	})
	if isNoRows(err) || (err == nil && stage.String != "deleted") {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if root.String != "" {
		if err := a.purgeArtifacts(ctx, "logged model "+id, root.String, report); err != nil {
			return false, fmt.Errorf("logged model %s: delete artifacts at %s: %w", id, stores.RedactURI(root.String), err)
		}
	}
	err = a.db.Write(ctx, func(tx *metadata.Tx) error {
		// The experiment's row first, as the experiment purge takes it:
		// without it, on InnoDB, the purge (holding the model's entry in
		// the experiment_id index, waiting for its primary row) and this
		// delete (holding the primary row, needing that index entry)
		// deadlock (TestGarbageCollectAgainstExperimentPurge). Then the model's row before its children, as the
		// purge takes them (see hardDeleteExperiment).
		if err := lockExperimentRow(ctx, tx, experiment); err != nil {
			return err
		}
		stage, err := lockedLoggedModels(ctx, tx, "model_id = ?", id)
		if err != nil || len(stage) == 0 || stage[0] != "deleted" {
			return err
		}
		// Emptied explicitly rather than left to ON DELETE CASCADE: a
		// database created by an older tool may lack the cascade.
		for _, table := range []string{"logged_model_metrics", "logged_model_params", "logged_model_tags"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE model_id = ?", id); err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
		}
		done, err = deletedAny(ctx, tx, "DELETE FROM logged_models WHERE model_id = ? AND lifecycle_stage = 'deleted'", id)
		return err
	})
	return done, err
}

// lockExperimentRow locks the row of experiment id, in any workspace, on
// PostgreSQL and MySQL; a missing row is not an error (the caller finds
// what it purges gone as well).
func lockExperimentRow(ctx context.Context, tx *metadata.Tx, id int64) error {
	if tx.Dialect() == schema.SQLite {
		return nil
	}
	_, err := stringColumn(ctx, tx, "SELECT experiment_id FROM experiments WHERE experiment_id = ? FOR UPDATE", id)
	return err
}

// lockedLoggedModels reads the lifecycle stage of the logged models
// matching where, in id order, locking their rows on PostgreSQL and MySQL.
func lockedLoggedModels(ctx context.Context, tx *metadata.Tx, where string, arg any) ([]string, error) {
	q := "SELECT lifecycle_stage FROM logged_models WHERE " + where + " ORDER BY model_id"
	if tx.Dialect() != schema.SQLite {
		q += " FOR UPDATE"
	}
	return stringColumn(ctx, tx, q, arg)
}

// finishedJobs is the status condition of a job record that gc may
// delete: upstream's finalized statuses (mlflow.entities._job_status:
// SUCCEEDED 2, FAILED 3, TIMEOUT 4, CANCELED 5). PENDING 0, RUNNING 1 and
// NEEDS_RECOVERY 6 may still change and are kept.
const finishedJobs = "status IN (2, 3, 4, 5)"

// gcJobBatch is how many job records one transaction deletes: bounded so
// that a large backlog neither holds locks long nor needs memory for
// every id at once.
const gcJobBatch = 500

// gcJobs deletes the finished job records, created before threshold when
// OlderThan is set (upstream compares creation_time, strictly), only
// those of JobIDs when given, and calls deleted with each id removed.
// Upstream's non-workspace job store does not filter by workspace, and
// neither does this.
func (a *API) gcJobs(ctx context.Context, opts GCOptions, threshold int64, deleted func(id string)) error {
	cond, condArgs := finishedJobs, []any{}
	if opts.OlderThan > 0 {
		cond += " AND creation_time < ?"
		condArgs = append(condArgs, threshold)
	}
	if len(opts.JobIDs) > 0 {
		ids := slices.Clone(opts.JobIDs)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for chunk := range slices.Chunk(ids, gcJobBatch) {
			if err := a.deleteJobBatch(ctx, chunk, cond, condArgs, deleted); err != nil {
				return err
			}
		}
		return nil
	}
	// Every finished job: batches in id order (keyset, so that the walk
	// ends even while jobs finish meanwhile).
	after := ""
	for {
		var batch []string
		err := a.db.Read(ctx, func(tx *metadata.Tx) error {
			var err error
			batch, err = stringColumn(ctx, tx, "SELECT id FROM jobs WHERE "+cond+" AND id > ? ORDER BY id LIMIT "+strconv.Itoa(gcJobBatch),
				append(slices.Clone(condArgs), after)...)
			return err
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := a.deleteJobBatch(ctx, batch, cond, condArgs, deleted); err != nil {
			return err
		}
		if len(batch) < gcJobBatch {
			return nil
		}
		after = batch[len(batch)-1]
	}
}

// deleteJobBatch deletes those of ids that still meet cond, in one
// transaction: the rows are locked first (in id order, so that two
// collections wait for each other instead of deadlocking), and exactly
// the locked ones are deleted and reported; a row another collection
// deleted first is not reported twice.
func (a *API) deleteJobBatch(ctx context.Context, ids []string, cond string, condArgs []any, deleted func(id string)) error {
	var gone []string
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		args := append(slices.Clone(condArgs), stringsToAny(ids)...)
		q := "SELECT id FROM jobs WHERE " + cond + " AND id IN (" + metadata.Placeholders(len(ids)) + ") ORDER BY id"
		if tx.Dialect() != schema.SQLite {
			q += " FOR UPDATE"
		}
		locked, err := stringColumn(ctx, tx, q, args...)
		if err != nil || len(locked) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM jobs WHERE id IN ("+metadata.Placeholders(len(locked))+")", stringsToAny(locked)...); err != nil {
			return err
		}
		gone = locked
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range gone {
		deleted(id)
	}
	return nil
}

// stringsToAny converts ids to query arguments.
func stringsToAny(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
