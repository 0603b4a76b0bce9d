package registry

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// request is one call's parameters: from the query string of a GET that
// has one, else from the JSON body (spec tracking-api.md §1.2; registry
// DELETE and PATCH calls send JSON bodies).
type request struct {
	c     *fiber.Ctx
	query bool
	body  map[string]any
	// raw keeps each body field's JSON text, so that type errors show
	// numbers as sent (1e3 is the float 1000.0 to upstream).
	raw map[string]json.RawMessage
}

func readRequest(c *fiber.Ctx) (*request, *wire.Error) {
	r := &request{c: c}
	if (c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead) && len(c.Request().URI().QueryString()) > 0 {
		r.query = true
		return r, nil
	}
	r.body, r.raw = map[string]any{}, map[string]json.RawMessage{}
	if werr := wire.DecodeRequest(c, &r.raw); werr != nil {
		return nil, werr
	}
	for k, raw := range r.raw {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			r.body[k] = v
		}
	}
	return r, nil
}

// typeError is wire.TypeError for the field name holding v, from the
// field's JSON text when name is a top-level field.
func (r *request) typeError(name string, v any) *wire.Error {
	if raw, ok := r.raw[name]; ok {
		return wire.TypeError(name, raw)
	}
	return wire.InvalidType(name, v)
}

// str returns a string parameter and whether it was present.
func (r *request) str(name string) (string, bool, *wire.Error) {
	var s string
	if r.query {
		args := r.c.Request().URI().QueryArgs()
		if !args.Has(name) {
			return "", false, nil
		}
		s = string(args.Peek(name))
	} else {
		v, ok := r.body[name]
		if !ok || v == nil {
			return "", false, nil
		}
		if s, ok = v.(string); !ok {
			return "", false, r.typeError(name, v)
		}
	}
	if werr := wire.CheckText(name, s); werr != nil {
		return "", false, werr
	}
	return s, true, nil
}

// reqStr is str for a required parameter: absent or "" is upstream's
// missing-value error.
func (r *request) reqStr(name string) (string, *wire.Error) {
	s, ok, werr := r.str(name)
	if werr != nil {
		return "", werr
	}
	if !ok || s == "" {
		return "", wire.MissingParam(name)
	}
	return s, nil
}

// strs returns a repeated string parameter (stages=a&stages=b, or a JSON
// list).
func (r *request) strs(name string) ([]string, *wire.Error) {
	if r.query {
		var out []string
		for _, v := range r.c.Request().URI().QueryArgs().PeekMulti(name) {
			s := string(v)
			if werr := wire.CheckText(name, s); werr != nil {
				return nil, werr
			}
			out = append(out, s)
		}
		return out, nil
	}
	v, ok := r.body[name]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, r.typeError(name, v)
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, r.typeError(fmt.Sprintf("%s[%d]", name, i), x)
		}
		if werr := wire.CheckText(name, s); werr != nil {
			return nil, werr
		}
		out = append(out, s)
	}
	return out, nil
}

// boolean returns a bool parameter (false when absent); the query string
// form takes true/false as protobuf's JSON parser does.
func (r *request) boolean(name string) (bool, *wire.Error) {
	if r.query {
		s, ok, werr := r.str(name)
		if werr != nil || !ok {
			return false, werr
		}
		switch s {
		case "true", "True":
			return true, nil
		case "false", "False", "":
			return false, nil
		}
		return false, r.typeError(name, s)
	}
	v, ok := r.body[name]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, r.typeError(name, v)
	}
	return b, nil
}

// integer returns an integer parameter (a JSON number, or a numeric
// string as protobuf accepts for int64) and whether it was present.
func (r *request) integer(name string) (int64, bool, *wire.Error) {
	var raw any
	if r.query {
		s, ok, werr := r.str(name)
		if werr != nil || !ok {
			return 0, false, werr
		}
		raw = s
	} else {
		v, ok := r.body[name]
		if !ok || v == nil {
			return 0, false, nil
		}
		raw = v
	}
	switch x := raw.(type) {
	case float64:
		if x == float64(int64(x)) && x >= -(1<<62) && x <= 1<<62 {
			return int64(x), true, nil
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, true, nil
		}
	}
	return 0, false, r.typeError(name, raw)
}

// tags returns a list of {key, value} objects.
func (r *request) tags(name string) ([]keyValue, *wire.Error) {
	if r.query {
		return nil, nil
	}
	v, ok := r.body[name]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, r.typeError(name, v)
	}
	out := make([]keyValue, 0, len(list))
	for i, x := range list {
		obj, ok := x.(map[string]any)
		if !ok {
			return nil, r.typeError(fmt.Sprintf("%s[%d]", name, i), x)
		}
		var kv keyValue
		for _, f := range []struct {
			field string
			dst   *string
		}{{"key", &kv.Key}, {"value", &kv.Value}} {
			switch s := obj[f.field].(type) {
			case nil:
			case string:
				if werr := wire.CheckText(f.field, s); werr != nil {
					return nil, werr
				}
				*f.dst = s
			default:
				return nil, r.typeError(fmt.Sprintf("%s[%d].%s", name, i, f.field), s)
			}
		}
		out = append(out, kv)
	}
	return out, nil
}
