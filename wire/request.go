package wire

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// Request is one MLflow call's parameters, read the way upstream's
// _get_request_message does (spec tracking-api.md §1.2): from the query
// string of a GET or HEAD that has one, else from the JSON body. Its
// getters apply upstream's type checks and answer a wrong type with
// TypeError's message; a field that is absent or JSON null is absent to
// every getter (proto: unset). A Request belongs to one handler call: it
// reads the fiber.Ctx's query args lazily and must not outlive it.
type Request struct {
	c     *fiber.Ctx
	query bool
	// values holds the body's fields decoded; body is its JSON text, kept
	// so that a type error can show a field as it was sent (1e3 is the
	// float 1000.0 to upstream, and 1000 once decoded). raw is body split
	// into fields, made by the first type error: splitting every body
	// up front would parse it twice for calls that have no error.
	values map[string]any
	body   []byte
	raw    map[string]json.RawMessage
}

// ReadRequest reads the call's parameters: a GET or HEAD with a query
// string takes them from it (nested messages cannot be written there, so
// Object finds none), any other call decodes its JSON body with
// DecodeRequest (POST and PUT must be application/json). HEAD counts as
// GET because fiber serves HEAD with the GET handler.
func ReadRequest(c *fiber.Ctx) (*Request, *Error) {
	r := &Request{c: c}
	if m := c.Method(); (m == fiber.MethodGet || m == fiber.MethodHead) && len(c.Request().URI().QueryString()) > 0 {
		r.query = true
		return r, nil
	}
	// The body is the request's (or its budget-charged copy) and lives
	// as long as the handler, which is as long as r may.
	data, werr := requestBody(c)
	if werr != nil {
		return nil, werr
	}
	if data != nil {
		if werr := unmarshalBody(data, &r.values); werr != nil {
			return nil, werr
		}
		r.body = data
	}
	return r, nil
}

// FromQuery reports whether the parameters came from a query string
// (then every value is a string and there are no nested messages).
func (r *Request) FromQuery() bool { return r.query }

// Value returns a parameter as decoded JSON (string, float64, bool,
// []any, map[string]any), or the first value of a query key as a string;
// ok is false when it is absent or null. The text is not checked: callers
// that take a string from it use AsString.
func (r *Request) Value(name string) (v any, ok bool) {
	if r.query {
		args := r.c.Request().URI().QueryArgs()
		if !args.Has(name) {
			return nil, false
		}
		return string(args.Peek(name)), true
	}
	v, ok = r.values[name]
	return v, ok && v != nil
}

// TypeError is upstream's wrong-type message for the top-level parameter
// name, showing the value as it was sent (its JSON text for a body field).
// Use InvalidType for values inside nested messages.
func (r *Request) TypeError(name string) *Error {
	if r.raw == nil && r.body != nil {
		// The body decoded once already, so it splits too.
		_ = json.Unmarshal(r.body, &r.raw)
	}
	if raw, ok := r.raw[name]; ok {
		return TypeError(name, raw)
	}
	v, _ := r.Value(name)
	return InvalidType(name, v)
}

// Str returns a string parameter and whether it was present; a present
// one has passed CheckText.
func (r *Request) Str(name string) (string, bool, *Error) {
	v, ok := r.Value(name)
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, r.TypeError(name)
	}
	if werr := CheckText(name, s); werr != nil {
		return "", false, werr
	}
	return s, true, nil
}

// ReqStr is Str for a required parameter: absent, null or "" is
// upstream's missing-value error (MissingParam).
func (r *Request) ReqStr(name string) (string, *Error) {
	s, ok, werr := r.Str(name)
	if werr != nil {
		return "", werr
	}
	if !ok || s == "" {
		return "", MissingParam(name)
	}
	return s, nil
}

// Strs returns a repeated string parameter: every value of the key in a
// query string (?ids=a&ids=b), else a JSON list of strings; nil when
// absent. A wrong element is named by its index (ids[1]), as the
// tracing and registry tests expect; tracking's own reader names the
// whole list instead.
func (r *Request) Strs(name string) ([]string, *Error) {
	if r.query {
		var out []string
		for _, v := range r.c.Request().URI().QueryArgs().PeekMulti(name) {
			s := string(v)
			if werr := CheckText(name, s); werr != nil {
				return nil, werr
			}
			out = append(out, s)
		}
		return out, nil
	}
	v, ok := r.Value(name)
	if !ok {
		return nil, nil
	}
	if _, isList := v.([]any); !isList {
		return nil, r.TypeError(name)
	}
	return AsStrings(name, v)
}

// Bool returns a bool parameter, false when absent. In a query string
// only true and false count, in any case, else upstream's "Invalid
// boolean value" error (§1.2); in a body only a JSON boolean.
func (r *Request) Bool(name string) (bool, *Error) {
	v, ok := r.Value(name)
	if !ok {
		return false, nil
	}
	if r.query {
		s := v.(string)
		// ParseBool also takes 1, t, T, 0, f and F; upstream does not.
		if b, err := strconv.ParseBool(s); err == nil && (len(s) == 4 || len(s) == 5) {
			return b, nil
		}
		return false, Errorf(InvalidParameterValue, "Invalid boolean value: %s, must be 'true' or 'false'.", s)
	}
	b, ok := v.(bool)
	if !ok {
		return false, r.TypeError(name)
	}
	return b, nil
}

// Int returns an integer parameter and whether it was present: a whole
// JSON number, or a decimal string as protobuf accepts for int64 (the
// only form a query string has).
func (r *Request) Int(name string) (int64, bool, *Error) {
	v, ok := r.Value(name)
	if !ok {
		return 0, false, nil
	}
	n, werr := AsInt(name, v)
	if werr != nil {
		return 0, false, r.TypeError(name)
	}
	return n, true, nil
}

// Object returns a nested message of the body and whether it was
// present; a query string has none.
func (r *Request) Object(name string) (map[string]any, bool, *Error) {
	if r.query {
		return nil, false, nil
	}
	v, ok := r.Value(name)
	if !ok {
		return nil, false, nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		return nil, false, r.TypeError(name)
	}
	return m, true, nil
}

// Objects returns a repeated nested message: a JSON list whose elements
// are all objects (a wrong one is named name[i]); nil when absent, and
// always nil from a query string, where nested messages cannot be
// written. A present empty list is non-nil.
func (r *Request) Objects(name string) ([]map[string]any, *Error) {
	if r.query {
		return nil, nil
	}
	v, ok := r.Value(name)
	if !ok {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, r.TypeError(name)
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		m, isObj := x.(map[string]any)
		if !isObj {
			return nil, InvalidType(fmt.Sprintf("%s[%d]", name, i), x)
		}
		out[i] = m
	}
	return out, nil
}

// AsString checks that a decoded value is a string fit for the store
// (CheckText); field names it in errors.
func AsString(field string, v any) (string, *Error) {
	s, ok := v.(string)
	if !ok {
		return "", InvalidType(field, v)
	}
	if werr := CheckText(field, s); werr != nil {
		return "", werr
	}
	return s, nil
}

// AsStrings checks that a decoded value is a list of strings (AsString
// on each, named field[i]).
func AsStrings(field string, v any) ([]string, *Error) {
	list, ok := v.([]any)
	if !ok {
		return nil, InvalidType(field, v)
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		s, werr := AsString(fmt.Sprintf("%s[%d]", field, i), x)
		if werr != nil {
			return nil, werr
		}
		out = append(out, s)
	}
	return out, nil
}

// AsInt reads a decoded value as an int64: a whole number within ±2^62
// (beyond that a float64 no longer holds every integer exactly) or a
// decimal string.
func AsInt(field string, v any) (int64, *Error) {
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
	return 0, InvalidType(field, v)
}

// AsObject checks that a decoded value is a JSON object (a nested
// message).
func AsObject(field string, v any) (map[string]any, *Error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, InvalidType(field, v)
	}
	return m, nil
}
