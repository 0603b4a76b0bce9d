package metadata

import (
	"path"
	"regexp"
	"strings"

	"github.com/ferryml/ferry/proxy/wire"
)

// keyPattern is upstream's allowed characters for metric, param and tag
// keys (POSIX servers; Windows also forbids ':').
var keyPattern = regexp.MustCompile(`^[/\w.\- :]*$`)

// validateKey checks a metric/param/tag key: length, characters, and
// upstream's "unique path" rule (normalises to itself, not '.', no
// leading '..' or '/').
func validateKey(field, key string) *wire.Error {
	if err := checkText(field, key); err != nil {
		return err
	}
	if len([]rune(key)) > maxEntityKeyLen {
		return wire.Errorf(wire.InvalidParameterValue, "'%s' exceeds the maximum length of %d characters", field, maxEntityKeyLen)
	}
	if !keyPattern.MatchString(key) {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value \"%s\" for parameter '%s' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).", key, field)
	}
	if path.Clean(key) != key || key == "." || strings.HasPrefix(key, "..") || strings.HasPrefix(key, "/") {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value \"%s\" for parameter '%s' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", key, field, path.Clean(key))
	}
	return nil
}
