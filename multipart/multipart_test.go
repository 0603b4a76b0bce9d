package multipart

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestObjectKey(t *testing.T) {
	tests := []struct {
		dir, clientPath, want string
		ok                    bool
	}{
		{"0/r/artifacts/weights", "/data/big.bin", "0/r/artifacts/weights/big.bin", true},
		{"0/r/artifacts", "big.bin", "0/r/artifacts/big.bin", true},
		{"0/r/artifacts", `C:\data\big.bin`, "0/r/artifacts/big.bin", true},
		{"a", "/data/", "", false},
		{"a", "..", "", false},
		{"a", "/x/..", "", false},
		{"a", "x/.", "", false},
		{"a", "/tmp/f#1", "", false},
		{"a", "/tmp/f\x00", "", false},
	}
	for _, tt := range tests {
		got, werr := ObjectKey(tt.dir, tt.clientPath)
		if tt.ok != (werr == nil) || got != tt.want {
			t.Errorf("ObjectKey(%q, %q) = %q, %v; want %q ok=%v", tt.dir, tt.clientPath, got, werr, tt.want, tt.ok)
		}
	}
}

func TestInt64AcceptsNumbersAndNumericStrings(t *testing.T) {
	for in, want := range map[string]int64{`{"num_parts": 3}`: 3, `{"num_parts": "42"}`: 42, `{"num_parts": " 7 "}`: 7, `{"num_parts": null}`: 0, `{}`: 0} {
		var r CreateRequest
		if err := json.Unmarshal([]byte(in), &r); err != nil || int64(r.NumParts) != want {
			t.Errorf("%s → %d, %v; want %d", in, r.NumParts, err, want)
		}
	}
	for in, kind := range map[string]string{`{"num_parts": "x"}`: "string", `{"num_parts": true}`: "bool", `{"num_parts": {}}`: "object", `{"num_parts": 1.5}`: "number"} {
		var r CreateRequest
		err := json.Unmarshal([]byte(in), &r)
		var te *json.UnmarshalTypeError
		if err == nil || !asTypeError(err, &te) || te.Field != "num_parts" || te.Value != kind {
			t.Errorf("%s → %v; want a type error for field num_parts of kind %s", in, err, kind)
		}
	}
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	e, ok := err.(*json.UnmarshalTypeError)
	*te = e
	return ok
}

func TestNoCapabilityIsUpstreams501AfterRequiredChecks(t *testing.T) {
	if _, werr := Create(t.Context(), nil, "a", CreateRequest{}); werr == nil || !strings.Contains(werr.Message, "'path'") {
		t.Fatalf("missing path must be reported before the capability check, got %v", werr)
	}
	_, werr := Create(t.Context(), nil, "a", CreateRequest{Path: "f.bin", NumParts: 2})
	if werr == nil || werr.Code != "NOT_IMPLEMENTED" || werr.Message != NotSupportedMessage || werr.Code.Status() != 501 {
		t.Fatalf("got %+v, want 501 NOT_IMPLEMENTED with upstream's message", werr)
	}
	if werr := Complete(t.Context(), nil, "a", CompleteRequest{Path: "f.bin"}); werr == nil || !strings.Contains(werr.Message, "'parts'") {
		t.Fatalf("complete without parts: %v", werr)
	}
	if _, werr := Create(t.Context(), nil, "a", CreateRequest{Path: "f.bin", NumParts: MaxParts + 1}); werr == nil || werr.Code.Status() != 400 {
		t.Fatalf("too many parts: %v", werr)
	}
}
