package metadata

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/proxy/wire"
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
	if err := checkText(field, name); err != nil {
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
	if err := checkText("artifact_location", loc); err != nil {
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
	return nil
}

func truncateForMessage(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
