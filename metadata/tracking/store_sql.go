package tracking

import "github.com/ferryml/ferry/metadata/schema"

// exactEq is "<col> = ?" compared byte for byte: MySQL's default
// collation ignores case (and trailing spaces), so it compares BINARY.
func exactEq(d schema.Dialect, col string) string {
	if d == schema.MySQL {
		return "BINARY " + d.Quote(col) + " = BINARY ?"
	}
	return d.Quote(col) + " = ?"
}
