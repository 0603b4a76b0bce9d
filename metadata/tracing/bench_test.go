package tracing

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
)

// BenchmarkSearchTraces measures traces/search (one page of 100) over
// 10,000 traces on SQLite with a tag filter, against the unfiltered
// search in the same run (sub-benchmarks alternate under -count):
//
//	go test -run XXX -bench SearchTraces -count 5 ./metadata/tracing/
func BenchmarkSearchTraces(b *testing.B) {
	db, exp := seedBenchTraces(b, 10000)
	app := domaintest.NewClient(&testing.T{}, NewAPI(db, Config{Log: domaintest.Quiet}).Handlers()).App
	for _, tc := range []struct{ name, filter string }{{"all", ""}, {"tag", "tags.env = 'prod'"}} {
		body := fmt.Sprintf(`{"locations": [{"mlflow_experiment": {"experiment_id": "%d"}}], "filter": %q, "max_results": 100}`, exp, tc.filter)
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/api/3.0/mlflow/traces/search", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := app.Test(req, 60000)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%v %v", err, resp)
				}
				resp.Body.Close()
			}
		})
	}
}

// seedBenchTraces makes a SQLite database with n traces in one experiment:
// timestamps 0…n-1 ms, execution time i%97 ms, status OK (ERROR every
// 5th), tags env (prod every 10th) and mlflow.traceName t0…t6.
func seedBenchTraces(b *testing.B, n int) (*metadata.DB, int64) {
	ctx := context.Background()
	db, err := metadata.Open(ctx, testdb.SQLite(b).URI, domaintest.Quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var exp int64
	err = db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) VALUES ('b', '/tmp/b', 'active', 1, 1, 'default')"); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT experiment_id FROM experiments WHERE name = 'b'").Scan(&exp); err != nil {
			return err
		}
		for start := 0; start < n; start += 100 {
			var infos, tags []string
			var ia, ta []any
			for i := start; i < start+100; i++ {
				infos = append(infos, "(?, ?, ?, ?, ?)")
				status := "OK"
				if i%5 == 0 {
					status = "ERROR"
				}
				ia = append(ia, tid(i), exp, int64(i), int64(i%97), status)
				tags = append(tags, "(?, ?, ?)", "(?, ?, ?)")
				env := "dev"
				if i%10 == 0 {
					env = "prod"
				}
				ta = append(ta, "env", env, tid(i), "mlflow.traceName", fmt.Sprint("t", i%7), tid(i))
			}
			if _, err := tx.Exec(ctx, "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status) VALUES "+strings.Join(infos, ", "), ia...); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO trace_tags ("+tx.Dialect().Quote("key")+", value, request_id) VALUES "+strings.Join(tags, ", "), ta...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return db, exp
}

// BenchmarkTraceAnalytics measures traces/metrics and
// calculate-filter-correlation over 10,000 traces on SQLite, with one
// traces/search page in the same run as the reference (sub-benchmarks
// alternate under -count):
//
//	go test -run XXX -bench TraceAnalytics -count 5 ./metadata/tracing/
func BenchmarkTraceAnalytics(b *testing.B) {
	db, exp := seedBenchTraces(b, 10000)
	app := domaintest.NewClient(&testing.T{}, NewAPI(db, Config{Log: domaintest.Quiet}).Handlers()).App
	e := fmt.Sprintf(`"experiment_ids": ["%d"]`, exp)
	for _, tc := range []struct{ name, path, body string }{
		{"search-page", "traces/search", fmt.Sprintf(`{"locations": [{"mlflow_experiment": {"experiment_id": "%d"}}], "max_results": 100}`, exp)},
		{"count-by-name", "traces/metrics", `{` + e + `, "view_type": "TRACES", "metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}], "dimensions": ["trace_name"]}`},
		{"latency-p50-p99-buckets", "traces/metrics", `{` + e + `, "view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "AVG"}, {"aggregation_type": "PERCENTILE", "percentile_value": 50}, {"aggregation_type": "PERCENTILE", "percentile_value": 99}], "time_interval_seconds": 1, "start_time_ms": 0, "end_time_ms": 10000}`},
		{"correlation", "traces/calculate-filter-correlation", `{` + e + `, "filter_string1": "tags.env = 'prod'", "filter_string2": "status = 'ERROR'"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/api/3.0/mlflow/"+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := app.Test(req, 60000)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%v %v", err, resp)
				}
				resp.Body.Close()
			}
		})
	}
}
