package stores

import (
	"strings"
	"testing"
)

func TestEnvSize(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want int64
		bad  bool
	}{
		{"", 7, false}, {"  ", 7, false}, {"1048576", 1 << 20, false}, {" 42 ", 42, false},
		{"0", 0, true}, {"-5", 0, true}, {"10MiB", 0, true}, {"1e6", 0, true},
	} {
		got, err := EnvSize(func(string) string { return tc.v }, "X_SIZE", 7)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "X_SIZE=") {
				t.Errorf("%q: %d, %v; want an error naming the variable", tc.v, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.v, got, err, tc.want)
		}
	}
}
