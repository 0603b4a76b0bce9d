package wire

import (
	"encoding/json"
	"unicode/utf8"
)

// InvalidType is TypeError for a value decoded into an any.
func InvalidType(field string, v any) *Error {
	raw, err := json.Marshal(v)
	if err != nil {
		raw = []byte("null")
	}
	return TypeError(field, raw)
}

// CheckText refuses strings no database column can hold: invalid UTF-8
// and NUL bytes (PostgreSQL rejects both; refusing everywhere keeps the
// three backends alike).
func CheckText(field, v string) *Error {
	if !utf8.ValidString(v) {
		return Errorf(InvalidParameterValue, "Invalid value for parameter '%s': not valid UTF-8.", field)
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return Errorf(InvalidParameterValue, "Invalid value for parameter '%s': contains a NUL character.", field)
		}
	}
	return nil
}
