package registry

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/wire"
)

// BenchmarkRegistry measures the registry's searches over 1,000 models ×
// 10 versions (each model with 2 tags and an alias, each version with 2
// tags, plus 100 prompts the searches must leave out) and sequential
// model-versions/create, on SQLite, PostgreSQL and MariaDB one after the
// other (never in parallel: they share the CPU). Times are server time:
// the request goes through the route table to the handler in-process and
// the JSON answer is read whole, without a network hop. Each
// sub-benchmark reports the median and the 10th/90th percentiles of its
// b.N requests (run with -benchtime=Nx); targets (spec: ≤ 50 ms per search,
// create p50 ≤ 2 ms on SQLite) are for reading, never asserted.
//
//	go test -run '^$' -bench BenchmarkRegistry -benchtime=30x ./metadata/registry/
func BenchmarkRegistry(b *testing.B) {
	for _, be := range testdb.All(b) {
		b.Run(be.Name, func(b *testing.B) {
			db, err := metadata.Open(context.Background(), be.URI, domaintest.Quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			start := time.Now()
			if err := seedRegistry(db, 1000, 10, 100); err != nil {
				b.Fatal(err)
			}
			if err := analyze(db); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: seeded 1000 models x 10 versions + 100 prompts in %s", be.Name, time.Since(start).Round(time.Millisecond))
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			routes.All.Mount(app, app, NewAPI(db, Config{Log: domaintest.Quiet}).Handlers(), nil)

			for _, s := range []struct{ name, path string }{
				{"models/max100", "/registered-models/search?max_results=100"},
				{"models/max1000", "/registered-models/search?max_results=1000"},
				{"models/name_like/max100", "/registered-models/search?max_results=100&filter=" + url.QueryEscape("name LIKE 'model-00%'")},
				{"models/tag/max100", "/registered-models/search?max_results=100&filter=" + url.QueryEscape("tags.team = 'team-3'")},
				{"models/tag/max1000", "/registered-models/search?max_results=1000&filter=" + url.QueryEscape("tags.team = 'team-3'")},
				{"models/page5/max100", "/registered-models/search?max_results=100&page_token=" + url.QueryEscape(wire.PageToken(400))},
				{"versions/max100", "/model-versions/search?max_results=100"},
				{"versions/max1000", "/model-versions/search?max_results=1000"},
				{"versions/name_eq/max100", "/model-versions/search?max_results=100&filter=" + url.QueryEscape("name = 'model-00420'")},
				{"versions/tag/max100", "/model-versions/search?max_results=100&filter=" + url.QueryEscape("tags.flavor = 'sklearn'")},
				{"versions/tag/max1000", "/model-versions/search?max_results=1000&filter=" + url.QueryEscape("tags.flavor = 'sklearn'")},
				{"versions/run_id/max100", "/model-versions/search?max_results=100&filter=" + url.QueryEscape("run_id = 'run00420x5'")},
			} {
				b.Run(s.name, func(b *testing.B) {
					timeRequests(b, app, func(int) (string, string, string) { return "GET", base + s.path, "" })
				})
			}
			b.Run("create-version", func(b *testing.B) {
				name := fmt.Sprintf("create-%d", b.N)
				if st, body := call(app, "POST", base+"/registered-models/create", `{"name":"`+name+`"}`); st != 200 {
					b.Fatal(st, body)
				}
				timeRequests(b, app, func(int) (string, string, string) {
					return "POST", base + "/model-versions/create", `{"name":"` + name + `","source":"s3://bucket/models/m","tags":[{"key":"flavor","value":"sklearn"}]}`
				})
			})
		})
	}
}

func call(app *fiber.App, method, path, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := app.Test(req, 60000)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// refPath is the reference request timed alternately with every
// measured one: the cheapest registry read that reaches the database (one
// model by primary key, with its tags, alias and latest version). On a
// shared, loaded machine its time shows how much of a figure is waiting
// for the CPU rather than work.
const refPath = base + "/registered-models/get?name=model-00001"

// timeRequests sends b.N requests (after 2 untimed warm-ups), each right
// after a reference request (refPath), and reports the median and
// 10th/90th percentiles of both in ms.
func timeRequests(b *testing.B, app *fiber.App, req func(i int) (method, path, body string)) {
	for i := 0; i < 2; i++ {
		m, p, body := req(i)
		if st, out := call(app, m, p, body); st != 200 {
			b.Fatal(st, out)
		}
	}
	ds := make([]time.Duration, 0, b.N)
	refs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if st, out := call(app, "GET", refPath, ""); st != 200 {
			b.Fatal(st, out)
		}
		refs = append(refs, time.Since(t0))
		m, p, body := req(i)
		t0 = time.Now()
		st, out := call(app, m, p, body)
		ds = append(ds, time.Since(t0))
		if st != 200 {
			b.Fatal(st, out)
		}
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[int(float64(len(ds)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(ds, 0.5), "ms-p50")
	b.ReportMetric(pct(ds, 0.1), "ms-p10")
	b.ReportMetric(pct(ds, 0.9), "ms-p90")
	b.ReportMetric(pct(refs, 0.5), "ref-ms-p50")
	if os.Getenv("FERRY_BENCH_VERBOSE") != "" {
		b.Logf("%d requests: p50 %.2f ms, p10 %.2f, p90 %.2f, max %.2f; reference p50 %.2f ms", len(ds), pct(ds, 0.5), pct(ds, 0.1), pct(ds, 0.9), pct(ds, 1), pct(refs, 0.5))
	}
}

// seedRegistry writes models × versions model versions straight into the
// tables (the API would take minutes on a shared CPU; the rows are what
// the API writes): model-%05d with tags team=team-<i%10> and owner, alias
// champion → its last version; versions with tags flavor (sklearn for
// even versions) and stage, run ids run<model>x<version>. Then `prompts`
// prompt models with one version each.
func seedRegistry(db *metadata.DB, models, versions, prompts int) error {
	now := time.Now().UnixMilli()
	const batch = 100
	for lo := 0; lo < models+prompts; lo += batch {
		hi := min(lo+batch, models+prompts)
		err := db.Write(context.Background(), func(tx *metadata.Tx) error {
			k := tx.Dialect().Quote("key")
			for i := lo; i < hi; i++ {
				name, nv, isPrompt := fmt.Sprintf("model-%05d", i), versions, false
				if i >= models {
					name, nv, isPrompt = fmt.Sprintf("prompt-%05d", i), 1, true
				}
				if _, err := tx.Exec(context.Background(), "INSERT INTO registered_models (name, creation_time, last_updated_time, description, workspace) VALUES (?, ?, ?, ?, 'default')",
					name, now+int64(i), now+int64(i), "benchmark model"); err != nil {
					return err
				}
				mtags := [][2]string{{"team", fmt.Sprintf("team-%d", i%10)}, {"owner", "bench"}}
				if isPrompt {
					mtags = append(mtags, [2]string{"mlflow.prompt.is_prompt", "true"})
				}
				for _, t := range mtags {
					if _, err := tx.Exec(context.Background(), "INSERT INTO registered_model_tags ("+k+", value, name, workspace) VALUES (?, ?, ?, 'default')", t[0], t[1], name); err != nil {
						return err
					}
				}
				var rows []string
				var args []any
				var trows []string
				var targs []any
				for v := 1; v <= nv; v++ {
					rows = append(rows, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'default')")
					args = append(args, name, v, now+int64(i*nv+v), now+int64(i*nv+v), "None", "s3://bucket/"+name+"/"+fmt.Sprint(v),
						fmt.Sprintf("run%05dx%d", i, v), "READY", "s3://bucket/"+name+"/"+fmt.Sprint(v), "bench")
					flavor := "pytorch"
					if v%2 == 0 {
						flavor = "sklearn"
					}
					trows = append(trows, "(?, ?, ?, ?, 'default')", "(?, ?, ?, ?, 'default')")
					targs = append(targs, "flavor", flavor, name, v, "stage", "candidate", name, v)
				}
				if _, err := tx.Exec(context.Background(), "INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, source, run_id, status, storage_location, user_id, workspace) VALUES "+strings.Join(rows, ", "), args...); err != nil {
					return err
				}
				if _, err := tx.Exec(context.Background(), "INSERT INTO model_version_tags ("+k+", value, name, version, workspace) VALUES "+strings.Join(trows, ", "), targs...); err != nil {
					return err
				}
				if _, err := tx.Exec(context.Background(), "INSERT INTO registered_model_aliases (alias, version, name, workspace) VALUES (?, ?, ?, 'default')", "champion", nv, name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// analyze refreshes planner statistics, as PostgreSQL's autoanalyze and
// InnoDB's persistent statistics do by themselves within a minute of a
// bulk load (see test/bench/tracking). SQLite keeps none by itself.
func analyze(db *metadata.DB) error {
	return db.Write(context.Background(), func(tx *metadata.Tx) error {
		switch tx.Dialect() {
		case schema.Postgres:
			_, err := tx.Exec(context.Background(), "ANALYZE")
			return err
		case schema.MySQL:
			_, err := tx.Exec(context.Background(), "ANALYZE TABLE registered_models, registered_model_tags, model_versions, model_version_tags, registered_model_aliases")
			return err
		}
		return nil
	})
}
