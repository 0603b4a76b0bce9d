package tracing

import (
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// request is one call's parameters: the query string of a GET that has
// one, else the JSON body (spec tracking-api.md §1.2). Nested messages
// (trace.trace_info, assessment) exist only in bodies.
type request struct {
	c     *fiber.Ctx
	query bool
	body  map[string]any
}

func readRequest(c *fiber.Ctx) (*request, *wire.Error) {
	r := &request{c: c}
	if c.Method() == fiber.MethodGet && len(c.Request().URI().QueryString()) > 0 {
		r.query = true
		return r, nil
	}
	r.body = map[string]any{}
	if werr := wire.DecodeRequest(c, &r.body); werr != nil {
		return nil, werr
	}
	return r, nil
}

// raw is a body field, or the first query value as a string.
func (r *request) raw(name string) (any, bool) {
	if r.query {
		args := r.c.Request().URI().QueryArgs()
		if !args.Has(name) {
			return nil, false
		}
		return string(args.Peek(name)), true
	}
	v, ok := r.body[name]
	return v, ok && v != nil
}

// str returns a string parameter and whether it was present.
func (r *request) str(name string) (string, bool, *wire.Error) {
	v, ok := r.raw(name)
	if !ok {
		return "", false, nil
	}
	return asString(name, v)
}

func asString(field string, v any) (string, bool, *wire.Error) {
	s, ok := v.(string)
	if !ok {
		return "", false, typeError(field, v)
	}
	if werr := wire.CheckText(field, s); werr != nil {
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

// strs returns a repeated string parameter (?ids=a&ids=b, or a JSON list).
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
	v, ok := r.raw(name)
	if !ok {
		return nil, nil
	}
	return asStrings(name, v)
}

func asStrings(field string, v any) ([]string, *wire.Error) {
	list, ok := v.([]any)
	if !ok {
		return nil, typeError(field, v)
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		s, _, werr := asString(fmt.Sprintf("%s[%d]", field, i), x)
		if werr != nil {
			return nil, werr
		}
		out = append(out, s)
	}
	return out, nil
}

// boolean returns a bool parameter (false when absent); the query form
// takes true/false in any case, as upstream (§1.2).
func (r *request) boolean(name string) (bool, *wire.Error) {
	v, ok := r.raw(name)
	if !ok {
		return false, nil
	}
	if r.query {
		s := v.(string)
		switch b, err := strconv.ParseBool(s); {
		case err == nil && (len(s) == 4 || len(s) == 5):
			return b, nil
		}
		return false, wire.Errorf(wire.InvalidParameterValue, "Invalid boolean value: %s, must be 'true' or 'false'.", s)
	}
	b, ok := v.(bool)
	if !ok {
		return false, typeError(name, v)
	}
	return b, nil
}

// integer returns an int64 parameter (a JSON number, or a numeric string
// as protobuf accepts for int64) and whether it was present.
func (r *request) integer(name string) (int64, bool, *wire.Error) {
	v, ok := r.raw(name)
	if !ok {
		return 0, false, nil
	}
	n, werr := asInt(name, v)
	return n, werr == nil, werr
}

func asInt(field string, v any) (int64, *wire.Error) {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) && x >= -(1<<62) && x <= 1<<62 {
			return int64(x), nil
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, typeError(field, v)
}

// object returns a nested message of the body.
func (r *request) object(name string) (map[string]any, bool, *wire.Error) {
	v, ok := r.raw(name)
	if !ok || r.query {
		return nil, false, nil
	}
	return asObject(name, v)
}

func asObject(field string, v any) (map[string]any, bool, *wire.Error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false, typeError(field, v)
	}
	return m, true, nil
}

// typeError is upstream's wrong-type message (wire.InvalidType: the value
// as json.dumps shows it, Python's type name), the same as tracking's and
// the registry's. The handlers see decoded JSON, so a number written 1e3
// shows as 1000 (int) where upstream shows 1000.0 (float).
func typeError(field string, v any) *wire.Error {
	return wire.InvalidType(field, v)
}

// strField reads an optional string member of a nested message.
func strField(m map[string]any, path, name string) (string, bool, *wire.Error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", false, nil
	}
	return asString(path+"."+name, v)
}

// stringMap reads a map<string,string> member of a nested message
// (proto JSON object form).
func stringMap(m map[string]any, path, name string) (map[string]string, *wire.Error) {
	v, ok := m[name]
	if !ok || v == nil {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, typeError(path+"."+name, v)
	}
	out := make(map[string]string, len(obj))
	for k, x := range obj {
		if werr := wire.CheckText(path+"."+name, k); werr != nil {
			return nil, werr
		}
		s, _, werr := asString(path+"."+name+"."+k, x)
		if werr != nil {
			return nil, werr
		}
		out[k] = s
	}
	return out, nil
}
