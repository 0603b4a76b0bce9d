package tracing

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

func TestSearchTraces(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("s1", "/tmp/s1", "active")
		other := c.experiment("s2", "/tmp/s2", "active")
		// Five traces: timestamps 100..500, execution 10..50 ms.
		for i := 1; i <= 5; i++ {
			state := "OK"
			if i%2 == 0 {
				state = "ERROR"
			}
			extra := `, "state": "` + state + `", "execution_duration": "0.0` + string(rune('0'+i)) + `0s", "client_request_id": "cr-` + string(rune('0'+i)) + `"`
			switch i {
			case 1:
				extra += `, "tags": {"env": "prod", "mlflow.traceName": "predict", "pct": "100%"}, "trace_metadata": {"mlflow.sourceRun": "runA", "user": "ann"}`
			case 2:
				extra += `, "tags": {"env": "dev", "mlflow.traceName": "Predict"}, "trace_metadata": {"user": "bob"}`
			case 3:
				extra += `, "tags": {"env": "Prod"}`
			}
			c.startTrace(tid(i), exp, int64(i*100), strings.Replace(extra, `"state": "OK", `, "", 0))
		}
		c.startTrace(tid(99), other, 50, `, "tags": {"env": "prod"}`)
		c.ok("POST", "/2.0/mlflow/traces/link-to-run", `{"trace_ids": ["`+tid(4)+`"], "run_id": "runA"}`)
		c.ok("POST", "/2.0/mlflow/traces/link-prompts", `{"trace_id": "`+tid(5)+`", "prompt_versions": [{"name": "qa", "version": "2"}]}`)
		c.span(tid(3), exp, "0000000000000003", "", 1, `{}`)
		fb := func(id, name, value string) {
			c.ok("POST", "/3.0/mlflow/traces/"+id+"/assessments", `{"assessment": {"assessment_name": "`+name+`", "source": {"source_type": "HUMAN", "source_id": "u"}, "feedback": {"value": `+value+`}}}`)
		}
		fb(tid(1), "quality", `"yes"`)
		fb(tid(2), "quality", `"no"`)
		fb(tid(3), "score", `5`)
		fb(tid(4), "correct", `true`)
		c.ok("POST", "/3.0/mlflow/traces/"+tid(5)+"/assessments", `{"assessment": {"assessment_name": "answer", "expectation": {"value": "42"}}}`)
		c.ok("POST", "/3.0/mlflow/traces/"+tid(5)+"/assessments", `{"assessment": {"assessment_name": "iss-7", "issue": {"issue_name": "slow"}}}`)

		search := func(filter string, order ...string) []string {
			t.Helper()
			body := map[string]any{"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}, "filter": filter}
			if len(order) > 0 {
				body["order_by"] = order
			}
			return traceIDs(list(c.ok("POST", "/3.0/mlflow/traces/search", js(body)), "traces"))
		}
		ids := func(ns ...int) []string {
			out := []string{}
			for _, n := range ns {
				out = append(out, tid(n))
			}
			return out
		}
		for _, tc := range []struct {
			filter string
			want   []string
		}{
			{"", ids(5, 4, 3, 2, 1)},
			{"tags.env = 'prod'", ids(1)},
			{"tag.env != 'prod'", ids(3, 2)},
			{"tags.env LIKE 'pro%'", ids(1)},
			{"tags.env ILIKE 'pro%'", ids(3, 1)},
			{"tags.pct LIKE '100!%'", []string{}},
			{"tags.env IS NULL", ids(5, 4)},
			{"tags.`env` IS NOT NULL", ids(3, 2, 1)},
			{"metadata.user = 'ann'", ids(1)},
			{"request_metadata.user != 'ann'", ids(2)},
			{"metadata.user IS NULL", ids(5, 4, 3)},
			{"metadata.user IS NOT NULL AND tags.env = 'dev'", ids(2)},
			{"status = 'ERROR'", ids(4, 2)},
			{"trace.state != 'ERROR'", ids(5, 3, 1)},
			{"attributes.status IN ('OK', 'IN_PROGRESS')", ids(5, 3, 1)},
			{"status NOT IN ('OK')", ids(4, 2)},
			{"timestamp_ms > 200", ids(5, 4, 3)},
			{"timestamp >= 200 AND timestamp_ms < 400", ids(3, 2)},
			{"timestamp_ms = 100", ids(1)},
			{"timestamp_ms != 100", ids(5, 4, 3, 2)},
			{"timestamp_ms <= 100", ids(1)},
			{"execution_time > 30", ids(5, 4)},
			{"execution_time_ms <= 20", ids(2, 1)},
			{"request_id = '" + tid(3) + "'", ids(3)},
			{"trace_id IN ('" + tid(3) + "', '" + tid(99) + "')", ids(3)},
			{"trace_id NOT IN ('" + tid(3) + "')", ids(5, 4, 2, 1)},
			{"client_request_id LIKE 'cr-%'", ids(5, 4, 3, 2, 1)},
			{"name = 'predict'", ids(1)},
			{"name ILIKE 'predict'", ids(2, 1)},
			{"name != 'predict'", ids(2)},
			{"run_id = 'runA'", ids(4, 1)},
			{"feedback.quality = 'yes'", ids(1)},
			{"feedback.quality != 'yes'", ids(2)},
			{"feedback.quality LIKE '%o%'", ids(2)},
			{"feedback.score = 5", ids(3)},
			{"feedback.score = '5'", ids(3)},
			{"feedback.correct = 'true'", ids(4)},
			{"feedback.quality IS NULL", ids(5, 4, 3)},
			{"feedback.quality IS NOT NULL", ids(2, 1)},
			{"expectation.answer = '42'", ids(5)},
			{"expectation.answer IS NOT NULL", ids(5)},
			{"prompt = 'qa/2'", ids(5)},
			{"prompt = 'qa/1'", []string{}},
			{"issue.id = 'iss-7'", ids(5)},
			{"span.name = 'span-0000000000000003'", ids(3)},
			{"span.type = 'CHAIN' AND span.status = 'OK'", ids(3)},
			{"tags.env = 'x'' OR 1=1 --'", []string{}},
			{"tags.`x'; DROP TABLE trace_info; --` = 'v'", []string{}},
		} {
			if got := search(tc.filter); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("filter %q: %v, want %v", tc.filter, got, tc.want)
			}
		}
		for _, tc := range []struct {
			order []string
			want  []string
		}{
			{[]string{"timestamp_ms ASC"}, ids(1, 2, 3, 4, 5)},
			{[]string{"execution_time DESC"}, ids(5, 4, 3, 2, 1)},
			{[]string{"status", "timestamp_ms DESC"}, ids(4, 2, 5, 3, 1)},
			{[]string{"request_id DESC"}, ids(5, 4, 3, 2, 1)},
		} {
			if got := search("", tc.order...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("order %q: %v, want %v", tc.order, got, tc.want)
			}
		}

		t.Run("pages", func(t *testing.T) {
			var got []string
			token := ""
			for pages := 0; pages < 10; pages++ {
				out := c.ok("POST", "/3.0/mlflow/traces/search", `{"locations": [{"mlflow_experiment": {"experiment_id": "`+exp+`"}}], "max_results": 2, "page_token": "`+token+`"}`)
				got = append(got, traceIDs(list(out, "traces"))...)
				next, _ := out["next_page_token"].(string)
				if next == "" {
					break
				}
				token = next
			}
			if !reflect.DeepEqual(got, ids(5, 4, 3, 2, 1)) {
				t.Errorf("paged: %v", got)
			}
			// A full last page has no token.
			out := c.ok("POST", "/3.0/mlflow/traces/search", `{"locations": [{"mlflow_experiment": {"experiment_id": "`+exp+`"}}], "max_results": 5}`)
			if _, ok := out["next_page_token"]; ok || len(list(out, "traces")) != 5 {
				t.Errorf("exact page: %v", out)
			}
		})

		t.Run("search infos carry assessments", func(t *testing.T) {
			out := c.ok("POST", "/3.0/mlflow/traces/search", `{"locations": [{"mlflow_experiment": {"experiment_id": "`+exp+`"}}], "filter": "feedback.quality = 'yes'"}`)
			info := list(out, "traces")[0].(map[string]any)
			as := list(info, "assessments")
			if len(as) != 1 || obj(as[0].(map[string]any), "feedback")["value"] != "yes" {
				t.Errorf("assessments in search: %s", js(info))
			}
		})

		t.Run("v2 search", func(t *testing.T) {
			out := c.ok("GET", "/2.0/mlflow/traces", "?experiment_ids="+exp+"&experiment_ids="+other+"&filter=tags.env%20%3D%20%27prod%27&max_results=10")
			if got := traceIDs(list(out, "traces")); !reflect.DeepEqual(got, ids(1, 99)) {
				t.Errorf("v2 search %v", got)
			}
			first := list(out, "traces")[0].(map[string]any)
			if first["experiment_id"] != exp || first["status"] != "OK" {
				t.Errorf("v2 info %s", js(first))
			}
			c.fails("GET", "/2.0/mlflow/traces", "?filter=x", 400, "INVALID_PARAMETER_VALUE", "'experiment_ids'")
		})

		t.Run("errors", func(t *testing.T) {
			p := "/3.0/mlflow/traces/search"
			loc := `"locations": [{"mlflow_experiment": {"experiment_id": "` + exp + `"}}]`
			c.fails("POST", p, `{}`, 400, "INVALID_PARAMETER_VALUE", "'locations'")
			c.fails("POST", p, `{"locations": "x"}`, 400, "INVALID_PARAMETER_VALUE", "")
			c.fails("POST", p, `{`+loc+`, "max_results": 501}`, 400, "INVALID_PARAMETER_VALUE", "max_results")
			c.fails("POST", p, `{`+loc+`, "max_results": 0}`, 400, "INVALID_PARAMETER_VALUE", "max_results")
			c.fails("POST", p, `{`+loc+`, "max_results": "ten"}`, 400, "INVALID_PARAMETER_VALUE", "max_results")
			c.fails("POST", p, `{`+loc+`, "page_token": "@@"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid page token")
			for _, f := range []string{
				"tags.env = 'a' OR tags.env = 'b'", "tags.env > 'a'", "timestamp_ms = 'x'", "bogus = 'x'",
				"foo.bar = 'x'", "prompt = 'noslash'", "prompt != 'a/1'", "issue.name = 'x'", "issue.id != 'x'",
				"run_id != 'r'", "status = 5", "tags.env = unquoted", "span.color = 'x'", "tags.env IN ('a')",
				"feedback.q IN ('a')", "(tags.env = 'a')", "tags.env = 'a'; DROP TABLE trace_info",
			} {
				c.fails("POST", p, `{`+loc+`, "filter": `+js(f)+`}`, 400, "INVALID_PARAMETER_VALUE", "")
			}
			for _, o := range []string{"tags.env", "bogus", "timestamp_ms sideways", "timestamp_ms DESC extra"} {
				c.fails("POST", p, `{`+loc+`, "order_by": [`+js(o)+`]}`, 400, "INVALID_PARAMETER_VALUE", "")
			}
			c.fails("POST", p, `{`+loc+`, "order_by": ["timestamp", "timestamp_ms"]}`, 400, "INVALID_PARAMETER_VALUE", "duplicate")
			// An experiment id that is not a number matches nothing.
			if got := c.ok("POST", p, `{"locations": [{"mlflow_experiment": {"experiment_id": "1 OR 1=1"}}]}`); len(got) != 0 {
				t.Errorf("non-numeric experiment: %v", got)
			}
		})
	})
}

// TestSearchPagesWithTies: pages of the default order (timestamp_ms DESC,
// request_id ASC) across runs of equal timestamps, with and without a
// filter, concatenate to the whole order on every backend (MySQL narrows
// each page by a timestamp floor, pageFloor, which must keep every tie).
func TestSearchPagesWithTies(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("ties", "/tmp/ties", "active")
		// 12 traces, timestamps 300, 300, 300, 300, 200, 200, …; env=prod on odd ids.
		var all, prod []string
		for ts := int64(300); ts >= 100; ts -= 100 {
			for j := 0; j < 4; j++ {
				i := int(300-ts)/100*4 + j + 1
				env := "dev"
				if i%2 == 1 {
					env = "prod"
					prod = append(prod, tid(i))
				}
				c.startTrace(tid(i), exp, ts, `, "tags": {"env": "`+env+`"}`)
				all = append(all, tid(i))
			}
		}
		for _, tc := range []struct {
			filter string
			want   []string
		}{{"", all}, {"tags.env = 'prod'", prod}, {"timestamp_ms <= 200", all[4:]}} {
			for _, size := range []int{1, 3, 5} {
				var got []string
				token := ""
				for pages := 0; pages < 20; pages++ {
					out := c.ok("POST", "/3.0/mlflow/traces/search", fmt.Sprintf(`{"locations": [{"mlflow_experiment": {"experiment_id": %q}}], "filter": %q, "max_results": %d, "page_token": %q}`, exp, tc.filter, size, token))
					got = append(got, traceIDs(list(out, "traces"))...)
					next, _ := out["next_page_token"].(string)
					if next == "" {
						break
					}
					token = next
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("filter %q, pages of %d: %v, want %v", tc.filter, size, got, tc.want)
				}
			}
		}
	})
}
