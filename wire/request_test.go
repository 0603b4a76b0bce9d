package wire

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// withRequest serves one call and runs check on the Request that
// ReadRequest makes of it (or on its error).
func withRequest(t *testing.T, method, target, ctype, body string, check func(r *Request, werr *Error)) {
	t.Helper()
	app := fiber.New()
	ran := false
	app.All("/", func(c *fiber.Ctx) error {
		ran = true
		r, werr := ReadRequest(c)
		check(r, werr)
		return nil
	})
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if _, err := app.Test(req); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatalf("%s %s: handler not run", method, target)
	}
}

// wantMessage fails unless werr is an INVALID_PARAMETER_VALUE whose
// message contains part ("" wants no error).
func wantMessage(t *testing.T, what string, werr *Error, part string) {
	t.Helper()
	switch {
	case part == "" && werr != nil:
		t.Errorf("%s: unexpected error %v", what, werr)
	case part != "" && werr == nil:
		t.Errorf("%s: no error, want one with %q", what, part)
	case part != "" && (werr.Code != InvalidParameterValue || !strings.Contains(werr.Message, part)):
		t.Errorf("%s: %s %q, want INVALID_PARAMETER_VALUE with %q", what, werr.Code, werr.Message, part)
	}
}

func TestReadRequestQuery(t *testing.T) {
	for _, method := range []string{fiber.MethodGet, fiber.MethodHead} {
		withRequest(t, method, "/?name=m&ids=a&ids=b&n=-42&flag=TRUE&off=False&empty=", "", "", func(r *Request, werr *Error) {
			if werr != nil {
				t.Fatalf("%s: %v", method, werr)
			}
			if !r.FromQuery() {
				t.Errorf("%s: not read from the query", method)
			}
			if s, ok, werr := r.Str("name"); s != "m" || !ok || werr != nil {
				t.Errorf("%s name: %q %v %v", method, s, ok, werr)
			}
			if s, ok, werr := r.Str("empty"); s != "" || !ok || werr != nil {
				t.Errorf("%s empty: %q %v %v (present, empty)", method, s, ok, werr)
			}
			if _, ok, _ := r.Str("absent"); ok {
				t.Errorf("%s: absent key present", method)
			}
			if ids, werr := r.Strs("ids"); !reflect.DeepEqual(ids, []string{"a", "b"}) || werr != nil {
				t.Errorf("%s ids: %q %v", method, ids, werr)
			}
			if s, _, _ := r.Str("ids"); s != "a" {
				t.Errorf("%s: a repeated key's scalar is %q, want the first value", method, s)
			}
			if n, ok, werr := r.Int("n"); n != -42 || !ok || werr != nil {
				t.Errorf("%s n: %d %v %v", method, n, ok, werr)
			}
			if b, werr := r.Bool("flag"); !b || werr != nil {
				t.Errorf("%s flag: %v %v", method, b, werr)
			}
			if b, werr := r.Bool("off"); b || werr != nil {
				t.Errorf("%s off: %v %v", method, b, werr)
			}
			if m, ok, werr := r.Object("name"); m != nil || ok || werr != nil {
				t.Errorf("%s: a query string has no nested message: %v %v %v", method, m, ok, werr)
			}
			if l, werr := r.Objects("name"); l != nil || werr != nil {
				t.Errorf("%s: a query string has no nested messages: %v %v", method, l, werr)
			}
		})
	}
	withRequest(t, "GET", "/?b1=1&b2=t&b3=&b4=yes&n=1.5&s=a%00b&l=x&l=%ff", "", "", func(r *Request, werr *Error) {
		for _, name := range []string{"b1", "b2", "b3", "b4"} {
			_, werr := r.Bool(name)
			wantMessage(t, name, werr, "Invalid boolean value: ")
		}
		_, _, werr = r.Int("n")
		wantMessage(t, "n", werr, `Invalid value "1.5" for parameter 'n' supplied: Hint: Value was of type 'str'.`)
		_, _, werr = r.Str("s")
		wantMessage(t, "s", werr, "NUL")
		_, werr = r.Strs("l")
		wantMessage(t, "l", werr, "UTF-8")
	})
}

func TestReadRequestBody(t *testing.T) {
	body := `{"name": "m", "nul": null, "ids": ["a", "b"], "n": 7, "ns": "-8", "big": 1e3, "flag": true,
		"obj": {"k": "v"}, "bad_ids": ["a", 1e3], "text": "a\u0000b",
		"objs": [{"k": 1}, {}], "none": [], "bad_objs": [{}, "x"]}`
	withRequest(t, "POST", "/", "application/json; charset=utf-8", body, func(r *Request, werr *Error) {
		if werr != nil {
			t.Fatal(werr)
		}
		if r.FromQuery() {
			t.Error("body read as a query")
		}
		if s, ok, werr := r.Str("name"); s != "m" || !ok || werr != nil {
			t.Errorf("name: %q %v %v", s, ok, werr)
		}
		if v, ok := r.Value("nul"); ok || v != nil {
			t.Errorf("null is present: %v", v)
		}
		if _, werr := r.ReqStr("nul"); werr == nil || !strings.Contains(werr.Message, "Missing value for required parameter 'nul'") {
			t.Errorf("required null: %v", werr)
		}
		if ids, werr := r.Strs("ids"); !reflect.DeepEqual(ids, []string{"a", "b"}) || werr != nil {
			t.Errorf("ids: %q %v", ids, werr)
		}
		for name, want := range map[string]int64{"n": 7, "ns": -8, "big": 1000} {
			if n, ok, werr := r.Int(name); n != want || !ok || werr != nil {
				t.Errorf("%s: %d %v %v", name, n, ok, werr)
			}
		}
		if b, werr := r.Bool("flag"); !b || werr != nil {
			t.Errorf("flag: %v %v", b, werr)
		}
		if m, ok, werr := r.Object("obj"); m["k"] != "v" || !ok || werr != nil {
			t.Errorf("obj: %v %v %v", m, ok, werr)
		}
		// Type errors show a top-level field as it was sent: 1e3 is a
		// float to upstream, though it decodes to a whole number.
		_, _, werr = r.Str("big")
		wantMessage(t, "big", werr, "Invalid value 1000.0 for parameter 'big' supplied: Hint: Value was of type 'float'.")
		_, werr = r.Bool("ns")
		wantMessage(t, "ns", werr, `Invalid value "-8" for parameter 'ns' supplied: Hint: Value was of type 'str'.`)
		_, _, werr = r.Object("ids")
		wantMessage(t, "ids", werr, `Invalid value ["a", "b"] for parameter 'ids' supplied: Hint: Value was of type 'list'.`)
		_, werr = r.Strs("name")
		wantMessage(t, "name", werr, `Invalid value "m" for parameter 'name' supplied`)
		_, _, werr = r.Int("flag")
		wantMessage(t, "flag", werr, "Invalid value true for parameter 'flag' supplied: Hint: Value was of type 'bool'.")
		// An element is named by its index; only its decoded value is known.
		_, werr = r.Strs("bad_ids")
		wantMessage(t, "bad_ids", werr, "Invalid value 1000 for parameter 'bad_ids[1]' supplied: Hint: Value was of type 'int'.")
		_, _, werr = r.Str("text")
		wantMessage(t, "text", werr, "'text': contains a NUL")

		if objs, werr := r.Objects("objs"); len(objs) != 2 || objs[0]["k"] != 1.0 || werr != nil {
			t.Errorf("objs: %v %v", objs, werr)
		}
		if objs, werr := r.Objects("none"); objs == nil || len(objs) != 0 || werr != nil {
			t.Errorf("an empty list: %#v %v, want empty and non-nil", objs, werr)
		}
		if objs, werr := r.Objects("absent"); objs != nil || werr != nil {
			t.Errorf("absent list: %#v %v", objs, werr)
		}
		_, werr = r.Objects("bad_objs")
		wantMessage(t, "bad_objs", werr, `Invalid value "x" for parameter 'bad_objs[1]' supplied: Hint: Value was of type 'str'.`)
		_, werr = r.Objects("big")
		wantMessage(t, "big objects", werr, "Invalid value 1000.0 for parameter 'big' supplied")
	})
}

func TestReadRequestMethods(t *testing.T) {
	// A GET without a query string and a DELETE with one read the body.
	for _, method := range []string{"DELETE", "PATCH"} {
		withRequest(t, method, "/?name=q", "", `{"name": "b"}`, func(r *Request, werr *Error) {
			if s, _, werr := r.Str("name"); s != "b" || werr != nil {
				t.Errorf("%s: name %q %v, want the body's", method, s, werr)
			}
		})
	}
	withRequest(t, "GET", "/", "", `{"name": "b"}`, func(r *Request, werr *Error) {
		if s, _, werr := r.Str("name"); s != "b" || werr != nil || r.FromQuery() {
			t.Errorf("GET without query: name %q %v", s, werr)
		}
	})
	// A body sent as a JSON string holding JSON (old clients) is decoded
	// again, and its type errors still show the inner text.
	withRequest(t, "POST", "/", "application/json", `"{\"n\": 1e3, \"s\": \"x\"}"`, func(r *Request, werr *Error) {
		if s, _, werr := r.Str("s"); s != "x" || werr != nil {
			t.Errorf("double-encoded s: %q %v", s, werr)
		}
		_, _, werr = r.Str("n")
		wantMessage(t, "double-encoded n", werr, "Invalid value 1000.0 for parameter 'n' supplied")
	})
	// POST and PUT must say their body is JSON.
	for _, ctype := range []string{"", "text/plain"} {
		withRequest(t, "PUT", "/", ctype, `{}`, func(r *Request, werr *Error) {
			wantMessage(t, "PUT "+ctype, werr, "Content-Type")
		})
	}
	// An absent or unparsable body is {}.
	for _, body := range []string{"", "{not json"} {
		withRequest(t, "POST", "/", "application/json", body, func(r *Request, werr *Error) {
			if werr != nil {
				t.Fatalf("%q: %v", body, werr)
			}
			if _, werr := r.ReqStr("name"); werr == nil || !strings.Contains(werr.Message, "Missing value") {
				t.Errorf("%q: %v", body, werr)
			}
		})
	}
}

// benchBody is a v3 StartTrace body of the size clients send (trace_info
// with location, previews, metadata and tags).
const benchBody = `{"trace": {"trace_info": {"trace_id": "tr-0123456789abcdef0123456789abcdef",
	"trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "17"}},
	"request_preview": "{\"question\": \"what is the capital of France?\"}",
	"response_preview": "\"Paris\"", "request_time": "2026-12-04T20:00:00.123Z", "execution_duration": "1.250s",
	"state": "OK", "trace_metadata": {"mlflow.user": "alice", "mlflow.source.name": "app.py",
	"mlflow.trace_schema.version": "3"}, "tags": {"mlflow.traceName": "predict", "env": "dev"}}}}`

// BenchmarkReadRequest reads a StartTrace body and its nested message;
// "decode-only" is the floor: the body decoded once into map[string]any,
// as tracing's own reader did before wire.Request.
func BenchmarkReadRequest(b *testing.B) {
	app := fiber.New()
	run := func(b *testing.B, read func(c *fiber.Ctx)) {
		c := app.AcquireCtx(&fasthttp.RequestCtx{})
		defer app.ReleaseCtx(c)
		c.Request().Header.SetMethod("POST")
		c.Request().Header.SetContentType("application/json")
		c.Request().SetBodyString(benchBody)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			read(c)
		}
	}
	b.Run("Request", func(b *testing.B) {
		run(b, func(c *fiber.Ctx) {
			r, werr := ReadRequest(c)
			if werr != nil {
				b.Fatal(werr)
			}
			if _, ok, werr := r.Object("trace"); !ok || werr != nil {
				b.Fatal("no trace", werr)
			}
		})
	})
	b.Run("decode-only", func(b *testing.B) {
		run(b, func(c *fiber.Ctx) {
			body := map[string]any{}
			if werr := DecodeRequest(c, &body); werr != nil || body["trace"] == nil {
				b.Fatal("no trace", werr)
			}
		})
	})
}
