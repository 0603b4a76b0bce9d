package tracking

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/wire"
)

// searchRunNames runs runs/search and returns the run names in order and
// the next page token.
func (c *apiClient) searchRunNames(body map[string]any) ([]string, string) {
	c.T.Helper()
	raw, _ := json.Marshal(body)
	out := c.mustPost("/runs/search", string(raw))
	var names []string
	runs, _ := out["runs"].([]any)
	for _, r := range runs {
		info := r.(map[string]any)["info"].(map[string]any)
		names = append(names, info["run_name"].(string))
	}
	tok, _ := out["next_page_token"].(string)
	return names, tok
}

func TestSearchRuns(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		_, c := newTestAPI(t, db)
		exp := c.mustPost("/experiments/create", `{"name": "s"}`)["experiment_id"].(string)
		other := c.mustPost("/experiments/create", `{"name": "other"}`)["experiment_id"].(string)
		mk := func(name string, start int, exp string) string {
			id, _ := c.newRun(`{"experiment_id": "` + exp + `", "run_name": "` + name + `", "start_time": ` + itoa(start) + `, "user_id": "u-` + name + `"}`)
			return id
		}
		ids := map[string]string{}
		ids["a"] = mk("a", 100, exp)
		ids["b"] = mk("b", 300, exp)
		ids["c"] = mk("c", 200, exp)
		ids["d"] = mk("d", 250, exp)
		ids["x"] = mk("x", 999, other)
		log := func(id, body string) { c.mustPost("/runs/log-batch", `{"run_id": "`+id+`", `+body+`}`) }
		log(ids["a"], `"metrics": [{"key": "acc", "value": 0.9, "timestamp": 1}], "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "t", "value": "Alpha"}]`)
		log(ids["b"], `"metrics": [{"key": "acc", "value": 0.4, "timestamp": 1}], "params": [{"key": "lr", "value": "0.2"}], "tags": [{"key": "t", "value": "alpha"}]`)
		log(ids["c"], `"metrics": [{"key": "acc", "value": "NaN", "timestamp": 1}], "tags": [{"key": "t", "value": "x' OR '1'='1"}]`)
		c.mustPost("/runs/delete", `{"run_id": "`+ids["d"]+`"}`)
		e := []string{exp}
		cases := []struct {
			filter string
			order  []string
			want   []string
		}{
			{"", nil, []string{"b", "c", "a"}},
			{"metrics.acc > 0.5", nil, []string{"a"}},
			{"metrics.acc >= 0.4 AND metrics.acc < 1", nil, []string{"b", "a"}}, // NaN is stored as 0, as upstream
			{"params.lr = '0.1'", nil, []string{"a"}},
			{"params.lr != '0.1'", nil, []string{"b"}},
			{"params.lr LIKE '0.%'", nil, []string{"b", "a"}},
			{"params.lr IS NULL", nil, []string{"c"}},
			{"params.lr IS NOT NULL AND tags.t ILIKE 'ALPHA'", nil, []string{"b", "a"}},
			{"tags.t = 'alpha'", nil, []string{"b"}},
			{"tags.t = 'ALPHA'", nil, nil},
			{"tags.t LIKE 'A%'", nil, []string{"a"}},
			{"tags.t = 'x'' OR ''1''=''1'", nil, nil},
			{"attributes.run_name = 'c'", nil, []string{"c"}},
			{"`Run Name` ILIKE 'C'", nil, []string{"c"}},
			{"run_name != 'c'", nil, []string{"b", "a"}},
			{"attributes.run_id IN ('" + ids["a"] + "', '" + ids["b"] + "')", nil, []string{"b", "a"}},
			{"attributes.run_id NOT IN ('" + ids["a"] + "')", nil, []string{"b", "c"}},
			{"run_id IN ('" + strings.ToUpper(ids["a"]) + "')", nil, nil},
			{"status = 'RUNNING' AND user_id = 'u-a'", nil, []string{"a"}},
			{"user_id = 'U-A'", nil, nil},
			{"start_time >= 200", nil, []string{"b", "c"}},
			{"created < 200", nil, []string{"a"}},
			{"end_time IS NULL", nil, nil},
			{"", []string{"metrics.acc DESC"}, []string{"a", "b", "c"}},
			{"", []string{"metrics.acc"}, []string{"b", "a", "c"}},
			{"", []string{"params.lr DESC"}, []string{"b", "a", "c"}},
			{"", []string{"tags.t"}, nil}, // checked below: missing last
			{"", []string{"attributes.start_time ASC"}, []string{"a", "c", "b"}},
			{"", []string{"run_name DESC"}, []string{"c", "b", "a"}},
			{"", []string{"metrics.missing"}, []string{"b", "c", "a"}},
		}
		for _, tc := range cases {
			if tc.filter == "end_time IS NULL" {
				continue // IS NULL is for params/tags; checked in the error cases
			}
			body := map[string]any{"experiment_ids": e, "filter": tc.filter}
			if tc.order != nil {
				body["order_by"] = tc.order
			}
			got, tok := c.searchRunNames(body)
			if tc.order != nil && tc.order[0] == "tags.t" {
				if len(got) != 3 {
					t.Errorf("order tags.t: %v", got)
				}
				continue
			}
			if tok != "" || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("filter %q order %v: got %v %q, want %v", tc.filter, tc.order, got, tok, tc.want)
			}
		}
		if got := c.run(ids["a"]); got == nil {
			t.Fatal("run a vanished")
		}
		// View types and several experiments.
		for _, tc := range []struct {
			view string
			exps []string
			want []string
		}{
			{"DELETED_ONLY", e, []string{"d"}},
			{"ALL", e, []string{"b", "d", "c", "a"}},
			{"3", []string{exp, other}, []string{"x", "b", "d", "c", "a"}},
			{"ACTIVE_ONLY", []string{}, nil},
		} {
			got, _ := c.searchRunNames(map[string]any{"experiment_ids": tc.exps, "run_view_type": tc.view})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("view %s: got %v want %v", tc.view, got, tc.want)
			}
		}
		// Paging: 3 active runs, pages of 2 then 1; a full last page has no token.
		got, tok := c.searchRunNames(map[string]any{"experiment_ids": e, "max_results": 2})
		if !reflect.DeepEqual(got, []string{"b", "c"}) || tok != wire.PageToken(2) {
			t.Fatalf("page 1: %v %q", got, tok)
		}
		got, tok = c.searchRunNames(map[string]any{"experiment_ids": e, "max_results": 2, "page_token": tok})
		if !reflect.DeepEqual(got, []string{"a"}) || tok != "" {
			t.Fatalf("page 2: %v %q", got, tok)
		}
		if got, tok = c.searchRunNames(map[string]any{"experiment_ids": e, "max_results": 3}); len(got) != 3 || tok != "" {
			t.Fatalf("full page: %v %q", got, tok)
		}
		// A searched run carries data, inputs and outputs like runs/get.
		out := c.mustPost("/runs/search", `{"experiment_ids": ["`+exp+`"], "filter": "run_name = 'a'"}`)
		want := c.run(ids["a"])
		if runs := out["runs"].([]any); len(runs) != 1 || !jsonEqual(runs[0], want) {
			t.Errorf("search run:\n got %v\nwant %v", out, want)
		}

		c.expectErrors([]errCase{
			{"OR", "/runs/search", `{"experiment_ids": ["0"], "filter": "metrics.a > 1 OR metrics.b > 1"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s) in filter string: 'OR'"},
			{"injection in key", "/runs/search", `{"experiment_ids": ["0"], "filter": "tags.x'; DROP TABLE runs; -- = 'a'"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s)"},
			{"unbalanced", "/runs/search", `{"experiment_ids": ["0"], "filter": "tags.x = 'a"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s)"},
			{"attr IS NULL", "/runs/search", `{"experiment_ids": ["0"], "filter": "end_time IS NULL"}`, 400, "INVALID_PARAMETER_VALUE", "IS NULL / IS NOT NULL is only supported for tags and params"},
			{"dup order", "/runs/search", `{"experiment_ids": ["0"], "order_by": ["start_time", "created DESC"]}`, 400, "INVALID_PARAMETER_VALUE", "`order_by` contains duplicate fields: ['start_time', 'created DESC']"},
			{"order injection", "/runs/search", `{"experiment_ids": ["0"], "order_by": ["start_time; DROP TABLE runs"]}`, 400, "INVALID_PARAMETER_VALUE", "Could not be parsed"},
			{"max too big", "/runs/search", `{"experiment_ids": ["0"], "max_results": 50001}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value 50001 for parameter 'max_results' supplied"},
			{"max zero", "/runs/search", `{"experiment_ids": ["0"], "max_results": 0}`, 400, "INVALID_PARAMETER_VALUE", "It must be a positive integer"},
			{"bad token", "/runs/search", `{"experiment_ids": ["0"], "page_token": "!!"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid page token"},
			{"bad exp id", "/runs/search", `{"experiment_ids": ["1 OR 1=1"]}`, 400, "INVALID_PARAMETER_VALUE", ""},
			{"exp ids type", "/runs/search", `{"experiment_ids": "0"}`, 400, "INVALID_PARAMETER_VALUE", ""},
			{"view type", "/runs/search", `{"experiment_ids": ["0"], "run_view_type": "SOME"}`, 400, "INVALID_PARAMETER_VALUE", ""},
			{"huge filter", "/runs/search", `{"experiment_ids": ["0"], "filter": "` + strings.Repeat("metrics.a > 1 AND ", 200) + `metrics.a > 1"}`, 400, "INVALID_PARAMETER_VALUE", "too many clauses"},
		})
		if got, _ := c.searchRunNames(map[string]any{"experiment_ids": e}); len(got) != 3 {
			t.Fatalf("runs after hostile searches: %v", got)
		}
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestSearchExperiments(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		api, c := newTestAPI(t, db)
		now := int64(1700000001000)
		for _, n := range []string{"exp-a", "exp-B", "other"} {
			now += 1000
			api.now = fixedClock(now)
			c.mustPost("/experiments/create", `{"name": "`+n+`", "tags": [{"key": "k", "value": "`+n+`"}]}`)
		}
		delID := c.mustPost("/experiments/create", `{"name": "gone"}`)["experiment_id"].(string)
		c.mustPost("/experiments/delete", `{"experiment_id": "`+delID+`"}`)
		names := func(q url.Values) ([]string, string) {
			t.Helper()
			st, out := c.get("/experiments/search", q)
			if st != 200 {
				t.Fatalf("search %v: %d %v", q, st, out)
			}
			var ns []string
			for _, e := range asList(out["experiments"]) {
				ns = append(ns, e.(map[string]any)["name"].(string))
			}
			tok, _ := out["next_page_token"].(string)
			return ns, tok
		}
		cases := []struct {
			q    url.Values
			want []string
		}{
			// Default was created with the real clock, so it is the newest.
			{url.Values{"max_results": {"10"}}, []string{"Default", "other", "exp-B", "exp-a"}},
			{url.Values{"max_results": {"10"}, "filter": {"name LIKE 'exp%'"}}, []string{"exp-B", "exp-a"}},
			{url.Values{"max_results": {"10"}, "filter": {"name = 'exp-b'"}}, nil},
			{url.Values{"max_results": {"10"}, "filter": {"name ILIKE 'EXP-b'"}}, []string{"exp-B"}},
			{url.Values{"max_results": {"10"}, "filter": {"tags.k = 'other'"}}, []string{"other"}},
			{url.Values{"max_results": {"10"}, "filter": {"tag.k IS NULL"}}, []string{"Default"}},
			{url.Values{"max_results": {"10"}, "filter": {"creation_time > 1700000002000"}}, []string{"Default", "other", "exp-B"}},
			{url.Values{"max_results": {"10"}, "order_by": {"name"}}, []string{"Default", "exp-B", "exp-a", "other"}},
			{url.Values{"max_results": {"10"}, "order_by": {"experiment_id DESC"}}, []string{"other", "exp-B", "exp-a", "Default"}},
			{url.Values{"max_results": {"10"}, "view_type": {"DELETED_ONLY"}}, []string{"gone"}},
			{url.Values{"max_results": {"10"}, "view_type": {"ALL"}, "filter": {"name != 'Default'"}, "order_by": {"creation_time ASC"}}, []string{"exp-a", "exp-B", "gone", "other"}}, // tie: experiment_id DESC
		}
		for _, tc := range cases {
			got, tok := names(tc.q)
			if tc.q.Get("order_by") == "name" {
				// Collation order differs (MySQL/PostgreSQL ignore case); just check the set.
				if len(got) != 4 {
					t.Errorf("%v: %v", tc.q, got)
				}
				continue
			}
			if tok != "" || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%v: got %v %q want %v", tc.q, got, tok, tc.want)
			}
		}
		got, tok := names(url.Values{"max_results": {"3"}})
		if len(got) != 3 || tok != wire.PageToken(3) {
			t.Fatalf("page 1: %v %q", got, tok)
		}
		got, tok = names(url.Values{"max_results": {"3"}, "page_token": {tok}})
		if !reflect.DeepEqual(got, []string{"exp-a"}) || tok != "" {
			t.Fatalf("page 2: %v %q", got, tok)
		}
		// POST with a JSON body works too.
		out := c.mustPost("/experiments/search", `{"max_results": 1, "filter": "name = 'other'"}`)
		if exps := asList(out["experiments"]); len(exps) != 1 || !jsonEqual(exps[0].(map[string]any)["tags"], []any{map[string]any{"key": "k", "value": "other"}}) {
			t.Errorf("POST search: %v", out)
		}
		for _, tc := range []struct {
			q   url.Values
			msg string
		}{
			{url.Values{"filter": {"name = 'x'"}}, "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"},
			{url.Values{"max_results": {"50001"}}, "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"},
			{url.Values{"max_results": {"1"}, "filter": {"name IS NULL"}}, "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"},
			{url.Values{"max_results": {"1"}, "filter": {"name = 'a' OR 1=1"}}, "Invalid clause(s) in filter string"},
			{url.Values{"max_results": {"1"}, "order_by": {"tags.k"}}, "Invalid order_by entity: tag"},
			{url.Values{"max_results": {"1"}, "order_by": {"name; DROP TABLE experiments"}}, "Could not be parsed"},
			{url.Values{"max_results": {"1"}, "page_token": {"eyJvZmZzZXQiOiAwfQ=="}}, "Invalid page token"},
		} {
			st, out := c.get("/experiments/search", tc.q)
			if msg, _ := out["message"].(string); st != 400 || !strings.Contains(msg, tc.msg) {
				t.Errorf("%v: %d %v; want %q", tc.q, st, out, tc.msg)
			}
		}
	})
}

func fixedClock(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }

func asList(v any) []any { l, _ := v.([]any); return l }
