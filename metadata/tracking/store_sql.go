package tracking

import (
	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
)

// exactEq is metadata.ExactEq: "<col> = ?" compared byte for byte.
func exactEq(d schema.Dialect, col string) string { return metadata.ExactEq(d, col) }
