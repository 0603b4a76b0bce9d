package wire

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// GetArgs returns the string parameters of a GET request: from the query
// string when there is one, else from a JSON body (spec tracking-api.md
// §1.2). Only the first value of a repeated key is used.
func GetArgs(c *fiber.Ctx, names ...string) (map[string]string, *Error) {
	out := make(map[string]string, len(names))
	if len(c.Request().URI().QueryString()) > 0 {
		for _, n := range names {
			out[n] = c.Query(n)
		}
		return out, nil
	}
	body := map[string]any{}
	if err := DecodeJSON(c, &body); err != nil {
		return nil, err
	}
	for _, n := range names {
		switch v := body[n].(type) {
		case nil:
		case string:
			out[n] = v
		default:
			return nil, InvalidType(n, v)
		}
	}
	return out, nil
}

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
