package tracing

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// BenchmarkSearchTraces measures traces/search (pages of 100) over
// 100,000 traces on SQLite, PostgreSQL and MariaDB one after the other
// (issue 13: ≤ 100 ms server time a page with a tag filter, on each
// database). Times are server time: the request goes through the route
// table to the handler in-process and the JSON answer is read whole. Each
// timed request alternates with the reference, the v3 trace-info get of one
// trace by id (domaintest.TimeRequests); each sub-benchmark reports the
// median and 10th/90th percentiles of its b.N requests. Targets are for
// reading, never asserted.
//
//	go test -run '^$' -bench BenchmarkSearchTraces -benchtime=20x ./metadata/tracing/
func BenchmarkSearchTraces(b *testing.B) {
	const n = 100000
	for _, be := range testdb.All(b) {
		b.Run(be.Name, func(b *testing.B) {
			t0 := time.Now()
			db, exp := seedBenchTraces(b, be.URI, n)
			if err := domaintest.Analyze(db, "trace_info", "trace_tags", "trace_request_metadata"); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: seeded %d traces (2 tags, 2 metadata each) in %s", be.Name, n, time.Since(t0).Round(time.Millisecond))
			app := domaintest.NewClient(&testing.T{}, NewAPI(db, Config{Log: domaintest.Quiet}).Handlers()).App
			ref := domaintest.BenchRequest{Method: "GET", Path: "/api/3.0/mlflow/traces/" + tid(n/2)}
			for _, tc := range []struct{ name, filter, token string }{
				{"all", "", ""},
				{"all/page50", "", wire.PageToken(5000)},
				{"tag", "tags.env = 'prod'", ""},
				{"tag/page50", "tags.env = 'prod'", wire.PageToken(5000)},
				{"metadata", "metadata.user = 'u7'", ""},
				{"status-and-time", fmt.Sprintf("status = 'OK' AND timestamp_ms > %d", n/2), ""},
			} {
				if os.Getenv("FERRY_BENCH_EXPLAIN") != "" {
					explainSearch(b, db, exp, tc.filter, tc.token)
				}
				body := fmt.Sprintf(`{"locations": [{"mlflow_experiment": {"experiment_id": "%d"}}], "filter": %q, "max_results": 100, "page_token": %q}`, exp, tc.filter, tc.token)
				b.Run(tc.name, func(b *testing.B) {
					domaintest.TimeRequests(b, app, ref, func(int) domaintest.BenchRequest {
						return domaintest.BenchRequest{Method: "POST", Path: "/api/3.0/mlflow/traces/search", Body: body}
					})
				})
			}
		})
	}
}

// explainSearch logs the plan of the page's id query (EXPLAIN ANALYZE on
// PostgreSQL, ANALYZE FORMAT=JSON on MariaDB, EXPLAIN QUERY PLAN on
// SQLite) and how long the id query and loading the page's 100 traces take
// on their own, to tell the search from the page fill.
func explainSearch(b *testing.B, db *metadata.DB, exp int64, filter, token string) {
	ctx := context.Background()
	cmp, err := search.ParseTracesFilter(filter)
	if err != nil {
		b.Fatal(err)
	}
	offset, _ := wire.ParsePageToken(token)
	err = db.Read(ctx, func(tx *metadata.Tx) error {
		q, args := search.TracesQuery{Columns: "t.request_id", ExperimentIDs: []int64{exp}, Filter: cmp, Limit: 101, Offset: offset}.Render(tx.Dialect())
		prefix := map[schema.Dialect]string{schema.SQLite: "EXPLAIN QUERY PLAN ", schema.Postgres: "EXPLAIN ANALYZE ", schema.MySQL: "ANALYZE "}[tx.Dialect()]
		var plan []string
		err := tx.Each(ctx, prefix+q, args, func(rows *sql.Rows) error {
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			for i := range vals {
				vals[i] = new(sql.RawBytes)
			}
			if err := rows.Scan(vals...); err != nil {
				return err
			}
			var line []string
			for _, v := range vals {
				line = append(line, string(*v.(*sql.RawBytes)))
			}
			plan = append(plan, strings.Join(line, " | "))
			return nil
		})
		if err != nil {
			return err
		}
		t0 := time.Now()
		var ids []string
		err = tx.Each(ctx, q, args, func(rows *sql.Rows) error {
			var id string
			ids = append(ids, id)
			return rows.Scan(&ids[len(ids)-1])
		})
		if err != nil {
			return err
		}
		tq := time.Since(t0)
		t0 = time.Now()
		if _, err := loadTraces(ctx, tx, ids, true); err != nil {
			return err
		}
		b.Logf("%q page %q: ids %s, load %s\n%s\n%s", filter, token, tq.Round(time.Microsecond), time.Since(t0).Round(time.Microsecond), q, strings.Join(plan, "\n"))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// seedBenchTraces opens the database at uri and writes n traces into one
// experiment with multi-row INSERTs (500 traces a statement, 5,000 a
// transaction): timestamps 0…n-1 ms, execution time i%97 ms, status OK
// (ERROR every 5th), tags env (prod every 10th) and mlflow.traceName
// t0…t6, metadata user u0…u49 and mlflow.trace_schema.version 3.
func seedBenchTraces(b *testing.B, uri string, n int) (*metadata.DB, int64) {
	ctx := context.Background()
	db, err := metadata.Open(ctx, uri, domaintest.Quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var exp int64
	err = db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time, workspace) VALUES ('b', '/tmp/b', 'active', 1, 1, 'default')"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT experiment_id FROM experiments WHERE name = 'b'").Scan(&exp)
	})
	if err != nil {
		b.Fatal(err)
	}
	const stmt, txn = 500, 5000
	for lo := 0; lo < n; lo += txn {
		err := db.Write(ctx, func(tx *metadata.Tx) error {
			k := tx.Dialect().Quote("key")
			for start := lo; start < min(lo+txn, n); start += stmt {
				var infos, kvs []string
				var ia, ta, ma []any
				for i := start; i < min(start+stmt, n); i++ {
					infos = append(infos, "(?, ?, ?, ?, ?)")
					status := "OK"
					if i%5 == 0 {
						status = "ERROR"
					}
					ia = append(ia, tid(i), exp, int64(i), int64(i%97), status)
					kvs = append(kvs, "(?, ?, ?)", "(?, ?, ?)")
					env := "dev"
					if i%10 == 0 {
						env = "prod"
					}
					ta = append(ta, "env", env, tid(i), "mlflow.traceName", fmt.Sprint("t", i%7), tid(i))
					ma = append(ma, "user", fmt.Sprint("u", i%50), tid(i), "mlflow.trace_schema.version", "3", tid(i))
				}
				if _, err := tx.Exec(ctx, "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status) VALUES "+strings.Join(infos, ", "), ia...); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO trace_tags ("+k+", value, request_id) VALUES "+strings.Join(kvs, ", "), ta...); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO trace_request_metadata ("+k+", value, request_id) VALUES "+strings.Join(kvs, ", "), ma...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
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
	db, exp := seedBenchTraces(b, testdb.SQLite(b).URI, 10000)
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
