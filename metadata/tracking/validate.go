package tracking

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/wire"
)

// Limits from upstream's mlflow/utils/validation.py (spec §4).
const (
	maxExperimentNameLen       = 500
	maxArtifactLocationLen     = 2048 // MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH default
	maxEntityKeyLen            = 250
	maxExperimentTagValueLen   = 5000
	maxDecodeRoundsForLocation = 10
)

// parseExperimentID parses an experiment id. Upstream answers a
// non-integer id with a 500 from int(); Ferry answers 400 (hostile input
// never yields a 500).
func parseExperimentID(field, s string) (int64, *wire.Error) {
	if s == "" {
		return 0, wire.MissingParam(field)
	}
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil || id < 0 {
		return 0, wire.Errorf(wire.InvalidParameterValue, "Invalid value '%s' for parameter '%s': experiment ids are non-negative integers.", truncateForMessage(s), field)
	}
	return id, nil
}

func validateExperimentName(field, name string) *wire.Error {
	if err := wire.CheckText(field, name); err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" {
		return wire.Errorf(wire.InvalidParameterValue, "Invalid experiment name: '%s'", name)
	}
	if len([]rune(name)) > maxExperimentNameLen {
		return wire.Errorf(wire.InvalidParameterValue, "'%s' exceeds the maximum length of %d characters", field, maxExperimentNameLen)
	}
	return nil
}

// validateArtifactLocation applies upstream's artifact_location checks and
// refuses locations that would point the server at its own filesystem in
// disguise: URL fragments and ;params, '..' segments (also when
// percent-encoded, however often), a runs: prefix.
func validateArtifactLocation(loc string) *wire.Error {
	if err := wire.CheckText("artifact_location", loc); err != nil {
		return err
	}
	if len(loc) > maxArtifactLocationLen {
		return wire.Errorf(wire.InvalidParameterValue, "'artifact_location' exceeds the maximum length of %d characters", maxArtifactLocationLen)
	}
	if strings.HasPrefix(loc, "runs:") {
		return wire.Errorf(wire.InvalidParameterValue, "'artifact_location' cannot be a 'runs:' URI.")
	}
	decoded := loc
	for i := 0; i < maxDecodeRoundsForLocation; i++ {
		next, err := url.PathUnescape(decoded)
		if err != nil || next == decoded {
			break
		}
		decoded = next
	}
	if strings.ContainsAny(decoded, "#") || (strings.Contains(decoded, ";") && strings.Contains(loc, "://")) {
		return wire.Errorf(wire.InvalidParameterValue, "'artifact_location' URL can't include fragments or params.")
	}
	if u, err := url.Parse(loc); err == nil && u.RawQuery != "" {
		q, _ := url.QueryUnescape(u.RawQuery)
		if strings.Contains(q, "..") {
			return wire.Errorf(wire.InvalidParameterValue, "Invalid query string")
		}
	}
	path := decoded
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, seg := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return wire.Errorf(wire.InvalidParameterValue, "'artifact_location' may not contain '..' path segments.")
		}
	}
	return validateLocalLocation(loc)
}

// validateLocalLocation refuses local locations (plain paths and file:
// URIs) that are not written plainly. Upstream accepts these and resolves
// them on the server (artifacts/list, later the proxy), so a disguised one
// could name a different file than a reader of the location would think:
// another host (file://host/ is a UNC share), a relative path smuggled
// past the "absolute against the CWD" rule (file:etc), an encoded
// separator or a double encoding that some decoder in the chain undoes
// once more, a backslash a Windows-minded tool treats as a separator, or
// './' and '//' segments that hide what the path normalises to. Plain
// spellings — /abs/path, ./rel, file:///abs/path (%20 and other single
// encodings of ordinary characters allowed), file://localhost/abs — pass.
// This is stricter than upstream (see NOTES.md, deviations).
func validateLocalLocation(loc string) *wire.Error {
	refuse := func(why string) *wire.Error {
		return wire.Errorf(wire.InvalidParameterValue,
			"'artifact_location' %s: write local locations as an absolute path or file:///absolute/path.", why)
	}
	if strings.TrimSpace(loc) != loc {
		return refuse("may not start or end with white space")
	}
	scheme, rest, hasScheme := strings.Cut(loc, ":")
	if hasScheme && len(scheme) >= 2 && !strings.ContainsAny(scheme, "/\\") {
		if !strings.EqualFold(scheme, "file") {
			return nil // another store's URI; its driver checks its keys
		}
		if scheme != "file" {
			return refuse("must spell the file scheme in lower case")
		}
		var path string
		switch {
		case strings.HasPrefix(rest, "///"):
			path = rest[2:]
		case strings.HasPrefix(rest, "//localhost/"):
			path = rest[len("//localhost"):]
		case strings.HasPrefix(rest, "//"):
			return refuse("may not name a host in a file URI")
		case strings.HasPrefix(rest, "/"):
			path = rest
		default:
			return refuse("may not be a relative file URI")
		}
		if strings.Contains(path, "?") {
			return refuse("may not carry a query in a file URI")
		}
		once, err := url.PathUnescape(path)
		if err != nil {
			return refuse("has a malformed percent-encoding")
		}
		if strings.Contains(once, "%") {
			return refuse("may not be percent-encoded twice")
		}
		if strings.ContainsFunc(once, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return refuse("may not encode control characters")
		}
		lower := strings.ToLower(path)
		if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%2e") {
			return refuse("may not percent-encode '/', '\\' or '.'")
		}
		return checkLocalSegments(once, refuse)
	}
	// MLflow clients turn a plain path into a file path with url2pathname,
	// which percent-decodes it; Ferry takes it literally. A '%' would make
	// the two name different directories.
	if strings.Contains(loc, "%") {
		return refuse("may not contain '%' in a plain path")
	}
	return checkLocalSegments(loc, refuse)
}

// checkLocalSegments refuses backslashes and, in absolute paths, empty and
// '.' segments (a trailing '/' is fine). Relative paths may start with
// './': upstream makes them absolute against the server's CWD.
func checkLocalSegments(p string, refuse func(string) *wire.Error) *wire.Error {
	if strings.Contains(p, "\\") {
		return refuse("may not contain a backslash")
	}
	trimmed := strings.TrimSuffix(p, "/")
	if !strings.HasPrefix(trimmed, "/") {
		trimmed = strings.TrimPrefix(trimmed, "./")
		if trimmed == "." {
			return nil // "." or "./": the server's working directory
		}
	} else {
		trimmed = trimmed[1:]
	}
	if trimmed == "" {
		return nil
	}
	for _, seg := range strings.Split(trimmed, "/") {
		if seg == "" || seg == "." {
			return refuse("may not contain empty or '.' path segments")
		}
	}
	return nil
}

func truncateForMessage(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
