package tracking

import (
	"fmt"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/wire"
)

// getArgs returns the string parameters of a GET request: from the query
// string when there is one, else from a JSON body (spec tracking-api.md
// §1.2). Only the first value of a repeated key is used.
func getArgs(c *fiber.Ctx, names ...string) (map[string]string, *wire.Error) {
	out := make(map[string]string, len(names))
	if len(c.Request().URI().QueryString()) > 0 {
		for _, n := range names {
			out[n] = c.Query(n)
		}
		return out, nil
	}
	body := map[string]any{}
	if err := wire.DecodeJSON(c, &body); err != nil {
		return nil, err
	}
	for _, n := range names {
		switch v := body[n].(type) {
		case nil:
		case string:
			out[n] = v
		default:
			return nil, invalidType(n, v)
		}
	}
	return out, nil
}

func invalidType(field string, v any) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue,
		"Invalid value %v for parameter '%s' supplied: Hint: Value was of type '%T'. See the API docs for more information about request parameters.", v, field, v)
}

// checkText refuses strings no database column can hold: invalid UTF-8
// and NUL bytes (PostgreSQL rejects both; refusing everywhere keeps the
// three backends alike).
func checkText(field, v string) *wire.Error {
	if !utf8.ValidString(v) {
		return wire.Errorf(wire.InvalidParameterValue, "Invalid value for parameter '%s': not valid UTF-8.", field)
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return wire.Errorf(wire.InvalidParameterValue, "Invalid value for parameter '%s': contains a NUL character.", field)
		}
	}
	return nil
}

// send writes a handler result: err as an MLflow error (logged when it is
// a server fault), else body as JSON.
func (a *API) send(c *fiber.Ctx, body any, err error) error {
	if err != nil {
		we := metadata.WireError(err)
		if we.Code.Status() >= 500 {
			a.log.Error("tracking request failed", "method", c.Method(), "path", c.Path(), "code", we.Code, "err", we)
		}
		return wire.Send(c, we)
	}
	return c.JSON(body)
}

func fieldf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
