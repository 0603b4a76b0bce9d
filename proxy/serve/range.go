package serve

import (
	"strconv"
	"strings"
)

// parseOpenRange recognises the ranges that need no size to serve: one
// "bytes=a-b" (b >= a) or "bytes=a-" (end = -1). Everything else (suffix
// ranges, several ranges, garbage) goes through parseRange after a Stat.
func parseOpenRange(h string) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found || first == "" {
		return 0, 0, false
	}
	a, ok := rangeNumber(first)
	if !ok {
		return 0, 0, false
	}
	if last == "" {
		return a, -1, true
	}
	b, ok := rangeNumber(last)
	if !ok || b < a {
		return 0, 0, false
	}
	return a, b, true
}

// rangeNumber parses a range bound: digits only (RFC 9110 1*DIGIT), so
// "+1" or " 1" is not a number here although strconv would take it.
func rangeNumber(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseRange understands one "bytes=" range: "a-b", "a-" or "-n". ok is
// false when the header should be ignored (other units, several ranges,
// garbage: RFC 9110 lets a server answer 200 with the whole object);
// satisfiable is false when the range lies outside the object.
func parseRange(h string, size int64) (start, length int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, true
	}
	if first == "" {
		n, ok := rangeNumber(last)
		if !ok {
			return 0, 0, false, true
		}
		if n == 0 || size == 0 {
			return 0, 0, false, false
		}
		if n > size {
			n = size
		}
		return size - n, n, true, true
	}
	a, ok := rangeNumber(first)
	if !ok {
		return 0, 0, false, true
	}
	end := size - 1
	if last != "" {
		b, ok := rangeNumber(last)
		if !ok || b < a {
			return 0, 0, false, true
		}
		if b < end {
			end = b
		}
	}
	if a >= size {
		return 0, 0, false, false
	}
	return a, end - a + 1, true, true
}
