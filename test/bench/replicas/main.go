// Command replicas measures the throughput of metric logging
// (runs/log-metric) through one and through two Ferry processes on one
// PostgreSQL database, alternating the two set-ups round by round on the
// same database and the same running processes, then checks that every
// run's metric history holds exactly the points logged, read identically
// from either replica.
//
// Usage, from the repository root:
//
//	go run ./test/bench/replicas
//	go build -o /tmp/ferry . && go run ./test/bench/replicas -bin /tmp/ferry -clients 32 -duration 10s
//
// The database is created on the server named by FERRY_TEST_PG_ADMIN
// (default postgres@127.0.0.1:5432, as the metadata tests use) and dropped
// at the end. It reports figures; only a failed request, a lost or
// duplicated point or a setup error exits non-zero.
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
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ferryml/ferry/internal/buildflags"
)

func main() {
	bin := flag.String("bin", "", "prebuilt ferry binary (default: go build)")
	clients := flag.Int("clients", 16, "concurrent clients, each logging to a run of its own")
	duration := flag.Duration("duration", 5*time.Second, "length of one round")
	rounds := flag.Int("rounds", 5, "rounds of each set-up (1 and 2 replicas), alternating")
	flag.BoolVar(&sticky, "sticky", false, "with 2 replicas, client c always uses replica c%2 instead of alternating request by request")
	flag.Parse()
	if err := run(*bin, *clients, *duration, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sticky pins each client to one replica (a load balancer with session
// affinity) instead of alternating.
var sticky bool

var httpc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}

type server struct {
	base string
	cmd  *exec.Cmd
	logs bytes.Buffer
}

func run(bin string, clients int, duration time.Duration, rounds int) error {
	tmp, err := os.MkdirTemp("", "ferry-bench-replicas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "ferry")
		build := exec.Command("go", append(append([]string{"build"}, buildflags.Args()...), "-o", bin, ".")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	admin := os.Getenv("FERRY_TEST_PG_ADMIN")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	adm, err := sql.Open("pgx", admin)
	if err != nil {
		return err
	}
	defer adm.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ferry_bench_" + hex.EncodeToString(b[:])
	if _, err := adm.Exec("CREATE DATABASE " + name); err != nil {
		return err
	}
	defer adm.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	adminURL, _ := url.Parse(admin)
	uri := "postgresql://" + adminURL.User.String() + "@" + adminURL.Host + "/" + name + "?sslmode=disable"

	var servers []*server
	defer func() {
		for _, s := range servers {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			_ = s.cmd.Wait()
		}
	}()
	for range 2 {
		s, err := start(bin, uri, filepath.Join(tmp, "artifacts"))
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		if err := waitHealthy(s); err != nil {
			return err
		}
	}

	var exp struct {
		ID string `json:"experiment_id"`
	}
	if err := call(servers[0], "POST", "experiments/create", map[string]any{"name": "bench"}, &exp); err != nil {
		return err
	}
	runIDs := make([]string, clients)
	steps := make([]int64, clients) // points logged per run
	for c := range runIDs {
		var out struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		if err := call(servers[c%2], "POST", "runs/create", map[string]any{"experiment_id": exp.ID}, &out); err != nil {
			return err
		}
		runIDs[c] = out.Run.Info.RunID
	}

	load0, _ := os.ReadFile("/proc/loadavg")
	results := map[int][]float64{}
	for r := range rounds {
		order := []int{1, 2}
		if r%2 == 1 {
			order = []int{2, 1}
		}
		for _, n := range order {
			rate, err := round(servers[:n], runIDs, steps, duration)
			if err != nil {
				return err
			}
			results[n] = append(results[n], rate)
			fmt.Fprintf(os.Stderr, "round %d, %d replica(s): %.0f log-metric/s\n", r+1, n, rate)
		}
	}
	load1, _ := os.ReadFile("/proc/loadavg")

	// Every point arrived once, and both replicas read the same history.
	total := int64(0)
	for c, id := range runIDs {
		var hist [2][]json.RawMessage
		for i, s := range servers {
			var out struct {
				Metrics []json.RawMessage `json:"metrics"`
			}
			if err := call(s, "GET", "metrics/get-history", map[string]any{"run_id": id, "metric_key": "m"}, &out); err != nil {
				return err
			}
			hist[i] = out.Metrics
		}
		if int64(len(hist[0])) != steps[c] || !reflect.DeepEqual(hist[0], hist[1]) {
			return fmt.Errorf("run %s: %d and %d points read from the two replicas, %d logged", id, len(hist[0]), len(hist[1]), steps[c])
		}
		total += steps[c]
	}

	spread := "each client alternating replicas"
	if sticky {
		spread = "each client pinned to one replica"
	}
	fmt.Printf("metric logging (runs/log-metric), %d clients, %d rounds of %s per set-up, alternating set-ups, %s, PostgreSQL on this machine\n", clients, rounds, duration, spread)
	fmt.Printf("%-12s %14s %22s\n", "replicas", "median req/s", "min-max req/s")
	for _, n := range []int{1, 2} {
		v := slices.Clone(results[n])
		slices.Sort(v)
		fmt.Printf("%-12d %14.0f %22s\n", n, v[len(v)/2], fmt.Sprintf("%.0f-%.0f", v[0], v[len(v)-1]))
	}
	m1, m2 := median(results[1]), median(results[2])
	fmt.Printf("2 replicas / 1 replica: %.2fx\n", m2/m1)
	fmt.Printf("verified: %d points in %d runs, none lost or duplicated, identical from both replicas\n", total, len(runIDs))
	fmt.Printf("load average before: %s after: %s", strings.TrimSpace(string(load0)), load1)
	return nil
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// round runs every client for d, each request to the next server in
// turn, and returns successful requests per second.
func round(servers []*server, runIDs []string, steps []int64, d time.Duration) (float64, error) {
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(runIDs))
	start := time.Now()
	deadline := start.Add(d)
	for c, id := range runIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; time.Now().Before(deadline); i++ {
				step := steps[c]
				target := i % len(servers)
				if sticky {
					target = c % len(servers)
				}
				err := call(servers[target], "POST", "runs/log-metric", map[string]any{
					"run_id": id, "key": "m", "value": float64(step), "timestamp": step, "step": step}, nil)
				if err != nil {
					errs[c] = err
					return
				}
				steps[c]++
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

func start(bin, uri, dest string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &server{base: "http://127.0.0.1:" + strconv.Itoa(port)}
	s.cmd = exec.Command(bin, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--backend-store-uri", uri, "--artifacts-destination", dest, "--log-level", "warn")
	s.cmd.Stdout, s.cmd.Stderr = &s.logs, &s.logs
	return s, s.cmd.Start()
}

func waitHealthy(s *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := httpc.Get(s.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy within 60 s", s.base)
}

func call(s *server, method, path string, body map[string]any, out any) error {
	u := s.base + "/api/2.0/mlflow/" + path
	var rd io.Reader
	if method == "GET" {
		q := url.Values{}
		for k, v := range body {
			q.Set(k, fmt.Sprint(v))
		}
		u += "?" + q.Encode()
	} else {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}
