package registry

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
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
			if err := domaintest.Analyze(db, "registered_models", "registered_model_tags", "model_versions", "model_version_tags", "registered_model_aliases"); err != nil {
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
					domaintest.TimeRequests(b, app, refReq, func(int) domaintest.BenchRequest { return domaintest.BenchRequest{Method: "GET", Path: base + s.path} })
				})
			}
			b.Run("create-version", func(b *testing.B) {
				name := fmt.Sprintf("create-%d", b.N)
				if st, body := domaintest.Call(app, domaintest.BenchRequest{Method: "POST", Path: base + "/registered-models/create", Body: `{"name":"` + name + `"}`}); st != 200 {
					b.Fatal(st, body)
				}
				domaintest.TimeRequests(b, app, refReq, func(int) domaintest.BenchRequest {
					return domaintest.BenchRequest{Method: "POST", Path: base + "/model-versions/create", Body: `{"name":"` + name + `","source":"s3://bucket/models/m","tags":[{"key":"flavor","value":"sklearn"}]}`}
				})
			})
		})
	}
}

// refReq is the reference request timed alternately with every measured
// one (domaintest.TimeRequests): one model by primary key, with its tags,
// alias and latest version.
var refReq = domaintest.BenchRequest{Method: "GET", Path: base + "/registered-models/get?name=model-00001"}

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
