package tracing

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// trace inserts a trace_info row (test setup at exact times).
func (c client) trace(id, exp string, ms, execMs int64, status string) {
	c.T.Helper()
	c.exec("INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status) VALUES (?, ?, ?, ?, ?)", id, exp, ms, execMs, status)
}

func (c client) traceTag(id, key, value string) {
	c.T.Helper()
	c.exec("INSERT INTO trace_tags ("+c.db.Dialect().Quote("key")+", value, request_id) VALUES (?, ?, ?)", key, value, id)
}

func near(t *testing.T, what string, got any, want float64) {
	t.Helper()
	f, ok := got.(float64)
	if !ok || math.Abs(f-want) > 1e-9 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestCalculateFilterCorrelation(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("corr", "/tmp/corr", "active")
		other := c.experiment("corr2", "/tmp/corr2", "active")
		// Ten traces: a on 1–4, b on 3–6, c on 9–10, env=prod on 1–8.
		for i := 1; i <= 10; i++ {
			c.trace(tid(i), exp, int64(i), 1, "OK")
			if i <= 4 {
				c.traceTag(tid(i), "a", "1")
			}
			if i >= 3 && i <= 6 {
				c.traceTag(tid(i), "b", "1")
			}
			if i >= 9 {
				c.traceTag(tid(i), "c", "1")
			}
			if i <= 8 {
				c.traceTag(tid(i), "env", "prod")
			}
		}
		// Another experiment's traces never count.
		for i := 20; i < 23; i++ {
			c.trace(tid(i), other, int64(i), 1, "OK")
			c.traceTag(tid(i), "a", "1")
		}
		path := "/3.0/mlflow/traces/calculate-filter-correlation"
		corr := func(f1, f2, base string) map[string]any {
			t.Helper()
			body := map[string]any{"experiment_ids": []string{exp}, "filter_string1": f1, "filter_string2": f2}
			if base != "" {
				body["base_filter"] = base
			}
			return c.ok("POST", path, js(body))
		}
		counts := func(out map[string]any, f1, f2, joint, total float64) {
			t.Helper()
			got := []any{out["filter1_count"], out["filter2_count"], out["joint_count"], out["total_count"]}
			if want := []any{f1, f2, joint, total}; !reflect.DeepEqual(got, want) {
				t.Errorf("counts %v, want %v", got, want)
			}
		}

		// n11=2 n10=2 n01=2 n00=4, N=10: log(2·10/(4·4)) / -log(2/10);
		// smoothed (+0.5 each, N=12): log(2.5·12/25) / -log(2.5/12).
		out := corr("tags.a = '1'", "tags.b = '1'", "")
		counts(out, 4, 4, 2, 10)
		near(t, "npmi", out["npmi"], math.Log(1.25)/math.Log(5))
		near(t, "npmi_smoothed", out["npmi_smoothed"], math.Log(1.2)/math.Log(4.8))

		// Within env=prod (1–8): n00=2, independent → 0 both ways.
		out = corr("tags.a = '1'", "tags.b = '1'", "tags.env = 'prod'")
		counts(out, 4, 4, 2, 8)
		near(t, "npmi base", out["npmi"], 0)
		near(t, "npmi_smoothed base", out["npmi_smoothed"], 0)

		// Never together: -1; smoothed n11=.5 n10=4.5 n01=2.5 n00=4.5.
		out = corr("tags.a = '1'", "tags.c = '1'", "")
		counts(out, 4, 2, 0, 10)
		near(t, "npmi disjoint", out["npmi"], -1)
		near(t, "npmi_smoothed disjoint", out["npmi_smoothed"], math.Log(0.5*12/(5*3))/-math.Log(0.5/12))

		// Always together (nothing outside n11): 1 both ways.
		out = corr("tags.a = '1'", "tags.a = '1'", "tags.a = '1'")
		counts(out, 4, 4, 4, 4)
		near(t, "npmi perfect", out["npmi"], 1)
		near(t, "npmi_smoothed perfect", out["npmi_smoothed"], 1)

		// A filter with no match: NaN as the JSON string "NaN".
		out = corr("tags.a = 'none'", "tags.b = '1'", "")
		counts(out, 0, 4, 0, 10)
		if out["npmi"] != "NaN" || out["npmi_smoothed"] != "NaN" {
			t.Errorf("zero support: %v", out)
		}
		// No traces at all (unknown experiment).
		out = c.ok("POST", path, `{"experiment_ids": ["99999", "x"], "filter_string1": "status = 'OK'", "filter_string2": "status = 'OK'"}`)
		counts(out, 0, 0, 0, 0)
		if out["npmi"] != "NaN" {
			t.Errorf("empty: %v", out)
		}
		// Filters of every kind the search grammar has work here too.
		out = corr("attributes.timestamp_ms <= 5", "tags.b IS NOT NULL", "")
		counts(out, 5, 4, 3, 10)

		// Bad input.
		c.fails("POST", path, `{"filter_string1": "a", "filter_string2": "b"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_ids'")
		c.fails("POST", path, `{"experiment_ids": ["`+exp+`"], "filter_string2": "status = 'OK'"}`, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'filter_string1'")
		c.fails("POST", path, `{"experiment_ids": ["`+exp+`"], "filter_string1": "status = 'OK'"}`, 400, "INVALID_PARAMETER_VALUE", "'filter_string2'")
		c.fails("POST", path, `{"experiment_ids": ["`+exp+`"], "filter_string1": "status = 'OK'", "filter_string2": "bogus.x = 1"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid entity type 'bogus'")
		c.fails("POST", path, `{"experiment_ids": ["`+exp+`"], "filter_string1": "status = 'OK'", "filter_string2": "status = 'OK'", "base_filter": "tags.x = 'a' OR 1=1"}`, 400, "INVALID_PARAMETER_VALUE", "")
		c.fails("POST", path, `{"experiment_ids": "`+exp+`", "filter_string1": "status = 'OK'", "filter_string2": "status = 'OK'"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value")
		c.fails("POST", path, `{"experiment_ids": ["`+exp+`"], "filter_string1": 5, "filter_string2": "status = 'OK'"}`, 400, "INVALID_PARAMETER_VALUE", "Hint: Value was of type 'int'")
		c.fails("POST", path, `{"experiment_ids": ["`+exp+`"], "filter_string1": "tags.a = '1'; DROP TABLE trace_info", "filter_string2": "status = 'OK'"}`, 400, "INVALID_PARAMETER_VALUE", "")
		if n := c.count("SELECT COUNT(*) FROM trace_info"); n != 13 {
			t.Errorf("trace_info has %d rows", n)
		}
	})
}

func TestNPMIEdges(t *testing.T) {
	t.Parallel()
	nan := func(a, b float64) bool { return math.IsNaN(a) && math.IsNaN(b) }
	if a, b := npmi(correlationCounts{total: 0}); !nan(a, b) {
		t.Errorf("no population: %v %v", a, b)
	}
	// Inconsistent counts (joint above a filter's count): NaN.
	if a, b := npmi(correlationCounts{total: 10, filter1: 2, filter2: 3, joint: 5}); !nan(a, b) {
		t.Errorf("inconsistent: %v %v", a, b)
	}
	// Everything matches both filters: perfect co-occurrence.
	if a, b := npmi(correlationCounts{total: 3, filter1: 3, filter2: 3, joint: 3}); a != 1 || b != 1 {
		t.Errorf("all: %v %v", a, b)
	}
}

// TestAnalyticsHostileInput: the correlation and metrics routes answer
// hostile bodies with 4xx and leave the database as it was.
func TestAnalyticsHostileInput(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("ah", "/tmp/ah", "active")
		c.trace(tid(1), exp, 1, 1, "OK")
		corr := "/api/3.0/mlflow/traces/calculate-filter-correlation"
		met := "/api/3.0/mlflow/traces/metrics"
		e := `"experiment_ids": ["` + exp + `"]`
		m := e + `, "view_type": "TRACES", "metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}]`
		many := `"experiment_ids": [` + strings.Repeat(`"1", `, 1000) + `"1"]`
		for _, tc := range []struct{ path, body string }{
			{corr, "{" + e + ", \"filter_string1\": \"tags.a = '\xff'\", \"filter_string2\": \"status = 'OK'\"}"},
			{corr, "{" + e + ", \"filter_string1\": \"tags.a = '" + strings.Repeat("x", 70000) + "'\", \"filter_string2\": \"status = 'OK'\"}"},
			{corr, "{" + e + ", \"filter_string1\": \"status = 'OK') OR (1=1\", \"filter_string2\": \"status = 'OK'\"}"},
			{corr, "{" + many + ", \"filter_string1\": \"status = 'OK'\", \"filter_string2\": \"status = 'OK'\"}"},
			{corr, `[1]`},
			{met, "{" + m + ", \"filters\": [\"trace.tag.k = '\xfe'\"]}"},
			{met, "{" + m + ", \"filters\": [\"trace.tag.k = '" + strings.Repeat("x", 5000) + "'\"]}"},
			{met, "{" + m + ", \"filters\": [" + strings.Repeat(`"trace.status = 'OK'", `, 200) + "\"trace.status = 'OK'\"]}"},
			{met, "{" + m + ", \"filters\": [\"trace.tag.k = 'a'' OR ''1'' = ''1'\"]}"},
			{met, "{" + m + ", \"filters\": [\"trace.status = 'OK'\"], \"max_results\": 100000000}"},
			{met, "{" + m + ", \"dimensions\": [\"trace_status; DROP TABLE trace_info\"]}"},
			{met, "{" + m + ", \"time_interval_seconds\": 1e300, \"start_time_ms\": 0, \"end_time_ms\": 1}"},
			{met, `{` + e + `, "view_type": "TRACES", "metric_name": "latency", "aggregations": [` + strings.Repeat(`{"aggregation_type": "AVG"}, `, 100) + `{"aggregation_type": "AVG"}]}`},
			{met, `{` + e + `, "view_type": "TRACES", "metric_name": "latency", "aggregations": [5]}`},
			{met, `{` + e + `, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": -0.5}]}`},
		} {
			st, body := c.Raw("POST", tc.path, "application/json", tc.body)
			if st < 400 || st >= 500 || !strings.Contains(body, "error_code") {
				t.Errorf("%s %.120q: %d %.200s", tc.path, tc.body, st, body)
			}
		}
		if n := c.count("SELECT COUNT(*) FROM trace_info"); n != 1 {
			t.Errorf("%d traces after hostile requests, want 1", n)
		}
	})
}
