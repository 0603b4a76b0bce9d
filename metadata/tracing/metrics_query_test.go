package tracing

import (
	"reflect"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/schema"
)

func TestQueryTraceMetrics(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("m1", "/tmp/m1", "active")
		other := c.experiment("m2", "/tmp/m2", "active")
		// Five traces; the bucket edges are 60,000 ms apart.
		c.trace(tid(1), exp, 1000, 10, "OK")
		c.trace(tid(2), exp, 30000, 20, "OK")
		c.trace(tid(3), exp, 59999, 30, "ERROR")
		c.trace(tid(4), exp, 60000, 40, "OK")
		c.trace(tid(5), exp, 125000, 100, "ERROR")
		c.trace(tid(9), other, 1000, 1000, "OK")
		c.traceTag(tid(1), "mlflow.traceName", "a")
		c.traceTag(tid(2), "mlflow.traceName", "a")
		c.traceTag(tid(3), "mlflow.traceName", "b")
		c.traceTag(tid(4), "mlflow.traceName", "b")
		c.traceTag(tid(9), "mlflow.traceName", "a")
		c.exec("INSERT INTO trace_request_metadata ("+db.Dialect().Quote("key")+", value, request_id) VALUES ('user', 'ann', ?), ('user', 'bob', ?)", tid(1), tid(4))
		c.exec("INSERT INTO trace_metrics (request_id, "+db.Dialect().Quote("key")+", value) VALUES (?, 'input_tokens', 5), (?, 'input_tokens', 7), (?, 'output_tokens', 100)", tid(1), tid(2), tid(1))

		path := "/3.0/mlflow/traces/metrics"
		query := func(extra map[string]any) map[string]any {
			t.Helper()
			body := map[string]any{"experiment_ids": []string{exp}, "view_type": "TRACES"}
			for k, v := range extra {
				body[k] = v
			}
			return c.ok("POST", path, js(body))
		}
		aggs := func(types ...any) []any {
			var out []any
			for _, x := range types {
				switch v := x.(type) {
				case string:
					out = append(out, map[string]any{"aggregation_type": v})
				case float64:
					out = append(out, map[string]any{"aggregation_type": "PERCENTILE", "percentile_value": v})
				}
			}
			return out
		}
		type point = map[string]any
		dp := func(metric string, dims map[string]any, values map[string]any) point {
			p := point{"metric_name": metric, "values": values}
			if dims != nil {
				p["dimensions"] = dims
			}
			return p
		}
		check := func(what string, out map[string]any, want ...point) {
			t.Helper()
			got := list(out, "data_points")
			w := make([]any, len(want))
			for i, p := range want {
				w[i] = map[string]any(p)
			}
			if len(want) == 0 {
				w = nil
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s:\n got %v\nwant %v", what, got, w)
			}
		}
		// NULL dimension values sort first on SQLite and MySQL, last on
		// PostgreSQL (each database's ORDER BY, as upstream's).
		checkNullLast := func(what string, out map[string]any, null point, rest ...point) {
			t.Helper()
			if db.Dialect() == schema.Postgres {
				check(what, out, append(rest, null)...)
			} else {
				check(what, out, append([]point{null}, rest...)...)
			}
		}
		v := func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}

		check("count", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT")}),
			dp("trace_count", nil, v("COUNT", 5.0)))
		check("count by status", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT"), "dimensions": []string{"trace_status"}}),
			dp("trace_count", v("trace_status", "ERROR"), v("COUNT", 2.0)),
			dp("trace_count", v("trace_status", "OK"), v("COUNT", 3.0)))
		// trace_name joins the name tag: a trace without one is left out.
		check("count by name", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT"), "dimensions": []string{"trace_name"}}),
			dp("trace_count", v("trace_name", "a"), v("COUNT", 2.0)),
			dp("trace_count", v("trace_name", "b"), v("COUNT", 2.0)))
		// 10 20 30 40 100: P50 = 30, P90 at rank 3.6 = 40 + .6·60, P0/P100 the ends.
		check("latency", query(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0, 90.0, 0.0, 100.0, 12.5)}),
			dp("latency", nil, v("AVG", 40.0, "P50.0", 30.0, "P90.0", 76.0, "P0.0", 10.0, "P100.0", 100.0, "P12.5", 15.0)))
		// Buckets of 60 s: 59,999 ms is in the first, 60,000 in the second.
		check("latency buckets", query(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0),
			"time_interval_seconds": 60, "start_time_ms": 0, "end_time_ms": 200000}),
			dp("latency", v("time_bucket", "1970-01-01T00:00:00+00:00"), v("AVG", 20.0, "P50.0", 20.0)),
			dp("latency", v("time_bucket", "1970-01-01T00:01:00+00:00"), v("AVG", 40.0, "P50.0", 40.0)),
			dp("latency", v("time_bucket", "1970-01-01T00:02:00+00:00"), v("AVG", 100.0, "P50.0", 100.0)))
		check("buckets and name", query(map[string]any{"metric_name": "latency", "aggregations": aggs(50.0), "dimensions": []string{"trace_name"},
			"time_interval_seconds": "60", "start_time_ms": "0", "end_time_ms": "60000"}),
			dp("latency", v("time_bucket", "1970-01-01T00:00:00+00:00", "trace_name", "a"), v("P50.0", 15.0)),
			dp("latency", v("time_bucket", "1970-01-01T00:00:00+00:00", "trace_name", "b"), v("P50.0", 30.0)),
			dp("latency", v("time_bucket", "1970-01-01T00:01:00+00:00", "trace_name", "b"), v("P50.0", 40.0)))
		// The time range is inclusive at both ends.
		check("range", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT"), "start_time_ms": 30000, "end_time_ms": 60000}),
			dp("trace_count", nil, v("COUNT", 3.0)))
		check("filters", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT"),
			"filters": []string{"trace.status = 'OK'", `trace.tag.mlflow.traceName = "a"`}}),
			dp("trace_count", nil, v("COUNT", 2.0)))
		check("metadata filter", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT"), "filters": []string{"trace.metadata.user = 'bob'"}}),
			dp("trace_count", nil, v("COUNT", 1.0)))
		// Token usage comes from trace_metrics.
		check("tokens", query(map[string]any{"metric_name": "input_tokens", "aggregations": aggs("SUM", "AVG", 50.0)}),
			dp("input_tokens", nil, v("SUM", 12.0, "AVG", 6.0, "P50.0", 6.0)))
		// Nothing matches: COUNT is 0, an AVG alone is no point at all.
		check("empty count", query(map[string]any{"metric_name": "trace_count", "aggregations": aggs("COUNT"), "filters": []string{"trace.status = 'NONE'"}}),
			dp("trace_count", nil, v("COUNT", 0.0)))
		check("empty avg", query(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0), "filters": []string{"trace.status = 'NONE'"}}))

		// Pages of groups, percentiles included.
		page := query(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0), "dimensions": []string{"trace_name"}, "max_results": 1})
		check("page 1", page, dp("latency", v("trace_name", "a"), v("AVG", 15.0, "P50.0", 15.0)))
		tok, _ := page["next_page_token"].(string)
		if tok == "" {
			t.Fatalf("no next_page_token: %v", page)
		}
		page = query(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0), "dimensions": []string{"trace_name"}, "max_results": 1, "page_token": tok})
		check("page 2", page, dp("latency", v("trace_name", "b"), v("AVG", 35.0, "P50.0", 35.0)))
		if page["next_page_token"] != nil {
			t.Errorf("last page has a token: %v", page)
		}

		// SPANS: three spans of tr1 (LLM 2 ms, LLM 4 ms, CHAIN 9 ms).
		for i, s := range []struct {
			typ, status string
			ms          int64
		}{{"LLM", "OK", 2}, {"LLM", "ERROR", 4}, {"CHAIN", "OK", 9}} {
			start := int64(1_000_000_000 + i)
			c.exec("INSERT INTO spans (trace_id, experiment_id, span_id, name, type, status, start_time_unix_nano, end_time_unix_nano, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')",
				tid(1), exp, "000000000000000"+string(rune('1'+i)), "s-"+s.typ, s.typ, s.status, start, start+s.ms*1_000_000)
		}
		// Model dimensions read spans.dimension_attributes (JSON); costs
		// come from span_metrics.
		c.exec("UPDATE spans SET dimension_attributes = ? WHERE type = 'LLM'", `{"mlflow.llm.model": "gpt-x", "mlflow.llm.provider": "openai"}`)
		c.exec("INSERT INTO span_metrics (trace_id, span_id, "+db.Dialect().Quote("key")+", value) VALUES (?, '0000000000000001', 'total_cost', 0.25), (?, '0000000000000002', 'total_cost', 0.75), (?, '0000000000000003', 'total_cost', 2)", tid(1), tid(1), tid(1))
		spans := func(extra map[string]any) map[string]any {
			extra["view_type"] = "SPANS"
			return query(extra)
		}
		check("span count by type", spans(map[string]any{"metric_name": "span_count", "aggregations": aggs("COUNT"), "dimensions": []string{"span_type"}}),
			dp("span_count", v("span_type", "CHAIN"), v("COUNT", 1.0)),
			dp("span_count", v("span_type", "LLM"), v("COUNT", 2.0)))
		check("span latency", spans(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0), "filters": []string{"span.type = 'LLM'"}}),
			dp("latency", nil, v("AVG", 3.0, "P50.0", 3.0)))
		checkNullLast("span count by model", spans(map[string]any{"metric_name": "span_count", "aggregations": aggs("COUNT"), "dimensions": []string{"span_model_name", "span_model_provider"}}),
			dp("span_count", nil, v("COUNT", 1.0)),
			dp("span_count", v("span_model_name", "gpt-x", "span_model_provider", "openai"), v("COUNT", 2.0)))
		checkNullLast("cost by model", spans(map[string]any{"metric_name": "total_cost", "aggregations": aggs("SUM", "AVG", 50.0), "dimensions": []string{"span_model_name"}}),
			dp("total_cost", nil, v("SUM", 2.0, "AVG", 2.0, "P50.0", 2.0)),
			dp("total_cost", v("span_model_name", "gpt-x"), v("SUM", 1.0, "AVG", 0.5, "P50.0", 0.5)))
		check("span latency by status", spans(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG"), "dimensions": []string{"span_status"}}),
			dp("latency", v("span_status", "ERROR"), v("AVG", 4.0)),
			dp("latency", v("span_status", "OK"), v("AVG", 5.5)))

		// ASSESSMENTS: yes → 1, no → 0, 5 → 5, a string → no value.
		fb := func(id, name, value string) {
			c.ok("POST", "/3.0/mlflow/traces/"+id+"/assessments", `{"assessment": {"assessment_name": "`+name+`", "source": {"source_type": "HUMAN", "source_id": "u"}, "feedback": {"value": `+value+`}}}`)
		}
		fb(tid(1), "quality", `"yes"`)
		fb(tid(2), "quality", `"no"`)
		fb(tid(3), "score", `5`)
		fb(tid(4), "score", `"great"`)
		fb(tid(4), "ok", `true`)
		assess := func(extra map[string]any) map[string]any {
			extra["view_type"] = "ASSESSMENTS"
			return query(extra)
		}
		check("assessment values", assess(map[string]any{"metric_name": "assessment_value", "aggregations": aggs("AVG"), "dimensions": []string{"assessment_name"}}),
			dp("assessment_value", v("assessment_name", "ok"), v("AVG", 1.0)),
			dp("assessment_value", v("assessment_name", "quality"), v("AVG", 0.5)),
			dp("assessment_value", v("assessment_name", "score"), v("AVG", 5.0)))
		check("assessment count", assess(map[string]any{"metric_name": "assessment_count", "aggregations": aggs("COUNT"), "filters": []string{"assessment.name = 'score'"}}),
			dp("assessment_count", nil, v("COUNT", 2.0)))

		// Names that differ in case are one group where the database's
		// collation says so (MySQL/MariaDB's default), and its percentile
		// is still computed over the whole group.
		c.trace(tid(6), exp, 200000, 60, "OK")
		c.traceTag(tid(6), "mlflow.traceName", "A")
		out := query(map[string]any{"metric_name": "latency", "aggregations": aggs("AVG", 50.0), "dimensions": []string{"trace_name"}})
		got := map[string]any{}
		for _, p := range list(out, "data_points") {
			pm := p.(map[string]any)
			got[obj(pm, "dimensions")["trace_name"].(string)] = pm["values"]
		}
		want := map[string]any{"A": v("AVG", 60.0, "P50.0", 60.0), "a": v("AVG", 15.0, "P50.0", 15.0), "b": v("AVG", 35.0, "P50.0", 35.0)}
		if db.Dialect() == schema.MySQL {
			merged := v("AVG", 30.0, "P50.0", 20.0)
			want = map[string]any{"b": v("AVG", 35.0, "P50.0", 35.0)}
			if _, ok := got["a"]; ok {
				want["a"] = merged
			} else {
				want["A"] = merged
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("names by collation: got %v, want %v", got, want)
		}

		// Bad input → 400 with upstream's messages.
		bad := func(body, msg string) {
			t.Helper()
			c.fails("POST", path, body, 400, "INVALID_PARAMETER_VALUE", msg)
		}
		e := `"experiment_ids": ["` + exp + `"]`
		cnt := `"aggregations": [{"aggregation_type": "COUNT"}]`
		bad(`{"view_type": "TRACES", "metric_name": "trace_count", `+cnt+`}`, "Missing value for required parameter 'experiment_ids'")
		bad(`{`+e+`, "metric_name": "trace_count", `+cnt+`}`, "Missing value for required parameter 'view_type'")
		bad(`{`+e+`, "view_type": "TRACES", `+cnt+`}`, "Missing value for required parameter 'metric_name'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count"}`, "Missing value for required parameter 'aggregations'")
		bad(`{`+e+`, "view_type": "RUNS", "metric_name": "trace_count", `+cnt+`}`, "view_type must be one of ['TRACES', 'SPANS', 'ASSESSMENTS'], got 'RUNS'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "cost", `+cnt+`}`, "metric_name must be one of ['trace_count', 'latency', 'input_tokens', 'output_tokens', 'total_tokens'], got 'cost'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "MIN"}, {"aggregation_type": "COUNT"}]}`,
			"Found invalid aggregation_type(s): ['COUNT', 'MIN']. Supported aggregation types: ['AVG', 'PERCENTILE']")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "MEDIAN"}]}`, "Invalid aggregation_type 'MEDIAN'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "PERCENTILE"}]}`, "Percentile value is required")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": 101}]}`, "between 0 and 100")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": "50"}]}`, "Hint: Value was of type 'str'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": "AVG"}`, "Hint: Value was of type 'str'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "AVG"}], "dimensions": ["trace_status", "x"]}`,
			"Found invalid dimension(s): ['trace_status', 'x']. Supported dimensions: ['trace_name']")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "time_interval_seconds": 60}`, "start_time_ms and end_time_ms are required if time_interval_seconds is set")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "time_interval_seconds": -5, "start_time_ms": 0, "end_time_ms": 1}`, "time_interval_seconds")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "start_time_ms": "soon"}`, "Hint: Value was of type 'str'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["span.type = 'LLM'"]}`, "Filtering by span is only supported for MetricViewType.SPANS view type, got MetricViewType.TRACES")
		bad(`{`+e+`, "view_type": "SPANS", "metric_name": "span_count", `+cnt+`, "filters": ["assessment.name = 'x'"]}`, "Filtering by assessment is only supported")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["trace.status != 'OK'"]}`, "Invalid filter")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["trace.status = OK"]}`, "Invalid filter")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["trace.status = 'OK' OR 1=1"]}`, "Invalid filter")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["trace.tag = 'x'"]}`, "needs a key")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["trace.name = 'x'"]}`, "unknown field 'name'")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "filters": ["run.status = 'x'"]}`, "Invalid filter")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "max_results": 0}`, "max_results")
		bad(`{`+e+`, "view_type": "TRACES", "metric_name": "trace_count", `+cnt+`, "page_token": "%%%"}`, "")
		bad(`{`+e+`, "view_type": 1, "metric_name": "trace_count", `+cnt+`}`, "Hint: Value was of type 'int'")
	})
}
