// Command tracking benchmarks Ferry's tracking API over real HTTP against
// an in-process API (metadata.Open + NewAPI + Register on a fiber app
// listening on 127.0.0.1:0) on a fresh database:
//
//   - sequential runs/log-metric: p50 and p99 latency over -calls calls
//     (after 100 warm-up calls);
//   - one runs/log-batch of 1000 metrics (median of -reps batches);
//   - runs/search over -runs runs with a metric filter and an order_by,
//     with max_results 100 (the UI's page) and 1000 (the client's
//     default), median of -reps;
//   - metrics/get-history of -points points of one metric, read as the
//     client does (max_results=25000, following page tokens) and in one
//     request, median of -reps.
//
// Targets are printed beside the figures as PASS/MISS; a MISS never
// changes the exit status (only a failed request or setup does).
//
// Usage, from the repository root:
//
//	go run ./test/bench/tracking -db sqlite
//	go run ./test/bench/tracking -db postgres
//
// PostgreSQL and MySQL databases are created on the servers named by
// FERRY_TEST_PG_ADMIN / FERRY_TEST_MYSQL_ADMIN (defaults: postgres@
// 127.0.0.1:5432 and root@127.0.0.1:3306, as the metadata tests use) and
// dropped at the end.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/gofiber/fiber/v2"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/tracking"
	"github.com/ferryml/ferry/routes"
)

var keepDB bool

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	dbKind := flag.String("db", "sqlite", "database: sqlite, postgres or mysql")
	calls := flag.Int("calls", 2000, "sequential log-metric calls")
	nRuns := flag.Int("runs", 10000, "runs to search over")
	points := flag.Int("points", 100000, "points in the metric history")
	reps := flag.Int("reps", 7, "repetitions of the batch, search and history measurements")
	keep := flag.Bool("keep", false, "keep the database afterwards (for EXPLAIN) and print its URI")
	flag.Parse()
	keepDB = *keep
	if err := run(*dbKind, *calls, *nRuns, *points, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// refreshStats is what PostgreSQL's autovacuum (autoanalyze) and InnoDB's
// persistent statistics do on their own within about a minute of a bulk
// load in a running deployment. The benchmark seeds 10,000 runs and
// searches seconds later, before that has happened; without fresh
// statistics PostgreSQL estimates one row per table and plans nested
// loops, a state a serving database is never in for long. SQLite keeps no
// automatic statistics and Ferry does not run ANALYZE for it, so it is
// left alone.
func refreshStats(kind, name string) error {
	switch kind {
	case "postgres", "postgresql":
		u, err := url.Parse(env("FERRY_TEST_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"))
		if err != nil {
			return err
		}
		u.Path = "/" + name
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec("ANALYZE")
		return err
	case "mysql":
		cfg, err := mysql.ParseDSN(env("FERRY_TEST_MYSQL_ADMIN", "root@tcp(127.0.0.1:3306)/"))
		if err != nil {
			return err
		}
		cfg.DBName = name
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec("ANALYZE TABLE runs, latest_metrics, params, tags, experiments")
		return err
	}
	return nil
}

// databaseWithStats creates a fresh database and returns its MLflow URI, a
// function dropping it and one refreshing its planner statistics.
func databaseWithStats(kind string) (string, func(), func() error, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ferry_bench_" + hex.EncodeToString(b[:])
	switch kind {
	case "sqlite":
		dir, err := os.MkdirTemp("", "ferry-bench-")
		if err != nil {
			return "", nil, nil, err
		}
		return "sqlite:///" + filepath.Join(dir, "mlflow.db"), func() { os.RemoveAll(dir) }, func() error { return nil }, nil
	case "postgres", "postgresql":
		admin, err := sql.Open("pgx", env("FERRY_TEST_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"))
		if err != nil {
			return "", nil, nil, err
		}
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			return "", nil, nil, fmt.Errorf("create PostgreSQL database: %w", err)
		}
		return "postgresql://postgres@127.0.0.1:5432/" + name + "?sslmode=disable", func() {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}, func() error { return refreshStats(kind, name) }, nil
	case "mysql":
		admin, err := sql.Open("mysql", env("FERRY_TEST_MYSQL_ADMIN", "root@tcp(127.0.0.1:3306)/"))
		if err != nil {
			return "", nil, nil, err
		}
		if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
			return "", nil, nil, fmt.Errorf("create MySQL database: %w", err)
		}
		return "mysql://root@127.0.0.1:3306/" + name + "?charset=utf8mb4", func() {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name)
			admin.Close()
		}, func() error { return refreshStats(kind, name) }, nil
	}
	return "", nil, nil, fmt.Errorf("unknown -db %q (sqlite, postgres, mysql)", kind)
}

type client struct {
	base string
	hc   *http.Client
}

func (c *client) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type row struct {
	what, value, target, verdict string
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func verdict(d, target time.Duration) string {
	if d <= target {
		return "PASS"
	}
	return "MISS"
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func run(kind string, calls, nRuns, points, reps int) error {
	uri, drop, analyze, err := databaseWithStats(kind)
	if err != nil {
		return err
	}
	if keepDB {
		fmt.Println("keeping database", uri)
	} else {
		defer drop()
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := metadata.Open(ctx, uri, quiet)
	if err != nil {
		return err
	}
	defer db.Close()
	api := tracking.NewAPI(db, tracking.APIConfig{DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, Log: quiet})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	routes.All.Mount(app, app, api.Handlers(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = app.Listener(ln) }()
	defer app.Shutdown()
	c := &client{base: "http://" + ln.Addr().String() + "/api/2.0/mlflow",
		hc: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}

	var exp struct {
		ID string `json:"experiment_id"`
	}
	if err := c.do("POST", "/experiments/create", map[string]any{"name": "bench"}, &exp); err != nil {
		return err
	}
	newRun := func(name string) (string, error) {
		var r struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		err := c.do("POST", "/runs/create", map[string]any{"experiment_id": exp.ID, "run_name": name, "start_time": time.Now().UnixMilli()}, &r)
		return r.Run.Info.RunID, err
	}
	var rows []row
	t0 := time.Now().UnixMilli()

	// 1. Sequential log-metric.
	runID, err := newRun("latency")
	if err != nil {
		return err
	}
	lat := make([]time.Duration, 0, calls)
	for i := 0; i < calls+100; i++ {
		body := map[string]any{"run_id": runID, "key": "loss", "value": float64(i) * 0.001, "timestamp": t0 + int64(i), "step": i}
		start := time.Now()
		if err := c.do("POST", "/runs/log-metric", body, nil); err != nil {
			return err
		}
		if i >= 100 {
			lat = append(lat, time.Since(start))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	rows = append(rows,
		row{fmt.Sprintf("log-metric p50 (%d sequential calls)", calls), ms(p50), "<= 1 ms (SQLite)", verdictIf(kind == "sqlite", p50, time.Millisecond)},
		row{"log-metric p99", ms(p99), "-", ""})

	// 2. log-batch of 1000 metrics.
	batchRun, err := newRun("batch")
	if err != nil {
		return err
	}
	var bt []time.Duration
	for r := 0; r < reps; r++ {
		ms := make([]map[string]any, 1000)
		for i := range ms {
			ms[i] = map[string]any{"key": fmt.Sprintf("m%d", i%50), "value": float64(r*1000 + i), "timestamp": t0 + int64(r*1000+i), "step": r*1000 + i}
		}
		start := time.Now()
		if err := c.do("POST", "/runs/log-batch", map[string]any{"run_id": batchRun, "metrics": ms}, nil); err != nil {
			return err
		}
		bt = append(bt, time.Since(start))
	}
	rows = append(rows, row{"log-batch of 1000 metrics (median)", ms(median(bt)), "-", ""})

	// 3. runs/search over nRuns runs.
	seedStart := time.Now()
	if err := seedRuns(c, exp.ID, nRuns, t0); err != nil {
		return err
	}
	seedTime := time.Since(seedStart)
	if err := analyze(); err != nil {
		return fmt.Errorf("refresh statistics: %w", err)
	}
	for _, max := range []int{100, 1000} {
		var st []time.Duration
		var n int
		for r := 0; r < reps; r++ {
			var out struct {
				Runs []json.RawMessage `json:"runs"`
			}
			start := time.Now()
			if err := c.do("POST", "/runs/search", map[string]any{
				"experiment_ids": []string{exp.ID}, "filter": "metrics.loss < 0.5 and params.lr = '0.01'",
				"order_by": []string{"metrics.acc DESC"}, "max_results": max, "run_view_type": "ACTIVE_ONLY",
			}, &out); err != nil {
				return err
			}
			st = append(st, time.Since(start))
			n = len(out.Runs)
		}
		target, v := "-", ""
		if max == 100 {
			target, v = "<= 50 ms", verdict(median(st), 50*time.Millisecond)
		}
		rows = append(rows, row{fmt.Sprintf("runs/search %d runs, filter+order_by, max_results=%d (median, %d returned)", nRuns, max, n), ms(median(st)), target, v})
	}

	// 4. get-history of `points` points.
	histRun, err := newRun("history")
	if err != nil {
		return err
	}
	for off := 0; off < points; off += 1000 {
		n := min(1000, points-off)
		ms := make([]map[string]any, n)
		for i := range ms {
			s := off + i
			ms[i] = map[string]any{"key": "loss", "value": 1 / float64(s+1), "timestamp": t0 + int64(s), "step": s}
		}
		if err := c.do("POST", "/runs/log-batch", map[string]any{"run_id": histRun, "metrics": ms}, nil); err != nil {
			return err
		}
	}
	type page struct {
		Metrics []json.RawMessage `json:"metrics"`
		Next    string            `json:"next_page_token"`
	}
	for _, paged := range []bool{true, false} {
		var ht []time.Duration
		for r := 0; r < max(3, reps/2); r++ {
			start := time.Now()
			got, token := 0, ""
			for {
				q := url.Values{"run_id": {histRun}, "metric_key": {"loss"}}
				if paged {
					q.Set("max_results", "25000")
				}
				if token != "" {
					q.Set("page_token", token)
				}
				var p page
				if err := c.do("GET", "/metrics/get-history?"+q.Encode(), nil, &p); err != nil {
					return err
				}
				got += len(p.Metrics)
				if token = p.Next; token == "" {
					break
				}
			}
			ht = append(ht, time.Since(start))
			if got != points {
				return fmt.Errorf("get-history returned %d points, want %d", got, points)
			}
		}
		what := fmt.Sprintf("get-history %d points, one request (median)", points)
		if paged {
			what = fmt.Sprintf("get-history %d points, max_results=25000 pages (median)", points)
		}
		rows = append(rows, row{what, ms(median(ht)), "-", ""})
	}

	fmt.Printf("Ferry tracking benchmark: -db %s (%s), seeded %d runs in %s\n", kind, redact(uri), nRuns, seedTime.Round(time.Millisecond))
	if up, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at end: %s", up)
	}
	w := 0
	for _, r := range rows {
		w = max(w, len(r.what))
	}
	fmt.Printf("%-*s  %12s  %-18s  %s\n", w, "measurement", "value", "target", "")
	fmt.Println(strings.Repeat("-", w+40))
	for _, r := range rows {
		fmt.Printf("%-*s  %12s  %-18s  %s\n", w, r.what, r.value, r.target, r.verdict)
	}
	return nil
}

func verdictIf(applies bool, d, target time.Duration) string {
	if !applies {
		return "(n/a)"
	}
	return verdict(d, target)
}

func redact(uri string) string {
	if i := strings.Index(uri, "?"); i >= 0 {
		return uri[:i]
	}
	return uri
}

// seedRuns creates n runs, each with metrics loss and acc, param lr and a
// tag, through the API with 4 concurrent clients.
func seedRuns(c *client, expID string, n int, t0 int64) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var r struct {
					Run struct {
						Info struct {
							RunID string `json:"run_id"`
						} `json:"info"`
					} `json:"run"`
				}
				err := c.do("POST", "/runs/create", map[string]any{"experiment_id": expID, "run_name": fmt.Sprintf("run-%05d", i), "start_time": t0 + int64(i)}, &r)
				if err == nil {
					lr := "0.01"
					if i%2 == 1 {
						lr = "0.1"
					}
					err = c.do("POST", "/runs/log-batch", map[string]any{
						"run_id": r.Run.Info.RunID,
						"metrics": []map[string]any{
							{"key": "loss", "value": float64(i%1000) / 1000, "timestamp": t0, "step": 0},
							{"key": "acc", "value": float64((i*7919)%1000) / 1000, "timestamp": t0, "step": 0},
						},
						"params": []map[string]any{{"key": "lr", "value": lr}},
						"tags":   []map[string]any{{"key": "team", "value": "bench"}},
					}, nil)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
