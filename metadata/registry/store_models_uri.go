package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/wire"
)

// reasonError is why a models:/ or runs:/ URI leads nowhere (not a
// database failure): the create path wraps it in upstream's "Unable to
// fetch model …" message, downloads answer it as a 400.
type reasonError string

func (e reasonError) Error() string { return string(e) }

// modelsURI is a parsed models:/ URI, upstream's _parse_model_uri: exactly
// one of modelID, version, stage, alias is set, or none (latest).
type modelsURI struct {
	modelID, name, version, stage, alias string
}

// improperModelsURI is upstream's _improper_model_uri_msg.
func improperModelsURI(uri string) string {
	return fmt.Sprintf("Not a proper models:/ URI: %s. Models URIs must be of the form 'models:/name/suffix' or 'models:/name@alias' "+
		"where suffix is a version, stage, or the string 'latest' and where alias is a registered model alias. "+
		"Only one of suffix or alias can be defined at a time.", uri)
}

// parseModelsURI is _parse_model_uri for the models scheme:
// models:/<name>/<digits> a version, models:/<name>/latest (any case) the
// latest version, models:/<name>/<other> a stage, models:/<name>@<alias>
// an alias, models:/<id> a logged model.
func parseModelsURI(uri string) (modelsURI, error) {
	bad := reasonError(improperModelsURI(uri))
	p := urlPath(uri)
	if !strings.HasPrefix(p, "/") || len(p) <= 1 {
		return modelsURI{}, bad
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	if len(parts) > 2 || strings.TrimSpace(parts[0]) == "" {
		return modelsURI{}, bad
	}
	if len(parts) == 2 {
		name, suffix := parts[0], parts[1]
		switch {
		case strings.TrimSpace(suffix) == "":
			return modelsURI{}, bad
		case isDigits(suffix):
			return modelsURI{name: name, version: suffix}, nil
		case strings.EqualFold(suffix, "latest"):
			return modelsURI{name: name}, nil
		}
		return modelsURI{name: name, stage: suffix}, nil
	}
	if strings.Contains(p, "@") {
		i := strings.LastIndexByte(parts[0], '@')
		if i < 0 || strings.TrimSpace(parts[0][i+1:]) == "" {
			return modelsURI{}, bad
		}
		return modelsURI{name: parts[0][:i], alias: parts[0][i+1:]}, nil
	}
	return modelsURI{modelID: parts[0]}, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// aliasVersion is the version alias points to; the reserved "latest" is
// the highest live version. The model must exist (checked by the caller).
func aliasVersion(ctx context.Context, tx *metadata.Tx, name, alias string) (int64, error) {
	if alias == "latest" {
		return latestVersion(ctx, tx, name, "", wire.Errorf(wire.InvalidParameterValue, "Registered model alias %s not found.", alias))
	}
	var version int64
	q := "SELECT version FROM registered_model_aliases WHERE workspace = 'default' AND " + nameEq(tx.Dialect()) + " AND " + metadata.ExactEq(tx.Dialect(), "alias")
	if err := tx.QueryRow(ctx, q, name, alias).Scan(&version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, wire.Errorf(wire.InvalidParameterValue, "Registered model alias %s not found.", alias)
		}
		return 0, err
	}
	return version, nil
}

// latestVersion is the highest live version of name, in stage when stage
// is not "" (a canonical stage); none is the error when there is none.
func latestVersion(ctx context.Context, tx *metadata.Tx, name, stage string, none error) (int64, error) {
	q := "SELECT MAX(version) FROM model_versions WHERE workspace = 'default' AND " + nameEq(tx.Dialect()) + " AND current_stage <> ?"
	args := []any{name, stageDeleted}
	if stage != "" {
		q += " AND current_stage = ?"
		args = append(args, stage)
	}
	var v sql.NullInt64
	if err := tx.QueryRow(ctx, q, args...).Scan(&v); err != nil {
		return 0, err
	}
	if !v.Valid {
		return 0, none
	}
	return v.Int64, nil
}

// modelsTarget is where a models:/ URI leads: a logged model's artifact
// location (with its source run), or a registry version's download URI.
type modelsTarget struct {
	location string
	// srcRun is the run the location belongs to: the logged model's
	// source run, or the version's run_id ("" when none).
	srcRun string
	// loggedModel is true when location is a logged model's
	// artifact_location (read from the database, not user-supplied).
	loggedModel bool
	// name and version identify the registry version (loggedModel false).
	name    string
	version int64
}

// resolveModelsURI follows a models:/ URI as upstream's client does
// (get_model_name_and_version): a logged model id to its artifact
// location; a version, alias, stage or "latest" to that version's
// download URI (storage_location, else source). The error's text is the
// reason only; callers wrap it.
//
// Upstream's server store resolves only the version and logged-model
// forms at create time (it passes the parsed version, None for the other
// forms, and fails); Ferry resolves the alias, stage and latest forms
// the way the client resolves them when it loads such a URI.
func resolveModelsURI(ctx context.Context, tx *metadata.Tx, uri string) (modelsTarget, error) {
	m, err := parseModelsURI(uri)
	if err != nil {
		return modelsTarget{}, err
	}
	if m.modelID != "" {
		var loc, srcRun sql.NullString
		err := tx.QueryRow(ctx, "SELECT artifact_location, source_run_id FROM logged_models WHERE model_id = ?", m.modelID).Scan(&loc, &srcRun)
		if errors.Is(err, sql.ErrNoRows) {
			return modelsTarget{}, reasonError(fmt.Sprintf("Logged model with ID '%s' not found.", m.modelID))
		}
		if err != nil {
			return modelsTarget{}, err
		}
		return modelsTarget{location: loc.String, srcRun: srcRun.String, loggedModel: true}, nil
	}
	var version int64
	switch {
	case m.version != "":
		v, err := strconv.ParseInt(m.version, 10, 32)
		if err != nil {
			return modelsTarget{}, reasonError(fmt.Sprintf("Parameter 'version' must be an integer, got '%s'.", m.version))
		}
		version = v
	default:
		if werr := validateName("name", m.name); werr != nil {
			return modelsTarget{}, werr
		}
		if err := lockModel(ctx, tx, m.name, false); err != nil {
			return modelsTarget{}, err
		}
		switch {
		case m.alias != "":
			version, err = aliasVersion(ctx, tx, m.name, m.alias)
		case m.stage != "":
			stage, werr := canonicalStage(m.stage)
			if werr != nil {
				return modelsTarget{}, werr
			}
			version, err = latestVersion(ctx, tx, m.name, stage, reasonError(fmt.Sprintf("No versions of model with name '%s' and stage '%s' found", m.name, m.stage)))
		default:
			version, err = latestVersion(ctx, tx, m.name, "", reasonError(fmt.Sprintf("No versions of model with name '%s' found", m.name)))
		}
		if err != nil {
			return modelsTarget{}, err
		}
	}
	var storage, src, run sql.NullString
	err = tx.QueryRow(ctx, "SELECT storage_location, source, run_id FROM model_versions WHERE workspace = 'default' AND "+nameEq(tx.Dialect())+
		" AND version = ? AND current_stage <> ?", m.name, version, stageDeleted).Scan(&storage, &src, &run)
	if errors.Is(err, sql.ErrNoRows) {
		return modelsTarget{}, versionNotFound(m.name, version)
	}
	if err != nil {
		return modelsTarget{}, err
	}
	t := modelsTarget{location: src.String, srcRun: run.String, name: m.name, version: version}
	if storage.String != "" {
		t.location = storage.String
	}
	return t, nil
}

// modelVersionsTag is the logged-model tag listing the registry versions
// made from a logged model (upstream's mlflow.modelVersions).
const modelVersionsTag = "mlflow.modelVersions"

// addModelVersionsTag appends {"name", "version"} to the logged model's
// mlflow.modelVersions tag (a JSON list, no duplicates), as upstream's
// handler does with tracking_store.set_model_versions_tags after a
// non-prompt model-versions/create with a model_id. The registry may not
// import the tracking domain, so this is SQL on logged_model_tags inside
// the version's own transaction: the version and the tag land together
// (upstream's are two calls; a missing logged model fails the create
// here instead of failing after the version exists). The value is written
// as Python's json.dumps writes it; an existing value that is not a JSON
// list is replaced.
func addModelVersionsTag(ctx context.Context, tx *metadata.Tx, modelID, name string, version int64) error {
	var exp int64
	err := tx.QueryRow(ctx, "SELECT experiment_id FROM logged_models WHERE model_id = ?", modelID).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return wire.Errorf(wire.ResourceDoesNotExist, "Logged model with ID '%s' not found.", modelID)
	}
	if err != nil {
		return err
	}
	var old sql.NullString
	err = tx.QueryRow(ctx, "SELECT tag_value FROM logged_model_tags WHERE model_id = ? AND "+metadata.ExactEq(tx.Dialect(), "tag_key"), modelID, modelVersionsTag).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var entries []map[string]any
	if old.Valid {
		dec := json.NewDecoder(strings.NewReader(old.String))
		dec.UseNumber()
		if dec.Decode(&entries) != nil {
			entries = nil
		}
	}
	self := strconv.FormatInt(version, 10)
	dup := false
	for _, e := range entries {
		if len(e) == 2 && e["name"] == name && fmt.Sprint(e["version"]) == self {
			dup = true
		}
	}
	if !dup {
		entries = append(entries, map[string]any{"name": name, "version": json.Number(self)})
	}
	if _, err := tx.Exec(ctx, "DELETE FROM logged_model_tags WHERE model_id = ? AND "+metadata.ExactEq(tx.Dialect(), "tag_key"), modelID, modelVersionsTag); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) VALUES (?, ?, ?, ?)",
		modelID, exp, modelVersionsTag, pyJSONList(entries))
	return err
}

// pyJSONList renders entries as Python's json.dumps does (", " and ": "
// separators, ASCII escapes), "name" and "version" first in each object.
func pyJSONList(entries []map[string]any) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range entries {
		if i > 0 {
			b.WriteString(", ")
		}
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		rank := func(k string) int {
			switch k {
			case "name":
				return 0
			case "version":
				return 1
			}
			return 2
		}
		sort.Slice(keys, func(a, c int) bool {
			if rank(keys[a]) != rank(keys[c]) {
				return rank(keys[a]) < rank(keys[c])
			}
			return keys[a] < keys[c]
		})
		b.WriteByte('{')
		for j, k := range keys {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(wire.PyJSON(k) + ": " + pyJSONValue(e[k]))
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.String()
}

func pyJSONValue(v any) string {
	switch x := v.(type) {
	case string:
		return wire.PyJSON(x)
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	case nil:
		return "null"
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}
