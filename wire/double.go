package wire

import (
	"encoding/json"
	"math"
)

// Double is a proto double as upstream's JSON writes it: a number, or the
// strings "NaN", "Infinity" and "-Infinity" (spec: doubles), which
// encoding/json refuses to write for a float64.
type Double float64

// MarshalJSON implements json.Marshaler.
func (f Double) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(v)
}
