package search

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata/schema"
)

func TestParseRunsFilter(t *testing.T) {
	str := func(s string) Value { return Value{Kind: VString, Str: s} }
	num := func(f float64) Value { return Value{Kind: VNumber, Num: f} }
	cases := []struct {
		in   string
		want []Comparison
	}{
		{"", nil},
		{"   ", nil},
		{"metrics.acc > 0.9", []Comparison{{Metric, "acc", ">", num(0.9)}}},
		{"metric.acc>=-1e3 and params.lr = '0.1' AND tags.`mlflow.runName` != \"x y\"", []Comparison{
			{Metric, "acc", ">=", num(-1000)}, {Param, "lr", "=", str("0.1")}, {Tag, "mlflow.runName", "!=", str("x y")}}},
		{`metrics."my metric" < 3`, []Comparison{{Metric, "my metric", "<", num(3)}}},
		{"parameters.a like '%x%' AND param.b ILIKE 'Y%'", []Comparison{{Param, "a", "LIKE", str("%x%")}, {Param, "b", "ILIKE", str("Y%")}}},
		{"attributes.run_id IN ('abc', 'DEF', 'a1') AND run.status NOT IN ('FAILED')", []Comparison{
			{Attribute, "run_id", "IN", Value{Kind: VList, List: []string{"abc", "a1"}}},
			{Attribute, "status", "NOT IN", Value{Kind: VString}}}},
		{"start_time >= 1700000000000 AND created < 5 AND `Run Name` = 'r'", []Comparison{
			{Attribute, "start_time", ">=", num(1700000000000)}, {Attribute, "created", "<", num(5)}, {Attribute, "Run Name", "=", str("r")}}},
		{"params.lr IS NULL AND tags.`x` IS NOT NULL", []Comparison{
			{Param, "lr", "IS NULL", Value{Kind: VNull}}, {Tag, "x", "IS NOT NULL", Value{Kind: VNull}}}},
		{"datasets.name IN ('a','b') AND dataset.context = 'train'", []Comparison{
			{Dataset, "name", "IN", Value{Kind: VList, List: []string{"a", "b"}}}, {Dataset, "context", "=", str("train")}}},
		{"tags.x = 'it''s'", []Comparison{{Tag, "x", "=", str("it''s")}}},
	}
	for _, c := range cases {
		got, err := ParseRunsFilter(c.in)
		if strings.Contains(c.in, "NOT IN ('FAILED')") {
			// status does not take a list.
			if err == nil || err.Error() != "Only the 'run_id' attribute supports comparison with a list of quoted string values." {
				t.Errorf("%q: %v", c.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	cases := []struct{ in, msg string }{
		{"metric.acc >= 0.94; metrics.rmse < 1", "Search filter contained multiple expression 'metric.acc >= 0.94; metrics.rmse < 1'. Provide AND-ed expression list."},
		{"m.acc >= 0.94", "Invalid entity type 'm'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"},
		{"acc >= 0.94", "Invalid attribute key 'acc' specified. Valid keys are '{'Created', 'Run Name', 'Run name', 'artifact_uri', 'created', 'end_time', 'run name', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"},
		{"metrics.A > 0.1 OR params.B = 'LR'", "Invalid clause(s) in filter string: 'OR'"},
		{"(metrics.A > 0.1)", "Invalid clause(s) in filter string: '(', ')'"},
		{"NOT metrics.A > 0.1", "Invalid clause(s) in filter string: 'NOT'"},
		{"attribute.status = true", "Invalid clause(s) in filter string: 'attribute.status', '=', 'true'"},
		{"dataset.status = 'true'", "Invalid dataset key 'status' specified. Valid keys are '{'name', 'digest', 'context'}'"},
		{"metrics.acc IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'acc'"},
		{"metric.model = 'LR'", "Expected numeric value type for metric. Found 'LR'"},
		{"params.acc = 5", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 5"},
		{"attribute.status = 1", "Expected a quoted string value for attributes. Got value 1"},
		{"attributes.start_time = 'now'", "Expected numeric value type for numeric attribute: start_time. Found 'now'"},
		{"params.acc = LR", "Parameter value is either not quoted or unidentified quote types used for string value LR. Use either single or double quotes."},
		{"1=1", "Invalid comparison clause. Expected 'Identifier' found '1'"},
		{"run_name IN ('a')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
		{"run_id IN ()", "While parsing a list in the query, expected a non-empty list of string values, but got empty list"},
		{"run_id IN ('a', 1)", "While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: ('a', 1)"},
		{"metrics.a LIKE 1", "Invalid comparator 'LIKE' not one of '{'>', '>=', '!=', '=', '<', '<='}"},
		{"params.a > 'x'", "Invalid comparator '>' not one of '{'!=', '=', 'LIKE', 'ILIKE'}'"},
		{"tags.a < 'x'", "Invalid comparator '<' not one of '{'!=', '=', 'LIKE', 'ILIKE'}"},
		{"status > 'x'", "Invalid comparator '>' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'"},
		{"end_time LIKE 1", "Invalid comparator 'LIKE' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}"},
		{"tags.x = 'unbalanced", "Invalid clause(s) in filter string: 'tags.x', '=', ''unbalanced'"},
		{"tags.`x = 'a'", "Invalid clause(s) in filter string: 'tags.`x = 'a''"},
		{"metrics.a <> 1", "Invalid comparator '<>' not one of '{'>', '>=', '!=', '=', '<', '<='}"},
	}
	for _, c := range cases {
		_, err := ParseRunsFilter(c.in)
		if err == nil || err.Error() != c.msg {
			t.Errorf("%q:\n got %v\nwant %s", c.in, err, c.msg)
		}
	}
}

func TestExperimentsFilter(t *testing.T) {
	got, err := ParseExperimentsFilter("name ILIKE 'exp%' AND tags.a = '1' AND creation_time > 5 AND tag.`b c` IS NOT NULL")
	want := []Comparison{
		{Attribute, "name", "ILIKE", Value{Kind: VString, Str: "exp%"}},
		{Tag, "a", "=", Value{Kind: VString, Str: "1"}},
		{Attribute, "creation_time", ">", Value{Kind: VNumber, Num: 5}},
		{Tag, "b c", "IS NOT NULL", Value{Kind: VNull}},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v", got, err)
	}
	errs := []struct{ in, msg string }{
		{"name IS NULL", "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"},
		{"params.a = 'x'", "Invalid entity type 'params'. Valid entity types are ('attribute', 'tag', 'tags')"},
		{"foo = 'x'", "Invalid attribute key 'foo' specified. Valid keys are '{'creation_time', 'last_update_time', 'name'}'"},
		{"name IN ('a')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
		{"tags.a > 'x'", "Invalid comparator for tag: >"},
		{"name > 'x'", "Invalid comparator '>' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'"},
		{"name = 'a' OR name = 'b'", "Invalid clause(s) in filter string: OR"},
	}
	for _, c := range errs {
		_, err := ParseExperimentsFilter(c.in)
		if err == nil || err.Error() != c.msg {
			t.Errorf("%q:\n got %v\nwant %s", c.in, err, c.msg)
		}
	}
}

func TestOrderBy(t *testing.T) {
	cases := []struct {
		in   string
		want OrderBy
	}{
		{"metrics.acc", OrderBy{Metric, "acc", true}},
		{"metrics.`my metric` DESC", OrderBy{Metric, "my metric", false}},
		{"params.lr asc", OrderBy{Param, "lr", true}},
		{"created desc", OrderBy{Attribute, "created", false}},
		{"attributes.run_name", OrderBy{Attribute, "run_name", true}},
		{`tags."a b"`, OrderBy{Tag, "a b", true}},
	}
	for _, c := range cases {
		got, err := ParseRunsOrderBy(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v", c.in, got, err)
		}
	}
	errs := []struct{ in, msg string }{
		{"metrics.acc DESC x", "Invalid order_by clause 'metrics.acc DESC x'. Could not be parsed."},
		{"metrics.acc sideways", "Invalid ordering key in order_by clause 'metrics.acc sideways'."},
		{"", "Invalid order_by clause ''. Could not be parsed."},
		{"'x'", "Invalid order_by clause ''x''. Could not be parsed."},
		{"foo", "Invalid attribute key 'foo' specified. Valid keys are '{'Created', 'artifact_uri', 'created', 'end_time', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"},
		{"x; DROP TABLE runs", "Invalid order_by clause 'x; DROP TABLE runs'. Could not be parsed."},
	}
	for _, c := range errs {
		_, err := ParseRunsOrderBy(c.in)
		if err == nil || err.Error() != c.msg {
			t.Errorf("%q:\n got %v\nwant %s", c.in, err, c.msg)
		}
	}
	if _, err := ParseRunsOrderByList([]string{"start_time", "created DESC"}); err == nil ||
		err.Error() != "`order_by` contains duplicate fields: ['start_time', 'created DESC']" {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := ParseExperimentsOrderBy("tags.a"); err == nil || err.Error() != "Invalid order_by entity: tag" {
		t.Errorf("experiment tag order: %v", err)
	}
}

// sqlWord is an identifier-like word in rendered SQL.
var sqlWord = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// allowedWords is every word the renderers may emit: SQL keywords,
// table and column names, aliases (checked separately) and functions.
var allowedWords = set("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "EXISTS", "IN", "LIKE", "ILIKE",
	"LOWER", "BINARY", "IS", "NULL", "CASE", "WHEN", "THEN", "ELSE", "END", "ORDER", "BY", "DESC",
	"LIMIT", "OFFSET", "LEFT", "JOIN", "ON",
	"runs", "run_uuid", "name", "user_id", "status", "start_time", "end_time", "artifact_uri", "lifecycle_stage", "experiment_id",
	"latest_metrics", "params", "tags", "key", "value", "is_nan", "inputs", "datasets", "input_tags", "input_uuid",
	"destination_id", "source_id", "dataset_uuid", "digest",
	"experiments", "experiment_tags", "workspace", "creation_time", "last_update_time", "cols",
	"logged_models", "logged_model_metrics", "logged_model_params", "logged_model_tags", "model_id", "model_type",
	"source_run_id", "creation_timestamp_ms", "last_updated_timestamp_ms", "metric_name", "metric_value",
	"metric_timestamp_ms", "metric_step", "run_id", "dataset_name", "dataset_digest", "param_key", "param_value",
	"tag_key", "tag_value",
	// traces (traces.go)
	"t", "trace_info", "request_id", "timestamp_ms", "execution_time_ms", "client_request_id", "trace_tags",
	"trace_request_metadata", "assessments", "assessment_type", "trace_id", "spans", "type", "entity_associations",
	"source_type", "destination_type", "ESCAPE")

var aliasWord = regexp.MustCompile(`^[fdto][0-9]+$`)

// checkSQL asserts that rendered SQL is made only of Ferry's own text.
func checkSQL(t *testing.T, input, q string, args []any) {
	t.Helper()
	if strings.ContainsAny(q, `'";\`) || strings.Contains(q, "--") || strings.Contains(q, "/*") {
		t.Fatalf("filter %q: SQL has quote/comment characters: %s", input, q)
	}
	for _, w := range sqlWord.FindAllString(q, -1) {
		if !allowedWords[w] && !aliasWord.MatchString(w) {
			t.Fatalf("filter %q: SQL has foreign word %q: %s", input, w, q)
		}
	}
	if n := strings.Count(q, "?"); n != len(args) {
		t.Fatalf("filter %q: %d placeholders, %d args: %s", input, n, len(args), q)
	}
}

func renderAll(t *testing.T, input string, f []Comparison, ob []OrderBy, exp bool) {
	t.Helper()
	for _, d := range []schema.Dialect{schema.SQLite, schema.Postgres, schema.MySQL} {
		if exp {
			var eob []OrderBy
			q, args := ExperimentsQuery{Columns: "cols", Stages: []string{"active"}, Filter: f, OrderBy: eob, Limit: 10}.Render(d)
			checkSQL(t, input, q, args)
			continue
		}
		q, args, err := RunsQuery{Columns: "cols", ExperimentIDs: []int64{1, 2}, Stages: []string{"active"}, Filter: f, OrderBy: ob, Limit: 10, Offset: 5}.Render(d)
		if err != nil {
			t.Fatalf("%q: %v", input, err)
		}
		checkSQL(t, input, q, args)
	}
}

// hostileDatasets are logged-models/search datasets with SQL text in them.
var hostileDatasets = []LoggedModelDataset{
	{Name: "ds' OR '1'='1", Digest: ""},
	{Name: "ds", Digest: "d'; DROP TABLE logged_models; --"},
	{Name: "%", Digest: "_"},
}

// renderLoggedModels renders a logged-models query on every dialect, with
// and without datasets, and checks the SQL.
func renderLoggedModels(t *testing.T, input string, f []Comparison, ob []LoggedModelOrder) {
	t.Helper()
	for _, d := range []schema.Dialect{schema.SQLite, schema.Postgres, schema.MySQL} {
		for _, ds := range [][]LoggedModelDataset{nil, hostileDatasets[:1], hostileDatasets} {
			q, args := LoggedModelsQuery{Columns: "cols", ExperimentIDs: []int64{1, 2}, Filter: f, Datasets: ds, OrderBy: ob, Limit: 10, Offset: 5}.Render(d)
			checkSQL(t, input, q, args)
		}
	}
}

// loggedModelOrders turns an order_by field into the order entries the
// handler can build from it (with hostile dataset names and digests).
func loggedModelOrders(field string) []LoggedModelOrder {
	ob, err := ParseLoggedModelOrder(field, false)
	if err != nil {
		return nil
	}
	named, digest := ob, ob
	named.Asc, named.DatasetName, named.DatasetDigest = true, "x' OR 1=1 --", `d\`
	digest.DatasetDigest = "`; --"
	return []LoggedModelOrder{ob, named, digest}
}

var hostile = []string{
	"tags.x = 'a'' OR 1=1 --'",
	"params.`x'; DROP TABLE runs; --` = 'v'",
	`params."a"" OR ""1""=""1" = 'v'`,
	"metrics.`k` > 1 AND tags.\"k\" LIKE '%'' UNION SELECT * FROM experiments --'",
	"run_id IN ('a'' OR 1=1', 'b')",
	"datasets.context ILIKE '%\\' OR 1=1 --'",
	"attributes.status = 'x' /* c */",
	"tags.`a` = 'b'; DELETE FROM runs",
	"tags.`\x00` = '\x00'",
	strings.Repeat("metrics.a > 1 AND ", 99) + "metrics.a > 1",
	strings.Repeat("(", 10000),
	strings.Repeat("'", 10001),
	"tags.x = '" + strings.Repeat("a", 60000) + "'",
}

func TestHostileFilters(t *testing.T) {
	for _, h := range hostile {
		f, err := ParseRunsFilter(h)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Errorf("%q: %T", h, err)
			}
			continue
		}
		renderAll(t, h, f, nil, false)
	}
	long := strings.Repeat("metrics.a > 1 AND ", 100) + "metrics.a > 1"
	if _, err := ParseRunsFilter(long); err == nil || !strings.Contains(err.Error(), "too many clauses") {
		t.Errorf("101 clauses: %v", err)
	}
	if _, err := ParseRunsFilter("tags.x = '" + strings.Repeat("a", MaxFilterLength) + "'"); err == nil {
		t.Error("oversized filter accepted")
	}
	// Hostile order_by entries.
	for _, o := range []string{"metrics.`a; DROP TABLE runs` DESC", "params.\"x' --\"", "tags.`a`` b`"} {
		ob, err := ParseRunsOrderBy(o)
		if err != nil {
			t.Fatalf("%q: %v", o, err)
		}
		renderAll(t, o, nil, []OrderBy{ob}, false)
	}
	// The logged-model renderer, with datasets and dataset order_by entries.
	for _, h := range append(hostile, "metrics.`a' OR 1=1` > 1 AND params.p = 'x''y' AND tags.t LIKE '%'", "status = 'LOGGED_MODEL_READY'") {
		f, err := ParseLoggedModelsFilter(h)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Errorf("%q: %T", h, err)
			}
			continue
		}
		renderLoggedModels(t, h, f, nil)
	}
	for _, o := range []string{"metrics.x' OR '1'='1", "metrics.a; DROP TABLE logged_models", "name", "creation_time"} {
		obs := loggedModelOrders(o)
		if obs == nil {
			t.Fatalf("%q: not an order field", o)
		}
		renderLoggedModels(t, o, nil, obs)
	}
}

// TestLoggedModelsDatasetsSQL pins where the datasets conditions go.
func TestLoggedModelsDatasetsSQL(t *testing.T) {
	metric := []Comparison{{Metric, "acc", ">", Value{Kind: VNumber, Num: 0.5}}}
	ds := []LoggedModelDataset{{Name: "a", Digest: "d1"}, {Name: "b"}}
	q, args := LoggedModelsQuery{Columns: "cols", ExperimentIDs: []int64{1}, Filter: metric, Datasets: ds, Limit: 1}.Render(schema.Postgres)
	want := "SELECT cols FROM logged_models WHERE logged_models.experiment_id IN (?) AND logged_models.lifecycle_stage = ? AND " +
		"EXISTS (SELECT 1 FROM logged_model_metrics f1 WHERE f1.model_id = logged_models.model_id AND f1.metric_name = ? AND f1.metric_value > ? AND " +
		"((f1.dataset_name = ? AND f1.dataset_digest = ?) OR (f1.dataset_name = ? AND f1.dataset_digest IS NULL))) " +
		"ORDER BY logged_models.creation_timestamp_ms DESC, logged_models.model_id LIMIT 1 OFFSET 0"
	if q != want || !reflect.DeepEqual(args, []any{int64(1), "active", "acc", 0.5, "a", "d1", "b"}) {
		t.Errorf("metric filter with datasets:\n got %s %v\nwant %s", q, args, want)
	}
	// Without a metric comparison: any metric on one of the datasets.
	q, _ = LoggedModelsQuery{Columns: "cols", ExperimentIDs: []int64{1}, Datasets: ds[1:], Limit: 1}.Render(schema.SQLite)
	if !strings.Contains(q, " AND EXISTS (SELECT 1 FROM logged_model_metrics f1 WHERE f1.model_id = logged_models.model_id AND ((f1.dataset_name = ? AND f1.dataset_digest IS NULL))) ORDER BY") {
		t.Errorf("datasets only: %s", q)
	}
	// A metric comparison carries the datasets; no extra EXISTS.
	q, _ = LoggedModelsQuery{Columns: "cols", ExperimentIDs: []int64{1}, Filter: metric, Datasets: ds, Limit: 1}.Render(schema.MySQL)
	if strings.Count(q, "EXISTS") != 1 || !strings.Contains(q, "BINARY f1.dataset_name = ?") {
		t.Errorf("mysql: %s", q)
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range hostile[:9] {
		f.Add(s)
	}
	for _, s := range []string{"metrics.acc > 0.9 AND params.lr = '0.1'", "tags.`a b` IS NOT NULL", "run_id NOT IN ('a','b')",
		"datasets.digest LIKE 'x%'", "name ILIKE 'e%' AND tags.k != 'v'", "created >= 1 AND `Run name` = \"x\"",
		"metrics.\"m\" DESC", "1=1", "a.b.c = 'x'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := ParseRunsFilter(s); err == nil {
			renderAll(t, s, c, nil, false)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("%q: error type %T", s, err)
		}
		if c, err := ParseExperimentsFilter(s); err == nil {
			renderAll(t, s, c, nil, true)
		}
		if ob, err := ParseRunsOrderBy(s); err == nil {
			renderAll(t, s, nil, []OrderBy{ob}, false)
		}
		if c, err := ParseLoggedModelsFilter(s); err == nil {
			renderLoggedModels(t, s, c, nil)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("%q: error type %T", s, err)
		}
		if obs := loggedModelOrders(s); obs != nil {
			renderLoggedModels(t, s, nil, obs)
		}
		if ob, err := ParseExperimentsOrderBy(s); err == nil {
			for _, d := range []schema.Dialect{schema.SQLite, schema.Postgres, schema.MySQL} {
				q, args := ExperimentsQuery{Columns: "cols", Stages: []string{"active"}, OrderBy: []OrderBy{ob}, Limit: 1}.Render(d)
				checkSQL(t, s, q, args)
			}
		}
	})
}
