package registry

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

func names(list any, field string) string {
	l, _ := list.([]any)
	var out []string
	for _, x := range l {
		m := x.(map[string]any)
		s := m[field].(string)
		if field == "version" {
			s = m["name"].(string) + "/" + s
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

func TestSearchRegisteredModels(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		for _, n := range []string{"beta", "Alpha", "alpha-2", "gamma"} {
			c.ok("POST", "/registered-models/create", `{"name":"`+n+`","tags":[{"key":"team","value":"`+map[bool]string{true: "core", false: "ml"}[strings.HasPrefix(n, "a") || n == "Alpha"]+`"}]}`)
		}
		c.ok("POST", "/registered-models/create", `{"name":"prompt1","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"}]}`)
		cases := []struct{ filter, order, want string }{
			{"", "", "Alpha,alpha-2,beta,gamma"},
			{"name = 'beta'", "", "beta"},
			{"name = 'BETA'", "", ""},
			{"name != 'beta'", "", "Alpha,alpha-2,gamma"},
			{"name LIKE 'alpha%'", "", "alpha-2"},
			{"name ILIKE 'alpha%'", "", "Alpha,alpha-2"},
			{"tags.team = 'core'", "", "Alpha,alpha-2"},
			{"tags.team = 'core' AND name LIKE '%2'", "", "alpha-2"},
			{"tags.`mlflow.prompt.is_prompt` = 'true'", "", "prompt1"},
			{"", "name DESC", "gamma,beta,alpha-2,Alpha"},
			{"name = 'x'' OR 1=1 --'", "", ""},
		}
		for _, tc := range cases {
			args := []string{"filter", tc.filter}
			if tc.order != "" {
				args = append(args, "order_by", tc.order)
			}
			out := c.ok("GET", "/registered-models/search", q(args...))
			if got := names(out["registered_models"], "name"); got != tc.want {
				t.Errorf("filter %q order %q: %q, want %q", tc.filter, tc.order, got, tc.want)
			}
		}
		// timestamp orders by last update: touch beta last, in a later
		// millisecond than every create.
		time.Sleep(5 * time.Millisecond)
		c.ok("PATCH", "/registered-models/update", `{"name":"beta","description":"x"}`)
		out := c.ok("GET", "/registered-models/search", q("order_by", "timestamp DESC", "max_results", "1"))
		if got := names(out["registered_models"], "name"); got != "beta" {
			t.Errorf("timestamp DESC: %q", got)
		}
		// results carry tags, aliases and latest versions (batch-loaded)
		c.ok("POST", "/model-versions/create", `{"name":"gamma","source":"s3://g/1","tags":[{"key":"vk","value":"vv"}]}`)
		c.ok("POST", "/registered-models/alias", `{"name":"gamma","alias":"prod","version":"1"}`)
		out = c.ok("GET", "/registered-models/search", q("filter", "name LIKE '%a'"))
		if got := js(out["registered_models"]); !strings.Contains(got, `"aliases":[{"alias":"prod","version":"1"}]`) ||
			!strings.Contains(got, `"latest_versions":[{"aliases":["prod"]`) || !strings.Contains(got, `"tags":[{"key":"vk","value":"vv"}]`) ||
			!strings.Contains(got, `"tags":[{"key":"team","value":"ml"}]`) || !strings.Contains(got, `"aliases":["prod"]`) {
			t.Errorf("search result entities: %s", got)
		}
		// paging
		var all []string
		token := ""
		for i := 0; i < 5; i++ {
			args := []string{"max_results", "3"}
			if token != "" {
				args = append(args, "page_token", token)
			}
			out := c.ok("GET", "/registered-models/search", q(args...))
			all = append(all, names(out["registered_models"], "name"))
			token, _ = out["next_page_token"].(string)
			if token == "" {
				break
			}
		}
		if strings.Join(all, "|") != "Alpha,alpha-2,beta|gamma" {
			t.Errorf("pages: %v", all)
		}
		for _, bad := range []string{
			q("filter", "name IS NULL"), q("filter", "name IN ('a')"), q("filter", "foo = 'a'"),
			q("filter", "name > 'a'"), q("filter", "name = 'a' OR name = 'b'"), q("order_by", "bogus"),
			q("max_results", "1001"), q("max_results", "0"), q("page_token", "@@"),
		} {
			if st, out := c.call("GET", "/registered-models/search", bad); st != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" {
				t.Errorf("%s: %d %v", bad, st, out)
			}
		}
	})
}

func TestSearchModelVersions(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"a"}`)
		c.ok("POST", "/registered-models/create", `{"name":"b"}`)
		c.ok("POST", "/model-versions/create", `{"name":"a","source":"s3://x/1","run_id":"r1","tags":[{"key":"k","value":"v1"}]}`)
		c.ok("POST", "/model-versions/create", `{"name":"a","source":"s3://x/2","run_id":"r2"}`)
		c.ok("POST", "/model-versions/create", `{"name":"b","source":"s3://y/1","run_id":"r1","tags":[{"key":"k","value":"v2"}]}`)
		c.ok("POST", "/model-versions/create", `{"name":"b","source":"s3://y/2","run_id":"r3"}`)
		c.ok("DELETE", "/model-versions/delete", `{"name":"b","version":"2"}`)
		cases := []struct{ filter, order, want string }{
			{"name = 'a'", "version_number ASC", "a/1,a/2"},
			{"version_number > 1", "name", "a/2"},
			{"run_id = 'r1'", "name", "a/1,b/1"},
			{"run_id IN ('r2', 'r3')", "", "a/2"},
			{"source_path LIKE 's3://y/%'", "", "b/1"},
			{"tags.k = 'v2'", "", "b/1"},
			{"tags.k LIKE 'v%'", "name", "a/1,b/1"},
			{"name = 'a' AND version_number = 2", "", "a/2"},
			{"", "name ASC", "a/2,a/1,b/1"},
		}
		for _, tc := range cases {
			args := []string{"filter", tc.filter}
			if tc.order != "" {
				args = append(args, "order_by", tc.order)
			}
			out := c.ok("GET", "/model-versions/search", q(args...))
			if got := names(out["model_versions"], "version"); got != tc.want {
				t.Errorf("filter %q order %q: %q, want %q", tc.filter, tc.order, got, tc.want)
			}
		}
		out := c.ok("GET", "/model-versions/search", q("filter", "run_id = 'r1'", "order_by", "name"))
		if got := js(out["model_versions"]); !strings.Contains(got, `"tags":[{"key":"k","value":"v1"}]`) || !strings.Contains(got, `"tags":[{"key":"k","value":"v2"}]`) {
			t.Errorf("version tags in search: %s", got)
		}
		out = c.ok("GET", "/model-versions/search", q("filter", "name='a'", "max_results", "1", "order_by", "version_number"))
		if names(out["model_versions"], "version") != "a/1" || out["next_page_token"] == nil {
			t.Errorf("page 1: %v", out)
		}
		out = c.ok("GET", "/model-versions/search", q("filter", "name='a'", "max_results", "1", "order_by", "version_number", "page_token", out["next_page_token"].(string)))
		if names(out["model_versions"], "version") != "a/2" || out["next_page_token"] != nil {
			t.Errorf("page 2: %v", out)
		}
		for _, bad := range []string{
			q("filter", "version_number = 'x'"), q("filter", "name IN ('a')"), q("filter", "tags.k IS NULL"),
			q("max_results", "200001"), q("order_by", "run_id"),
		} {
			if st, out := c.call("GET", "/model-versions/search", bad); st != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" {
				t.Errorf("%s: %d %v", bad, st, out)
			}
		}
	})
}
