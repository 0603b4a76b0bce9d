package registry

import (
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
}

func readRequest(c *fiber.Ctx) (*request, *wire.Error) {
	r := &request{c: c}
	if (c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead) && len(c.Request().URI().QueryString()) > 0 {
		r.query = true
		return r, nil
	}
	r.body = map[string]any{}
	if werr := wire.DecodeRequest(c, &r.body); werr != nil {
		return nil, werr
	}
	return r, nil
}

// pyValue renders a decoded JSON value as Python's str() of what
// upstream's json.loads gives, for its type-error messages.
func pyValue(v any) (shown, typ string) {
	switch x := v.(type) {
	case bool:
		if x {
			return "True", "bool"
		}
		return "False", "bool"
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10), "int"
		}
		return strconv.FormatFloat(x, 'g', -1, 64), "float"
	case []any:
		return fmt.Sprint(x), "list"
	case map[string]any:
		return fmt.Sprint(x), "dict"
	}
	return fmt.Sprint(v), fmt.Sprintf("%T", v)
}

func typeError(name string, v any) *wire.Error {
	shown, typ := pyValue(v)
	return wire.Errorf(wire.InvalidParameterValue,
		"Invalid value %s for parameter '%s' supplied: Hint: Value was of type '%s'. See the API docs for more information about request parameters.", shown, name, typ)
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
			return "", false, typeError(name, v)
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
		return nil, typeError(name, v)
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, typeError(fmt.Sprintf("%s[%d]", name, i), x)
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
		return false, typeError(name, s)
	}
	v, ok := r.body[name]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, typeError(name, v)
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
	return 0, false, typeError(name, raw)
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
		return nil, typeError(name, v)
	}
	out := make([]keyValue, 0, len(list))
	for i, x := range list {
		obj, ok := x.(map[string]any)
		if !ok {
			return nil, typeError(fmt.Sprintf("%s[%d]", name, i), x)
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
				return nil, typeError(fmt.Sprintf("%s[%d].%s", name, i, f.field), s)
			}
		}
		out = append(out, kv)
	}
	return out, nil
}
