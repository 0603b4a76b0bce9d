package wire

import (
	"encoding/json"
	"math"
	"testing"
)

// TestDouble: finite values are JSON numbers, NaN and the infinities the
// strings upstream writes.
func TestDouble(t *testing.T) {
	for v, want := range map[float64]string{
		1.5: `1.5`, 0: `0`, -2e300: `-2e+300`,
		math.NaN(): `"NaN"`, math.Inf(1): `"Infinity"`, math.Inf(-1): `"-Infinity"`,
	} {
		b, err := json.Marshal(map[string]Double{"v": Double(v)})
		if err != nil || string(b) != `{"v":`+want+`}` {
			t.Errorf("Double(%v) = %s, %v; want %s", v, b, err, want)
		}
	}
}
