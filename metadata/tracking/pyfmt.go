package tracking

import (
	"strings"
	"unicode/utf8"

	"github.com/ferryml/ferry/wire"
)

// pyRepr and pyJSON live in package wire (wire.PyRepr, wire.PyJSON):
// every domain's messages need them.

// pyListRepr renders a list of str as Python's repr().
func pyListRepr(items []string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = wire.PyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// truncateRunes cuts s to at most n characters (code points), as Python's
// s[:n] does.
func truncateRunes(s string, n int) string {
	if runeLen(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
