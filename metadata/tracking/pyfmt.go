package tracking

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferryml/ferry/wire"
)

// pyRepr and pyJSON live in package wire (wire.PyRepr, wire.PyJSON):
// every domain's messages need them.

// pyFloat renders f as Python's repr() of a float.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs >= 1e16 || abs < 1e-4) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Python writes 1e+16, Go 1e+16; Python pads exponents to 2 digits.
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

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
