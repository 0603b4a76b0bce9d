package search

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata/schema"
)

func renderTraces(t *testing.T, input string, f []Comparison, ob []OrderBy) {
	t.Helper()
	for _, d := range []schema.Dialect{schema.SQLite, schema.Postgres, schema.MySQL} {
		q, args := TracesQuery{Columns: "t.request_id", ExperimentIDs: []int64{1, 2}, Filter: f, OrderBy: ob, Limit: 10, Offset: 5}.Render(d)
		checkSQL(t, input, q, args)
	}
}

var traceSeeds = []string{
	"tags.env = 'prod' AND metadata.`mlflow.sourceRun` = 'r'", "feedback.quality = 'yes'", "expectation.a IS NULL",
	"tags.x IS NOT NULL", "timestamp_ms > 5 AND execution_time <= 3", "status IN ('OK', 'ERROR')", "trace_id NOT IN ('a')",
	"prompt = 'qa/1'", "issue.id = 'iss-1'", "span.name LIKE 'x%'", "name ILIKE 'p%'", "run_id = 'r'",
	"tags.x = 'a'' OR 1=1 --'", "tags.`x'; DROP TABLE trace_info; --` = 'v'", "feedback.`q\"` = 5",
	"prompt = 'a%_!/1'", "timestamp_ms DESC", "request_id", "tags.x = 'a' OR tags.y = 'b'",
}

// TestTraceFilters: every comparator of the grammar parses and renders to
// SQL made only of Ferry's words; hostile text stays in the arguments.
func TestTraceFilters(t *testing.T) {
	for _, s := range traceSeeds {
		c, err := ParseTracesFilter(s)
		if err != nil {
			if strings.Contains(s, " OR ") || strings.HasSuffix(s, "DESC") || s == "request_id" {
				continue
			}
			t.Fatalf("%q: %v", s, err)
		}
		renderTraces(t, s, c, nil)
	}
	ob, err := ParseTracesOrderBy([]string{"timestamp DESC", "execution_time_ms", "status ASC", "trace_id desc"})
	if err != nil {
		t.Fatal(err)
	}
	renderTraces(t, "order", nil, ob)
	q, _ := TracesQuery{Columns: "t.request_id", ExperimentIDs: []int64{1}, OrderBy: ob}.Render(schema.SQLite)
	if !strings.Contains(q, "ORDER BY t.timestamp_ms DESC, t.execution_time_ms, t.status, t.request_id DESC LIMIT") {
		t.Errorf("order by: %s", q)
	}
	q, args := TracesQuery{Columns: "t.request_id", ExperimentIDs: []int64{1}}.Render(schema.SQLite)
	if !strings.Contains(q, "ORDER BY t.timestamp_ms DESC, t.request_id LIMIT") || len(args) != 3 {
		t.Errorf("default order: %s %v", q, args)
	}
	// The prompt pattern escapes LIKE wildcards in the name.
	c, _ := ParseTracesFilter("prompt = 'a%_!/1'")
	_, args = TracesQuery{Columns: "t.request_id", ExperimentIDs: []int64{1}, Filter: c}.Render(schema.Postgres)
	found := false
	for _, a := range args {
		if a == `%{"name": "a!%!_!!", "version": "1"}%` {
			found = true
		}
	}
	if !found {
		t.Errorf("prompt pattern args %v", args)
	}
}

func FuzzTraceFilter(f *testing.F) {
	for _, s := range append(traceSeeds, hostile...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := ParseTracesFilter(s); err == nil {
			renderTraces(t, s, c, nil)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("%q: error type %T", s, err)
		}
		if ob, err := ParseTracesOrderBy([]string{s}); err == nil {
			renderTraces(t, s, nil, ob)
		}
	})
}
