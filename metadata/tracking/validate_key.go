package tracking

import (
	"path"
	"regexp"
	"strings"

	"github.com/ferryml/ferry/wire"
)

// keyPattern is upstream's allowed characters for metric, param and tag
// keys on POSIX servers (Windows also forbids ':'). Python's \w is
// Unicode-aware: letters and numbers of any script plus '_'.
var keyPattern = regexp.MustCompile(`^[/\p{L}\p{N}_.\- :]*$`)

const badKeyCharacters = "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."

// validateKey checks an experiment-tag key: characters, upstream's
// "unique path" rule, then length, each error naming field.
func validateKey(field, key string) *wire.Error {
	return validateEntityKey(field, field, key)
}

// validateEntityKey checks a metric/param/tag key the way upstream's
// validation.py does: characters and the "unique path" rule (normalises
// to itself, not '.', no leading '..' or '/') reported against field,
// then the 250-character limit reported against lengthName (upstream
// names it "Param key", "Metric name", "key" or "tags[3].key").
func validateEntityKey(field, lengthName, key string) *wire.Error {
	if err := wire.CheckText(field, key); err != nil {
		return err
	}
	if !keyPattern.MatchString(key) {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %s for parameter '%s' supplied: %s", wire.PyJSON(key), field, badKeyCharacters)
	}
	if clean := path.Clean(key); clean != key || key == "." || strings.HasPrefix(clean, "..") || strings.HasPrefix(clean, "/") {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %s for parameter '%s' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to %s", wire.PyJSON(key), field, wire.PyRepr(clean))
	}
	if runeLen(key) > maxEntityKeyLen {
		return exceedsLength(lengthName, maxEntityKeyLen)
	}
	return nil
}

func exceedsLength(name string, limit int) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "'%s' exceeds the maximum length of %d characters", name, limit)
}
