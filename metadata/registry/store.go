package registry

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// Every query is scoped to workspace 'default' (single-tenant).

func modelNotFound(name string) error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Registered Model with name=%s not found", name)
}

func versionNotFound(name string, version int64) error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Model Version (name=%s, version=%d) not found", name, version)
}

func modelExistsErr(name string) error {
	return wire.Errorf(wire.ResourceAlreadyExists, "Registered Model (name=%s) already exists.", name)
}

// entityExistsErr is upstream's handle_resource_already_exist_error for a
// create that clashes with an existing name: prompts and models share the
// registered_models table, and the message names which kind holds the
// name (a prompt is a model carrying the PromptTag key, whatever its
// value, as has_prompt_tag checks).
func entityExistsErr(name string, existingIsPrompt, newIsPrompt bool) error {
	kind := func(prompt bool) string {
		if prompt {
			return "Prompt"
		}
		return "Registered Model"
	}
	if existingIsPrompt != newIsPrompt {
		return wire.Errorf(wire.ResourceAlreadyExists,
			"Tried to create a %s with name %s, but the name is already taken by a %s. MLflow does not allow creating a model and a prompt with the same name.",
			strings.ToLower(kind(newIsPrompt)), wire.PyRepr(name), strings.ToLower(kind(existingIsPrompt)))
	}
	return wire.Errorf(wire.ResourceAlreadyExists, "%s (name=%s) already exists.", kind(newIsPrompt), name)
}

// hasPromptTag reports whether the model carries the PromptTag key.
func hasPromptTag(ctx context.Context, tx *metadata.Tx, name string) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM registered_model_tags WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND "+metadata.ExactEq(tx.Dialect(), "key"),
		name, search.PromptTag).Scan(&n)
	return n > 0, err
}

func nameEq(d schema.Dialect) string { return metadata.ExactEq(d, "name") }

// lockModel checks that the model exists, locking its row on PostgreSQL
// and MySQL (SQLite writes are serialised): version numbering and every
// write of the model's children go through this lock.
func lockModel(ctx context.Context, tx *metadata.Tx, name string, forUpdate bool) error {
	q := "SELECT 1 FROM registered_models WHERE workspace = 'default' AND " + nameEq(tx.Dialect())
	if forUpdate && tx.Dialect() != schema.SQLite {
		q += " FOR UPDATE"
	}
	var one int
	if err := tx.QueryRow(ctx, q, name).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return modelNotFound(name)
		}
		return err
	}
	return nil
}

func touchModel(ctx context.Context, tx *metadata.Tx, name string, now int64) error {
	_, err := tx.Exec(ctx, "UPDATE registered_models SET last_updated_time = ? WHERE workspace = 'default' AND "+nameEq(tx.Dialect()), now, name)
	return err
}

func nullable(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func strPtr(s string, ok bool) any {
	if !ok {
		return nil
	}
	return s
}

// insertModel is registered-models/create.
func (a *API) insertModel(ctx context.Context, name string, desc *string, tags []keyValue) (*registeredModel, error) {
	var out *registeredModel
	newIsPrompt := false
	for _, t := range tags {
		newIsPrompt = newIsPrompt || t.Key == search.PromptTag
	}
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, false); err == nil {
			old, err := hasPromptTag(ctx, tx, name)
			if err != nil {
				return err
			}
			return entityExistsErr(name, old, newIsPrompt)
		} else if !isNotFound(err) {
			return err
		}
		now := a.nowMillis()
		var d any
		if desc != nil {
			d = *desc
		}
		if _, err := tx.Exec(ctx, "INSERT INTO registered_models (name, creation_time, last_updated_time, description, workspace) VALUES (?, ?, ?, ?, 'default')",
			name, now, now, d); err != nil {
			if metadata.IsUniqueViolation(err) {
				// A concurrent create or (MySQL) a name differing in
				// case; the transaction may be unusable for a lookup.
				return entityExistsErr(name, newIsPrompt, newIsPrompt)
			}
			return err
		}
		for _, t := range lastWins(tags) {
			if err := upsertModelTag(ctx, tx, name, t); err != nil {
				return err
			}
		}
		m, err := loadModel(ctx, tx, name)
		out = m
		return err
	})
	return out, err
}

func isNotFound(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == wire.ResourceDoesNotExist
}

// lastWins keeps the last value per key, in first-seen key order.
func lastWins(tags []keyValue) []keyValue {
	idx := map[string]int{}
	var out []keyValue
	for _, t := range tags {
		if i, ok := idx[t.Key]; ok {
			out[i].Value = t.Value
			continue
		}
		idx[t.Key] = len(out)
		out = append(out, t)
	}
	return out
}

func upsertModelTag(ctx context.Context, tx *metadata.Tx, name string, t keyValue) error {
	if _, err := tx.Exec(ctx, "DELETE FROM registered_model_tags WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND "+metadata.ExactEq(tx.Dialect(), "key"), name, t.Key); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "INSERT INTO registered_model_tags ("+tx.Dialect().Quote("key")+", value, name, workspace) VALUES (?, ?, ?, 'default')", t.Key, t.Value, name)
	return err
}

func upsertVersionTag(ctx context.Context, tx *metadata.Tx, name string, version int64, t keyValue) error {
	if _, err := tx.Exec(ctx, "DELETE FROM model_version_tags WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND version = ? AND "+metadata.ExactEq(tx.Dialect(), "key"), name, version, t.Key); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "INSERT INTO model_version_tags ("+tx.Dialect().Quote("key")+", value, name, version, workspace) VALUES (?, ?, ?, ?, 'default')", t.Key, t.Value, name, version)
	return err
}

// loadModel reads a registered model with its tags, aliases and latest
// versions per stage.
func loadModel(ctx context.Context, tx *metadata.Tx, name string) (*registeredModel, error) {
	m := &registeredModel{}
	var desc sql.NullString
	var created, updated sql.NullInt64
	err := tx.QueryRow(ctx, "SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE workspace = 'default' AND "+nameEq(tx.Dialect()), name).
		Scan(&m.Name, &created, &updated, &desc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, modelNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	m.CreationTimestamp, m.LastUpdatedTimestamp, m.Description = created.Int64, updated.Int64, nullable(desc)
	if err := fillModels(ctx, tx, []*registeredModel{m}); err != nil {
		return nil, err
	}
	return m, nil
}

const versionCols = "name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status, status_message, run_link, storage_location"

func scanVersion(r interface{ Scan(...any) error }) (*modelVersion, error) {
	var v modelVersion
	var version int64
	var created, updated sql.NullInt64
	var desc, user, stage, source, runID, status, msg, link, storage sql.NullString
	if err := r.Scan(&v.Name, &version, &created, &updated, &desc, &user, &stage, &source, &runID, &status, &msg, &link, &storage); err != nil {
		return nil, err
	}
	v.Version = strconv.FormatInt(version, 10)
	v.CreationTimestamp, v.LastUpdatedTimestamp = created.Int64, updated.Int64
	v.Description, v.UserID, v.Source, v.RunID = nullable(desc), nullable(user), nullable(source), nullable(runID)
	v.StatusMessage, v.RunLink, v.storageLocation = nullable(msg), nullable(link), nullable(storage)
	v.CurrentStage = stage.String
	if !stage.Valid {
		v.CurrentStage = stageNone
	}
	v.Status = status.String
	if !status.Valid {
		v.Status = "READY"
	}
	return &v, nil
}

// loadVersion reads a live (not deleted) version with its tags and aliases.
func loadVersion(ctx context.Context, tx *metadata.Tx, name string, version int64) (*modelVersion, error) {
	row := tx.QueryRow(ctx, "SELECT "+versionCols+" FROM model_versions WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+
		" AND version = ? AND current_stage <> ?", name, version, stageDeleted)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, versionNotFound(name, version)
	}
	if err != nil {
		return nil, err
	}
	return v, fillVersions(ctx, tx, []*modelVersion{v})
}

// latestVersions is get_latest_versions: the highest live version per
// stage, in the order the stages first appear among the versions
// (upstream's dict over the model's versions), filtered by stages (all
// when empty).
func latestVersions(ctx context.Context, tx *metadata.Tx, name string, stages []string) ([]modelVersion, error) {
	var all []*modelVersion
	err := tx.Each(ctx, "SELECT "+versionCols+" FROM model_versions WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+
		" AND current_stage <> ? ORDER BY version", []any{name, stageDeleted}, func(r *sql.Rows) error {
		v, err := scanVersion(r)
		if err == nil {
			all = append(all, v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := pickLatest(all, stages)
	if err := fillVersions(ctx, tx, out); err != nil {
		return nil, err
	}
	res := make([]modelVersion, len(out))
	for i, v := range out {
		res[i] = *v
	}
	return res, nil
}

func (a *API) readModel(ctx context.Context, name string) (*registeredModel, error) {
	var out *registeredModel
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		m, err := loadModel(ctx, tx, name)
		out = m
		return err
	})
	return out, err
}

// renameModel moves the model and (by the ON UPDATE CASCADE foreign
// keys) its versions, tags and aliases to newName.
func (a *API) renameModel(ctx context.Context, name, newName string) (*registeredModel, error) {
	var out *registeredModel
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		if name != newName {
			if err := lockModel(ctx, tx, newName, false); err == nil {
				return modelExistsErr(newName)
			} else if !isNotFound(err) {
				return err
			}
		}
		now := a.nowMillis()
		d := tx.Dialect()
		// The foreign keys' ON UPDATE CASCADE carry versions, their tags
		// and the aliases along.
		if _, err := tx.Exec(ctx, "UPDATE registered_models SET name = ?, last_updated_time = ? WHERE workspace = 'default' AND "+nameEq(d), newName, now, name); err != nil {
			if metadata.IsUniqueViolation(err) {
				return modelExistsErr(newName)
			}
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE model_versions SET last_updated_time = ? WHERE workspace = 'default' AND "+nameEq(d), now, newName); err != nil {
			return err
		}
		m, err := loadModel(ctx, tx, newName)
		out = m
		return err
	})
	return out, err
}

func (a *API) updateModelDescription(ctx context.Context, name, desc string) (*registeredModel, error) {
	var out *registeredModel
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE registered_models SET description = ?, last_updated_time = ? WHERE workspace = 'default' AND "+nameEq(tx.Dialect()), desc, a.nowMillis(), name); err != nil {
			return err
		}
		m, err := loadModel(ctx, tx, name)
		out = m
		return err
	})
	return out, err
}

// deleteModel is a hard delete of the model and everything below it.
func (a *API) deleteModel(ctx context.Context, name string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		for _, table := range []string{"registered_model_aliases", "model_version_tags", "model_versions", "registered_model_tags", "registered_models"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE workspace = 'default' AND "+nameEq(tx.Dialect()), name); err != nil {
				return err
			}
		}
		return nil
	})
}

func (a *API) setModelTag(ctx context.Context, name string, t keyValue) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		return upsertModelTag(ctx, tx, name, t)
	})
}

func (a *API) deleteModelTag(ctx context.Context, name, key string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM registered_model_tags WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND "+metadata.ExactEq(tx.Dialect(), "key"), name, key)
		return err
	})
}

func (a *API) readLatest(ctx context.Context, name string, stages []string) ([]modelVersion, error) {
	var out []modelVersion
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, false); err != nil {
			return err
		}
		vs, err := latestVersions(ctx, tx, name, stages)
		out = vs
		return err
	})
	return out, err
}

// liveVersion checks that a version exists and is not deleted.
func liveVersion(ctx context.Context, tx *metadata.Tx, name string, version int64) error {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM model_versions WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND version = ? AND current_stage <> ?", name, version, stageDeleted).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return versionNotFound(name, version)
	}
	return err
}

func (a *API) setAliasRow(ctx context.Context, name, alias string, version int64) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		if err := liveVersion(ctx, tx, name, version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM registered_model_aliases WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND "+metadata.ExactEq(tx.Dialect(), "alias"), name, alias); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO registered_model_aliases (alias, version, name, workspace) VALUES (?, ?, ?, 'default')", alias, version, name)
		return err
	})
}

func (a *API) deleteAliasRow(ctx context.Context, name, alias string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM registered_model_aliases WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+" AND "+metadata.ExactEq(tx.Dialect(), "alias"), name, alias)
		return err
	})
}

// versionByAlias resolves alias (or the reserved "latest": the highest
// live version) after checking that the model exists.
func (a *API) versionByAlias(ctx context.Context, name, alias string) (*modelVersion, error) {
	var out *modelVersion
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, false); err != nil {
			return err
		}
		version, err := aliasVersion(ctx, tx, name, alias)
		if err != nil {
			return err
		}
		v, err := loadVersion(ctx, tx, name, version)
		out = v
		return err
	})
	return out, err
}

// versionInput is what model-versions/create stores.
type versionInput struct {
	name, source                string
	runID, runLink, description *string
	tags                        []keyValue
	// modelID, for a non-prompt version made from a logged model, gets
	// the new version added to that model's mlflow.modelVersions tag.
	modelID string
}

func optional(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// insertVersion is model-versions/create: under the model's row lock the
// next number is MAX(version)+1 over every version, deleted ones included,
// so concurrent creators get 1..N without gaps or duplicates.
func (a *API) insertVersion(ctx context.Context, in versionInput) (*modelVersion, error) {
	var out *modelVersion
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, in.name, true); err != nil {
			return err
		}
		var max sql.NullInt64
		if err := tx.QueryRow(ctx, "SELECT MAX(version) FROM model_versions WHERE workspace = 'default' AND "+nameEq(tx.Dialect()), in.name).Scan(&max); err != nil {
			return err
		}
		version := max.Int64 + 1
		now := a.nowMillis()
		storage, runID, err := resolveStorage(ctx, tx, in.source, in.runID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO model_versions ("+versionCols+", workspace) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, 'READY', NULL, ?, ?, 'default')",
			in.name, version, now, now, optional(in.description), stageNone, in.source, optional(runID), optional(in.runLink), storage); err != nil {
			return err
		}
		for _, t := range lastWins(in.tags) {
			if err := upsertVersionTag(ctx, tx, in.name, version, t); err != nil {
				return err
			}
		}
		if in.modelID != "" {
			if err := addModelVersionsTag(ctx, tx, in.modelID, in.name, version); err != nil {
				return err
			}
		}
		if err := touchModel(ctx, tx, in.name, now); err != nil {
			return err
		}
		v, err := loadVersion(ctx, tx, in.name, version)
		out = v
		return err
	})
	return out, err
}

func (a *API) readVersion(ctx context.Context, name string, version int64) (*modelVersion, error) {
	var out *modelVersion
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		v, err := loadVersion(ctx, tx, name, version)
		out = v
		return err
	})
	return out, err
}

// writeVersion runs fn on a live version under the model's lock and
// returns the version as it is afterwards.
func (a *API) writeVersion(ctx context.Context, name string, version int64, fn func(tx *metadata.Tx, now int64) error) (*modelVersion, error) {
	var out *modelVersion
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		if err := liveVersion(ctx, tx, name, version); err != nil {
			return err
		}
		if err := fn(tx, a.nowMillis()); err != nil {
			return err
		}
		v, err := loadVersion(ctx, tx, name, version)
		out = v
		return err
	})
	return out, err
}

const whereVersion = " WHERE workspace = 'default' AND version = ? AND "

func (a *API) updateVersionDescription(ctx context.Context, name string, version int64, desc string) (*modelVersion, error) {
	return a.writeVersion(ctx, name, version, func(tx *metadata.Tx, now int64) error {
		_, err := tx.Exec(ctx, "UPDATE model_versions SET description = ?, last_updated_time = ?"+whereVersion+nameEq(tx.Dialect()), desc, now, version, name)
		return err
	})
}

// transition moves a version to stage; with archive, the other live
// versions in that stage go to Archived.
func (a *API) transition(ctx context.Context, name string, version int64, stage string, archive bool) (*modelVersion, error) {
	return a.writeVersion(ctx, name, version, func(tx *metadata.Tx, now int64) error {
		if archive && (stage == stageStaging || stage == stageProd) {
			if _, err := tx.Exec(ctx, "UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+
				" AND version <> ? AND current_stage = ?", stageArchived, now, name, version, stage); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE model_versions SET current_stage = ?, last_updated_time = ?"+whereVersion+nameEq(tx.Dialect()), stage, now, version, name); err != nil {
			return err
		}
		return touchModel(ctx, tx, name, now)
	})
}

// deleteVersion is upstream's soft delete: stage Deleted_Internal, the
// links redacted, aliases to it removed.
func (a *API) deleteVersion(ctx context.Context, name string, version int64) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockModel(ctx, tx, name, true); err != nil {
			return err
		}
		if err := liveVersion(ctx, tx, name, version); err != nil {
			return err
		}
		now := a.nowMillis()
		if _, err := tx.Exec(ctx, "DELETE FROM registered_model_aliases"+whereVersion+nameEq(tx.Dialect()), version, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE model_versions SET current_stage = ?, description = NULL, user_id = NULL, status_message = NULL, "+
			"source = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', last_updated_time = ?"+whereVersion+nameEq(tx.Dialect()),
			stageDeleted, now, version, name); err != nil {
			return err
		}
		return touchModel(ctx, tx, name, now)
	})
}

func (a *API) setVersionTag(ctx context.Context, name string, version int64, t keyValue) error {
	_, err := a.writeVersion(ctx, name, version, func(tx *metadata.Tx, _ int64) error {
		return upsertVersionTag(ctx, tx, name, version, t)
	})
	return err
}

func (a *API) deleteVersionTag(ctx context.Context, name string, version int64, key string) error {
	_, err := a.writeVersion(ctx, name, version, func(tx *metadata.Tx, _ int64) error {
		_, err := tx.Exec(ctx, "DELETE FROM model_version_tags"+whereVersion+nameEq(tx.Dialect())+" AND "+metadata.ExactEq(tx.Dialect(), "key"), version, name, key)
		return err
	})
	return err
}

// artifactRoot is the artifact location of the run (kind "run_id") or
// logged model ("model_id") a local model-version source must lie under;
// an unknown id is upstream's not-found error.
func (a *API) artifactRoot(ctx context.Context, kind, id string) (string, error) {
	q := "SELECT artifact_uri FROM runs WHERE run_uuid = ?"
	notFound := wire.Errorf(wire.ResourceDoesNotExist, "Run with id=%s not found", id)
	if kind == "model_id" {
		q = "SELECT artifact_location FROM logged_models WHERE model_id = ?"
		notFound = wire.Errorf(wire.ResourceDoesNotExist, "Logged model with ID '%s' not found.", id)
	}
	var root sql.NullString
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		err := tx.QueryRow(ctx, q, id).Scan(&root)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound
		}
		return err
	})
	return root.String, err
}

// resolveStorage is where a new version's files are: the source, except
// for models:/ sources, which are resolved (resolveModelsURI): a logged
// model id to its artifact location (and its source run when the request
// named none), a version, alias, stage or "latest" to that version's
// download URI.
func resolveStorage(ctx context.Context, tx *metadata.Tx, source string, runID *string) (string, *string, error) {
	if uriScheme(source) != "models" {
		return source, runID, nil
	}
	t, err := resolveModelsURI(ctx, tx, source)
	if reason := uriReason(err); reason != "" {
		return "", nil, wire.Errorf(wire.InvalidParameterValue,
			"Unable to fetch model from model URI source artifact location '%s'.Error: %s", source, reason)
	}
	if err != nil {
		return "", nil, err
	}
	if t.loggedModel && (runID == nil || *runID == "") && t.srcRun != "" {
		runID = &t.srcRun
	}
	return t.location, runID, nil
}

// isWireError reports whether err carries an MLflow error of its own.
func isWireError(err error) bool {
	var we *wire.Error
	return errors.As(err, &we)
}

// uriReason is the text of an error that says why a URI leads nowhere (a
// reasonError or an MLflow error), "" for none or a database failure.
func uriReason(err error) string {
	var re reasonError
	var we *wire.Error
	switch {
	case errors.As(err, &re):
		return string(re)
	case errors.As(err, &we):
		return we.Message
	}
	return ""
}
