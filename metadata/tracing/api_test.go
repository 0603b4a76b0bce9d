package tracing

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// spanContent is a span dict as upstream's Span.to_dict() writes it.
func spanContent(traceID, spanID, parent string, start int64, attrs string) string {
	p := "null"
	if parent != "" {
		p = `"` + parent + `"`
	}
	return fmt.Sprintf(`{"trace_id": %q, "span_id": %q, "parent_span_id": %s, "name": "span-%s", "start_time_unix_nano": %d, "end_time_unix_nano": %d, "events": [{"name": "ev", "time_unix_nano": 1700000000000000001, "attributes": {"n": 1}}], "status": {"code": "OK", "message": ""}, "attributes": %s, "_dict_version": 4, "otel_trace_id": %q}`,
		traceID, spanID, p, spanID, start, start+500, attrs, strings.TrimPrefix(traceID, "tr-"))
}

func (c client) span(traceID, exp, spanID, parent string, start int64, attrs string) {
	c.T.Helper()
	var par any
	if parent != "" {
		par = parent
	}
	c.exec("INSERT INTO spans (trace_id, experiment_id, span_id, parent_span_id, name, type, status, start_time_unix_nano, end_time_unix_nano, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		traceID, exp, spanID, par, "span-"+spanID, "CHAIN", "OK", start, start+500, spanContent(traceID, spanID, parent, start, attrs))
}

func TestTraceRoutes(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("e1", "mlflow-artifacts:/e1", "active")
		exp2 := c.experiment("e2", "s3://bucket/e2?x=1", "active")
		gone := c.experiment("gone", "/tmp/gone", "deleted")

		t.Run("start v3 shape", func(t *testing.T) {
			info := c.startTrace(tid(1), exp, 1700000000123, `, "execution_duration": "1.5s", "client_request_id": "cr-1", "request_preview": "in", "trace_metadata": {"mlflow.sourceRun": "run1", "k": "v"}, "tags": {"t": "x"}`)
			want := map[string]any{
				"trace_id": tid(1), "client_request_id": "cr-1", "request_preview": "in",
				"trace_location":     map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}},
				"request_time":       "2023-11-14T22:13:20.123Z",
				"execution_duration": "1.500s",
				"state":              "OK",
				"trace_metadata":     map[string]any{"mlflow.sourceRun": "run1", "k": "v", "mlflow.trace.infoFinalized": "true"},
				"tags":               map[string]any{"t": "x", "mlflow.artifactLocation": "mlflow-artifacts:/e1/traces/" + tid(1) + "/artifacts"},
			}
			if !reflect.DeepEqual(info, want) {
				t.Fatalf("trace info\n got %s\nwant %s", js(info), js(want))
			}
			// The artifact root keeps a query after the path.
			info = c.startTrace(tid(2), exp2, 1000, "")
			if got := obj(info, "tags")["mlflow.artifactLocation"]; got != "s3://bucket/e2/traces/"+tid(2)+"/artifacts?x=1" {
				t.Errorf("artifact location %v", got)
			}
			if _, ok := info["execution_duration"]; ok {
				t.Errorf("execution_duration without one: %v", info)
			}
		})

		t.Run("start v3 again merges", func(t *testing.T) {
			// Spans may create the row first (OTLP); a later start keeps
			// the tags it does not name and adds the new ones.
			info := c.startTrace(tid(1), exp, 1700000000123, `, "execution_duration": "2s", "tags": {"t2": "y"}`)
			tags := obj(info, "tags")
			if tags["t"] != "x" || tags["t2"] != "y" || info["execution_duration"] != "2s" {
				t.Errorf("merged info %s", js(info))
			}
			// Same id in another experiment: refused, nothing changes.
			c.fails("POST", "/3.0/mlflow/traces", `{"trace": {"trace_info": {"trace_id": "`+tid(1)+`", "trace_location": {"mlflow_experiment": {"experiment_id": "`+exp2+`"}}}}}`,
				400, "INVALID_PARAMETER_VALUE", "another experiment")
		})

		t.Run("start v3 errors", func(t *testing.T) {
			loc := func(e string) string {
				return `"trace_location": {"mlflow_experiment": {"experiment_id": "` + e + `"}}`
			}
			p := "/3.0/mlflow/traces"
			c.fails("POST", p, `{}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'trace'")
			c.fails("POST", p, `{"trace": {}}`, 400, "INVALID_PARAMETER_VALUE", "'trace.trace_info'")
			c.fails("POST", p, `{"trace": "x"}`, 400, "INVALID_PARAMETER_VALUE", "Hint: Value was of type 'str'")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x"}}}`, 400, "INVALID_PARAMETER_VALUE", "experiment_id")
			c.fails("POST", p, `{"trace": {"trace_info": {`+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "trace.trace_info.trace_id")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", `+loc("424242")+`}}}`, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=424242 exists")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", `+loc("1 OR 1=1")+`}}}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", `+loc(gone)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "must be in the 'active' state")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "`+strings.Repeat("x", 51)+`", `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "longer than 50")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "state": true, `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "'trace.trace_info.state'")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "state": "DONE", `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "request_time": "yesterday", `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "request_time")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "execution_duration": "1h", `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "execution_duration")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "tags": {"k": 1}, `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "trace.trace_info.tags.k")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "tags": ["k"], `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-x", "tags": {"`+strings.Repeat("k", 251)+`": "v"}, `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "maximum length of 250")
			c.fails("POST", p, `{"trace": {"trace_info": {"trace_id": "tr-\u0000", `+loc(exp)+`}}}`, 400, "INVALID_PARAMETER_VALUE", "NUL")
			st, _ := c.Raw("POST", "/api"+p, "", `{}`)
			if st != 400 {
				t.Errorf("no content type: %d", st)
			}
			st, _ = c.Raw("POST", "/api"+p, "application/json", `{"trace": `)
			if st != 400 {
				t.Errorf("malformed JSON: %d", st)
			}
			if n := c.count("SELECT COUNT(*) FROM trace_info WHERE request_id = ?", "tr-x"); n != 0 {
				t.Errorf("a refused start wrote %d rows", n)
			}
		})

		t.Run("get info v3 and v2", func(t *testing.T) {
			out := c.ok("GET", "/3.0/mlflow/traces/"+tid(1), "")
			if obj(obj(out, "trace"), "trace_info")["trace_id"] != tid(1) {
				t.Errorf("get v3 %v", out)
			}
			c.fails("GET", "/3.0/mlflow/traces/tr-unknown", "", 404, "RESOURCE_DOES_NOT_EXIST", "Trace with ID tr-unknown not found.")
			c.fails("GET", "/3.0/mlflow/traces/"+strings.Repeat("a", 100), "", 400, "INVALID_PARAMETER_VALUE", "")
			v2 := obj(c.ok("GET", "/2.0/mlflow/traces/"+tid(1)+"/info", ""), "trace_info")
			want := map[string]any{"request_id": tid(1), "experiment_id": exp, "timestamp_ms": 1700000000123.0, "execution_time_ms": 2000.0, "status": "OK",
				"request_metadata": []any{map[string]any{"key": "k", "value": "v"}, map[string]any{"key": "mlflow.sourceRun", "value": "run1"}, map[string]any{"key": "mlflow.trace.infoFinalized", "value": "true"}},
				"tags": []any{map[string]any{"key": "mlflow.artifactLocation", "value": "mlflow-artifacts:/e1/traces/" + tid(1) + "/artifacts"},
					map[string]any{"key": "t", "value": "x"}, map[string]any{"key": "t2", "value": "y"}}}
			if !reflect.DeepEqual(v2, want) {
				t.Errorf("v2 info\n got %s\nwant %s", js(v2), js(want))
			}
		})

		t.Run("traces/get with spans", func(t *testing.T) {
			id := tid(3)
			c.startTrace(id, exp, 5000, `, "trace_metadata": {"mlflow.trace.sizeStats": "{\"num_spans\": 3}"}`)
			c.span(id, exp, "00000000000000aa", "", 10, `{"mlflow.traceRequestId": "\"`+id+`\"", "mlflow.spanType": "\"CHAIN\"", "mlflow.spanInputs": "{\"x\": [1, 2.5, true, null]}", "plain": 7, "text": "not json"}`)
			c.span(id, exp, "00000000000000bb", "00000000000000aa", 20, `{}`)
			// Three spans announced, two stored: partial.
			c.fails("GET", "/3.0/mlflow/traces/get", "?trace_id="+id, 404, "RESOURCE_DOES_NOT_EXIST", "not fully exported")
			out := obj(c.ok("GET", "/3.0/mlflow/traces/get", "?trace_id="+id+"&allow_partial=true"), "trace")
			spans := list(out, "spans")
			if obj(out, "trace_info")["trace_id"] != id || len(spans) != 2 {
				t.Fatalf("trace %s", js(out))
			}
			root := spans[0].(map[string]any)
			b64 := func(h string) string {
				b := make([]byte, len(h)/2)
				fmt.Sscanf(h, "%x", &b)
				return base64.StdEncoding.EncodeToString(b)
			}
			if root["span_id"] != b64("00000000000000aa") || root["trace_id"] != b64(strings.TrimPrefix(id, "tr-")) || root["parent_span_id"] != nil {
				t.Errorf("root ids %s", js(root))
			}
			if root["start_time_unix_nano"] != 10.0 || root["end_time_unix_nano"] != 510.0 || root["name"] != "span-00000000000000aa" {
				t.Errorf("root times %s", js(root))
			}
			if got := js(root["status"]); got != `{"code":"STATUS_CODE_OK"}` {
				t.Errorf("status %s", got)
			}
			attrs := map[string]string{}
			for _, a := range root["attributes"].([]any) {
				m := a.(map[string]any)
				attrs[m["key"].(string)] = js(m["value"])
			}
			wantAttrs := map[string]string{
				"mlflow.traceRequestId": `{"string_value":"` + id + `"}`,
				"mlflow.spanType":       `{"string_value":"CHAIN"}`,
				"mlflow.spanInputs":     `{"kvlist_value":{"values":[{"key":"x","value":{"array_value":{"values":[{"int_value":1},{"double_value":2.5},{"bool_value":true},{}]}}}]}}`,
				"plain":                 `{"int_value":7}`,
				"text":                  `{"string_value":"not json"}`,
			}
			if !reflect.DeepEqual(attrs, wantAttrs) {
				t.Errorf("attributes\n got %v\nwant %v", attrs, wantAttrs)
			}
			if got := js(root["events"]); got != `[{"attributes":[{"key":"n","value":{"int_value":1}}],"name":"ev","time_unix_nano":1700000000000000000}]` {
				t.Errorf("events %s", got)
			}
			// Nanosecond times keep every digit (no float64 on the way).
			if _, raw := c.Raw("GET", "/api/3.0/mlflow/traces/get?allow_partial=true&trace_id="+id, "", ""); !strings.Contains(raw, `"time_unix_nano":1700000000000000001`) {
				t.Errorf("event time lost precision: %s", raw)
			}
			child := spans[1].(map[string]any)
			if child["parent_span_id"] != b64("00000000000000aa") {
				t.Errorf("child %s", js(child))
			}
			c.span(id, exp, "00000000000000cc", "00000000000000aa", 30, `{}`)
			if n := len(list(obj(c.ok("GET", "/3.0/mlflow/traces/get", "?trace_id="+id), "trace"), "spans")); n != 3 {
				t.Errorf("complete trace: %d spans", n)
			}
			c.fails("GET", "/3.0/mlflow/traces/get", "?trace_id=tr-nope", 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("GET", "/3.0/mlflow/traces/get", "", 400, "INVALID_PARAMETER_VALUE", "'trace_id'")
			c.fails("GET", "/3.0/mlflow/traces/get", "?trace_id="+id+"&allow_partial=maybe", 400, "INVALID_PARAMETER_VALUE", "Invalid boolean value: maybe")
		})

		t.Run("batch reads", func(t *testing.T) {
			out := c.ok("GET", "/3.0/mlflow/traces/batchGet", "?trace_ids="+tid(3)+"&trace_ids=tr-missing&trace_ids="+tid(1))
			if got := len(list(out, "traces")); got != 2 {
				t.Fatalf("batchGet %s", js(out))
			}
			first := list(out, "traces")[0].(map[string]any)
			if obj(first, "trace_info")["trace_id"] != tid(3) || len(list(first, "spans")) != 3 {
				t.Errorf("batchGet order/spans %s", js(first))
			}
			infos := c.ok("POST", "/3.0/mlflow/traces/batchGetInfos", `{"trace_ids": ["`+tid(2)+`", "`+tid(1)+`", "`+tid(2)+`"]}`)
			if got := traceIDs(list(infos, "trace_infos")); !reflect.DeepEqual(got, []string{tid(2), tid(1)}) {
				t.Errorf("batchGetInfos %v", got)
			}
			if got := c.ok("POST", "/3.0/mlflow/traces/batchGetInfos", `{"trace_ids": ["tr-none"]}`); len(got) != 0 {
				t.Errorf("nothing found: %v", got)
			}
			c.fails("POST", "/3.0/mlflow/traces/batchGetInfos", `{}`, 400, "INVALID_PARAMETER_VALUE", "'trace_ids'")
			c.fails("POST", "/3.0/mlflow/traces/batchGetInfos", `{"trace_ids": "x"}`, 400, "INVALID_PARAMETER_VALUE", "")
			c.fails("POST", "/3.0/mlflow/traces/batchGetInfos", `{"trace_ids": [1]}`, 400, "INVALID_PARAMETER_VALUE", "'trace_ids[0]'")
			many := make([]string, 1001)
			for i := range many {
				many[i] = tid(i)
			}
			c.fails("POST", "/3.0/mlflow/traces/batchGetInfos", `{"trace_ids": `+js(many)+`}`, 400, "INVALID_PARAMETER_VALUE", "Too many")
		})

		t.Run("tags v3 and v2", func(t *testing.T) {
			id := tid(1)
			for _, p := range []string{"/3.0/mlflow/traces/" + id + "/tags", "/2.0/mlflow/traces/" + id + "/tags"} {
				c.ok("PATCH", p, `{"key": "color", "value": "red"}`)
				c.ok("PATCH", p, `{"key": "color", "value": "blue"}`)
				if got := obj(obj(obj(c.ok("GET", "/3.0/mlflow/traces/"+id, ""), "trace"), "trace_info"), "tags")["color"]; got != "blue" {
					t.Errorf("%s: tag %v", p, got)
				}
				// The id comes from the URL, whatever the body says.
				c.ok("DELETE", p, `{"key": "color", "request_id": "tr-other", "trace_id": "tr-other"}`)
				c.fails("DELETE", p, `{"key": "color"}`, 404, "RESOURCE_DOES_NOT_EXIST", "No trace tag with key 'color'")
				c.fails("PATCH", p, `{"value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "'key'")
				c.fails("PATCH", p, `{"key": 5}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 5 for parameter 'key'")
				c.fails("PATCH", p, `{"key": "`+strings.Repeat("k", 251)+`", "value": "v"}`, 400, "INVALID_PARAMETER_VALUE", "")
			}
			c.ok("PATCH", "/3.0/mlflow/traces/"+id+"/tags", `{"key": "long", "value": "`+strings.Repeat("é", 9000)+`"}`)
			got := obj(obj(obj(c.ok("GET", "/3.0/mlflow/traces/"+id, ""), "trace"), "trace_info"), "tags")["long"].(string)
			if len([]rune(got)) != 8000 {
				t.Errorf("long tag value kept %d characters, want 8000", len([]rune(got)))
			}
			c.fails("PATCH", "/3.0/mlflow/traces/tr-nope/tags", `{"key": "k", "value": "v"}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("DELETE", "/2.0/mlflow/traces/tr-nope/tags", `{"key": "k"}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
		})

		t.Run("link to run and prompts", func(t *testing.T) {
			p := "/2.0/mlflow/traces/link-to-run"
			c.ok("POST", p, `{"trace_ids": ["`+tid(1)+`", "`+tid(2)+`"], "run_id": "run9"}`)
			c.ok("POST", p, `{"trace_ids": ["`+tid(1)+`"], "run_id": "run9"}`)
			if n := c.count("SELECT COUNT(*) FROM entity_associations WHERE source_type = 'trace' AND destination_type = 'run' AND destination_id = 'run9'"); n != 2 {
				t.Errorf("%d associations, want 2", n)
			}
			c.fails("POST", p, `{"trace_ids": ["tr-nope"], "run_id": "run9"}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("POST", p, `{"run_id": "run9"}`, 400, "INVALID_PARAMETER_VALUE", "'trace_ids'")
			c.fails("POST", p, `{"trace_ids": ["`+tid(1)+`"]}`, 400, "INVALID_PARAMETER_VALUE", "'run_id'")
			many := make([]string, 101)
			for i := range many {
				many[i] = tid(i)
			}
			c.fails("POST", p, `{"trace_ids": `+js(many)+`, "run_id": "r"}`, 400, "INVALID_PARAMETER_VALUE", "Cannot link more than 100 traces")

			lp := "/2.0/mlflow/traces/link-prompts"
			c.ok("POST", lp, `{"trace_id": "`+tid(1)+`", "prompt_versions": [{"name": "qa", "version": "1"}]}`)
			c.ok("POST", lp, `{"trace_id": "`+tid(1)+`", "prompt_versions": [{"name": "qa", "version": "1"}, {"name": "sum\"\u00e9", "version": "2"}]}`)
			got := obj(obj(obj(c.ok("GET", "/3.0/mlflow/traces/"+tid(1), ""), "trace"), "trace_info"), "tags")["mlflow.linkedPrompts"]
			if want := `[{"name": "qa", "version": "1"}, {"name": "sum\"\u00e9", "version": "2"}]`; got != want {
				t.Errorf("linked prompts tag %v, want %s", got, want)
			}
			c.fails("POST", lp, `{"trace_id": "tr-nope", "prompt_versions": [{"name": "qa", "version": "1"}]}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("POST", lp, `{"trace_id": "`+tid(1)+`", "prompt_versions": [{"name": "qa"}]}`, 400, "INVALID_PARAMETER_VALUE", "")
			c.fails("POST", lp, `{"trace_id": "`+tid(1)+`", "prompt_versions": "qa"}`, 400, "INVALID_PARAMETER_VALUE", "")
		})

		t.Run("v2 start and end", func(t *testing.T) {
			out := obj(c.ok("POST", "/2.0/mlflow/traces", `{"experiment_id": "`+exp+`", "timestamp_ms": 1000, "request_metadata": [{"key": "m", "value": "1"}], "tags": [{"key": "t", "value": "2"}]}`), "trace_info")
			id, _ := out["request_id"].(string)
			if !strings.HasPrefix(id, "tr-") || len(id) != 35 || out["status"] != "IN_PROGRESS" || out["timestamp_ms"] != 1000.0 {
				t.Fatalf("v2 start %s", js(out))
			}
			end := obj(c.ok("PATCH", "/2.0/mlflow/traces/"+id, `{"timestamp_ms": 1750, "status": "ERROR", "tags": [{"key": "t", "value": "3"}]}`), "trace_info")
			if end["execution_time_ms"] != 750.0 || end["status"] != "ERROR" || js(end["tags"]) != `[{"key":"mlflow.artifactLocation","value":"mlflow-artifacts:/e1/traces/`+id+`/artifacts"},{"key":"t","value":"3"}]` {
				t.Errorf("v2 end %s", js(end))
			}
			c.fails("PATCH", "/2.0/mlflow/traces/tr-nope", `{"timestamp_ms": 1}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("POST", "/2.0/mlflow/traces", `{"timestamp_ms": 1}`, 400, "INVALID_PARAMETER_VALUE", "'experiment_id'")
			c.fails("POST", "/2.0/mlflow/traces", `{"experiment_id": "`+exp+`", "tags": [{"value": "x"}]}`, 400, "INVALID_PARAMETER_VALUE", "tags[0].key")
		})

		t.Run("delete traces", func(t *testing.T) {
			for _, v := range []string{"2.0", "3.0"} {
				p := "/" + v + "/mlflow/traces/delete-traces"
				c.fails("POST", p, `{"experiment_id": "`+exp+`"}`, 400, "INVALID_PARAMETER_VALUE", "Either `max_timestamp_millis` or `request_ids`")
				c.fails("POST", p, `{"experiment_id": "`+exp+`", "max_timestamp_millis": 1, "request_ids": ["a"]}`, 400, "INVALID_PARAMETER_VALUE", "Only one of")
				c.fails("POST", p, `{"experiment_id": "`+exp+`", "max_timestamp_millis": 1, "max_traces": 0}`, 400, "INVALID_PARAMETER_VALUE", "positive integer")
				c.fails("POST", p, `{"max_timestamp_millis": 1}`, 400, "INVALID_PARAMETER_VALUE", "'experiment_id'")
				c.fails("POST", p, `{"experiment_id": "`+exp+`", "max_timestamp_millis": "soon"}`, 400, "INVALID_PARAMETER_VALUE", "max_timestamp_millis")
			}
			for i := 10; i < 15; i++ {
				c.startTrace(tid(i), exp2, int64(100+i), `, "tags": {"k": "v"}`)
			}
			c.span(tid(10), exp2, "0000000000000001", "", 1, `{}`)
			// Ids of the other experiment are not touched.
			out := c.ok("POST", "/3.0/mlflow/traces/delete-traces", `{"experiment_id": "`+exp+`", "request_ids": ["`+tid(10)+`"]}`)
			if out["traces_deleted"] != 0.0 {
				t.Errorf("cross-experiment delete: %v", out)
			}
			out = c.ok("POST", "/3.0/mlflow/traces/delete-traces", `{"experiment_id": "`+exp2+`", "max_timestamp_millis": 113, "max_traces": 2}`)
			if out["traces_deleted"] != 2.0 {
				t.Errorf("oldest two: %v", out)
			}
			if n := c.count("SELECT COUNT(*) FROM trace_info WHERE request_id IN (?, ?, ?)", tid(10), tid(11), tid(12)); n != 1 {
				t.Errorf("%d of the three oldest left, want 1", n)
			}
			if n := c.count("SELECT COUNT(*) FROM spans WHERE trace_id = ?", tid(10)); n != 0 {
				t.Errorf("spans of a deleted trace: %d", n)
			}
			if n := c.count("SELECT COUNT(*) FROM trace_tags WHERE request_id = ?", tid(10)); n != 0 {
				t.Errorf("tags of a deleted trace: %d", n)
			}
			out = c.ok("POST", "/2.0/mlflow/traces/delete-traces", `{"experiment_id": "`+exp2+`", "request_ids": ["`+tid(13)+`", "`+strings.ToUpper(tid(14))+`", "tr-nope"]}`)
			if out["traces_deleted"] != 1.0 {
				t.Errorf("by ids: %v", out)
			}
			if n := c.count("SELECT COUNT(*) FROM trace_info WHERE request_id = ?", tid(14)); n != 1 {
				t.Errorf("an id differing in case deleted the trace")
			}
		})
	})
}
