package registry

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// Column sizes of upstream's registry tables.
const (
	maxNameLen        = 256
	maxDescriptionLen = 5000
	maxTagKeyLen      = 250
	maxModelTagValue  = 5000 // registered_model_tags.value VARCHAR(5000)
	maxVersionTagVal  = 100000
	maxAliasLen       = 255
	maxSourceLen      = 500
)

// validateName is upstream 3.11's _validate_model_name, which every
// registry call runs on name (and rename on new_name) before anything else.
func validateName(field, name string) *wire.Error {
	if strings.TrimSpace(name) == "" {
		return wire.Errorf(wire.InvalidParameterValue, "Missing value for required parameter '%s'.", field)
	}
	if strings.ContainsAny(name, "/:") {
		return wire.Errorf(wire.InvalidParameterValue, "Invalid model name '%s'. Names cannot contain '/' or ':'.", name)
	}
	// Without '/', posixpath.normpath only changes "." and names
	// starting with "..".
	if clean := path.Clean(name); clean != name || name == "." || strings.HasPrefix(name, "..") {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %s for parameter '%s' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to %s",
			wire.PyJSON(name), field, wire.PyRepr(clean))
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		return wire.Errorf(wire.InvalidParameterValue, "'%s' exceeds the maximum length of %d characters", field, maxNameLen)
	}
	return nil
}

// parseVersion is upstream's version check: the string must be an int.
func parseVersion(v string) (int64, *wire.Error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, wire.Errorf(wire.InvalidParameterValue, "Parameter 'version' must be an integer, got '%s'.", v)
	}
	return n, nil
}

var tagKeyPattern = regexp.MustCompile(`^[/\w.\- :]*$`)

// validateTag is _validate_model_version_tag / _validate_registered_model_tag.
func validateTag(key, value string, maxValue int) *wire.Error {
	if key == "" {
		return wire.MissingParam("key")
	}
	if !tagKeyPattern.MatchString(key) {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %s for parameter 'key' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).", wire.PyJSON(key))
	}
	if clean := path.Clean(key); clean != key || key == "." || strings.HasPrefix(key, "..") || strings.HasPrefix(key, "/") {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %s for parameter 'key' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to %s",
			wire.PyJSON(key), wire.PyRepr(clean))
	}
	if utf8.RuneCountInString(key) > maxTagKeyLen {
		return wire.Errorf(wire.InvalidParameterValue, "'key' exceeds the maximum length of %d characters", maxTagKeyLen)
	}
	if utf8.RuneCountInString(value) > maxValue {
		return wire.Errorf(wire.InvalidParameterValue, "'value' exceeds the maximum length of %d characters", maxValue)
	}
	return nil
}

// maxMySQLTextBytes is what model_version_tags.value holds on MySQL:
// upstream's column is sa.Text, a 64 KiB TEXT there (unbounded on
// PostgreSQL and SQLite). Prompt templates live in this column.
const maxMySQLTextBytes = 65535

// validateVersionTag is validateTag with the version-tag limit, plus the
// MySQL column's byte limit, so that a long prompt template gets a
// message naming the limit instead of the database's error.
func (a *API) validateVersionTag(key, value string) *wire.Error {
	if werr := validateTag(key, value, maxVersionTagVal); werr != nil {
		return werr
	}
	if a.db.Dialect() == schema.MySQL && len(value) > maxMySQLTextBytes {
		return wire.Errorf(wire.InvalidParameterValue,
			"'value' exceeds the maximum length of %d bytes (UTF-8) that this MySQL database's model_version_tags.value column holds", maxMySQLTextBytes)
	}
	return nil
}

var aliasPattern = regexp.MustCompile(`^[\w\-]*$`)
var versionAlias = regexp.MustCompile(`^[vV]\d+$`)

// validateAlias is _validate_model_alias_name plus the reserved names.
func validateAlias(alias string) *wire.Error {
	if alias == "" {
		return wire.MissingParam("alias")
	}
	if !aliasPattern.MatchString(alias) {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
	}
	if utf8.RuneCountInString(alias) > maxAliasLen {
		return wire.Errorf(wire.InvalidParameterValue, "'alias' exceeds the maximum length of %d characters", maxAliasLen)
	}
	if strings.EqualFold(alias, "latest") {
		return wire.Errorf(wire.InvalidParameterValue, "'latest' alias name (case insensitive) is reserved.")
	}
	if versionAlias.MatchString(alias) {
		return wire.Errorf(wire.InvalidParameterValue, "Version alias name '%s' is reserved.", alias)
	}
	return nil
}

// Stages, canonical spelling.
const (
	stageNone     = "None"
	stageStaging  = "Staging"
	stageProd     = "Production"
	stageArchived = "Archived"
	stageDeleted  = "Deleted_Internal"
)

var allStages = []string{stageNone, stageStaging, stageProd, stageArchived}

// canonicalStage is get_canonical_stage: case-insensitive input.
func canonicalStage(s string) (string, *wire.Error) {
	for _, st := range allStages {
		if strings.EqualFold(s, st) {
			return st, nil
		}
	}
	return "", wire.Errorf(wire.InvalidParameterValue,
		"Invalid Model Version stage: %s. Value must be one of None, Staging, Production, Archived.", s)
}

func checkDescription(d string) *wire.Error {
	if utf8.RuneCountInString(d) > maxDescriptionLen {
		return wire.Errorf(wire.InvalidParameterValue, "'description' exceeds the maximum length of %d characters", maxDescriptionLen)
	}
	return nil
}
