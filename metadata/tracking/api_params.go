package tracking

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// params is a request message as raw JSON fields, read the way upstream's
// _get_request_message does (spec tracking-api.md §1.2): a GET with a
// query string takes its fields from the query (first value of a key), any
// other request from the JSON body. Accessors apply upstream's "required"
// and type checks and name the field by its JSON path (tags[0].key).
type params struct {
	m      map[string]json.RawMessage
	prefix string // path of this object inside the request ("metrics[3].")
	// query holds every value of each key of a GET query string, for
	// repeated fields (?experiment_ids=1&experiment_ids=2); nil for bodies.
	query map[string][]string
}

// readParams reads the request's fields. POST and PUT must be JSON.
func readParams(c *fiber.Ctx) (*params, *wire.Error) {
	p := &params{m: map[string]json.RawMessage{}}
	if c.Method() == fiber.MethodGet && len(c.Request().URI().QueryString()) > 0 {
		var bad *wire.Error
		p.query = map[string][]string{}
		c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
			key := string(k)
			if bad != nil {
				return
			}
			if err := wire.CheckText(key, string(v)); err != nil {
				bad = err
				return
			}
			p.query[key] = append(p.query[key], string(v))
			if _, seen := p.m[key]; seen {
				return
			}
			raw, _ := json.Marshal(string(v))
			p.m[key] = raw
		})
		if bad != nil {
			return nil, bad
		}
		return p, nil
	}
	var body map[string]json.RawMessage
	if err := wire.DecodeRequest(c, &body); err != nil {
		return nil, err
	}
	if body != nil {
		p.m = body
	}
	return p, nil
}

func (p *params) path(name string) string { return p.prefix + name }

// raw returns a field's JSON, nil when absent or null (proto: unset).
func (p *params) raw(name string) json.RawMessage {
	r, ok := p.m[name]
	if !ok || string(r) == "null" {
		return nil
	}
	return r
}

// has reports whether a field is present and not null.
func (p *params) has(name string) bool { return p.raw(name) != nil }

// typeError is upstream's message for a value of the wrong JSON type.
func typeError(field string, raw json.RawMessage) *wire.Error { return wire.TypeError(field, raw) }

// str returns a string field ("" when absent or null).
func (p *params) str(name string) (string, *wire.Error) {
	r := p.raw(name)
	if r == nil {
		return "", nil
	}
	var s string
	if r[0] != '"' || json.Unmarshal(r, &s) != nil {
		return "", typeError(p.path(name), r)
	}
	if err := wire.CheckText(p.path(name), s); err != nil {
		return "", err
	}
	return s, nil
}

// reqStr is a required string field: absent, null and "" are missing.
func (p *params) reqStr(name string) (string, *wire.Error) {
	s, err := p.str(name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", wire.MissingParam(p.path(name))
	}
	return s, nil
}

// runID is the required run_id, or run_uuid for the routes that accept
// it (spec §1.2).
func (p *params) runID(allowUUID bool) (string, *wire.Error) {
	id, err := p.str("run_id")
	if err != nil {
		return "", err
	}
	if id == "" && allowUUID {
		if id, err = p.str("run_uuid"); err != nil {
			return "", err
		}
	}
	if id == "" {
		return "", wire.MissingParam(p.path("run_id"))
	}
	return id, nil
}

// int64Field reads an int64 field: a JSON integer or, as protobuf's JSON
// parser allows, a string holding one. ok is false when absent.
func (p *params) int64Field(name string) (v int64, ok bool, werr *wire.Error) {
	r := p.raw(name)
	if r == nil {
		return 0, false, nil
	}
	text := string(r)
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) != nil {
			return 0, false, typeError(p.path(name), r)
		}
		text = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// Integral floats (1e3, 5.0) are integers to protobuf too.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || r[0] == '"' || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			return 0, false, typeError(p.path(name), r)
		}
		n = int64(f)
	}
	return n, true, nil
}

// floatField reads a double: a JSON number or a string protobuf accepts
// ("NaN", "Infinity", "-Infinity", "1.5"). Booleans are refused.
func (p *params) floatField(name string) (v float64, ok bool, werr *wire.Error) {
	r := p.raw(name)
	if r == nil {
		return 0, false, nil
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) != nil {
			return 0, false, typeError(p.path(name), r)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil && !isRangeErr(err) {
			return 0, false, typeError(p.path(name), r)
		}
		return f, true, nil
	}
	if r[0] != '-' && (r[0] < '0' || r[0] > '9') {
		return 0, false, typeError(p.path(name), r)
	}
	f, err := strconv.ParseFloat(string(r), 64)
	if err != nil && !isRangeErr(err) {
		return 0, false, typeError(p.path(name), r)
	}
	return f, true, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// list reads an array field (nil when absent).
func (p *params) list(name string) ([]json.RawMessage, *wire.Error) {
	r := p.raw(name)
	if r == nil {
		return nil, nil
	}
	var items []json.RawMessage
	if r[0] != '[' || json.Unmarshal(r, &items) != nil {
		return nil, typeError(p.path(name), r)
	}
	return items, nil
}

// objects reads an array of objects, each as params named <name>[i].
func (p *params) objects(name string) ([]*params, *wire.Error) {
	items, err := p.list(name)
	if err != nil {
		return nil, err
	}
	out := make([]*params, len(items))
	for i, it := range items {
		path := p.path(name) + "[" + strconv.Itoa(i) + "]"
		var m map[string]json.RawMessage
		if len(it) == 0 || it[0] != '{' || json.Unmarshal(it, &m) != nil {
			return nil, typeError(path, it)
		}
		out[i] = &params{m: m, prefix: path + "."}
	}
	return out, nil
}

// keyValues reads a [{key, value}] list (tags), key required.
func (p *params) keyValues(name string) ([]KeyValue, *wire.Error) {
	objs, err := p.objects(name)
	if err != nil {
		return nil, err
	}
	out := make([]KeyValue, 0, len(objs))
	for _, o := range objs {
		k, err := o.reqStr("key")
		if err != nil {
			return nil, err
		}
		v, err := o.str("value")
		if err != nil {
			return nil, err
		}
		out = append(out, KeyValue{Key: k, Value: v})
	}
	return out, nil
}

// experimentID reads a required experiment id string field.
func (p *params) experimentID(name string) (int64, *wire.Error) {
	s, err := p.reqStr(name)
	if err != nil {
		return 0, err
	}
	return parseExperimentID(p.path(name), s)
}

// strs reads a repeated string field: every value of the key in a GET
// query string, else a JSON array of strings.
func (p *params) strs(name string) ([]string, *wire.Error) {
	if p.query != nil {
		return p.query[name], nil
	}
	items, err := p.list(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		var s string
		if len(it) == 0 || it[0] != '"' || json.Unmarshal(it, &s) != nil {
			return nil, typeError(p.path(name), p.raw(name))
		}
		if err := wire.CheckText(fieldf("%s[%d]", p.path(name), i), s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// viewType reads a ViewType enum field (name or number); absent is
// ACTIVE_ONLY. It returns the lifecycle stages to include.
func (p *params) viewType(name string) ([]string, *wire.Error) {
	r := p.raw(name)
	if r == nil {
		return []string{"active"}, nil
	}
	var v string
	if r[0] == '"' {
		if json.Unmarshal(r, &v) != nil {
			return nil, typeError(p.path(name), r)
		}
	} else {
		v = string(r)
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "ACTIVE_ONLY", "1":
		return []string{"active"}, nil
	case "DELETED_ONLY", "2":
		return []string{"deleted"}, nil
	case "ALL", "3":
		return []string{"active", "deleted"}, nil
	}
	return nil, typeError(p.path(name), r)
}

// objectField reads an object field as params named <name>.
func (p *params) objectField(name string) (*params, *wire.Error) {
	r := p.raw(name)
	var m map[string]json.RawMessage
	if r == nil || r[0] != '{' || json.Unmarshal(r, &m) != nil {
		return nil, typeError(p.path(name), r)
	}
	return &params{m: m, prefix: p.path(name) + "."}, nil
}
