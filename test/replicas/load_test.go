package replicas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// do sends one tracking API request (JSON body for POST, query string for
// GET) and decodes a 200 reply into out; it is safe from any goroutine.
func (r *replica) do(method, path string, body map[string]any, out any) error {
	u := r.url("/api/2.0/mlflow/" + path)
	var rd io.Reader
	if method == http.MethodGet {
		q := url.Values{}
		for k, v := range body {
			q.Set(k, fmt.Sprint(v))
		}
		u += "?" + q.Encode()
	} else {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s on port %d: %d %s", method, path, r.port, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type point struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// createdRun is the part of a runs/create answer the tests read.
type createdRun struct {
	Run struct {
		Info struct {
			RunID string `json:"run_id"`
		} `json:"info"`
	} `json:"run"`
}

type runData struct {
	Run struct {
		Data struct {
			Params []struct{ Key, Value string } `json:"params"`
			Tags   []struct{ Key, Value string } `json:"tags"`
		} `json:"data"`
	} `json:"run"`
}

// Clients writing through two replicas at once, each request to the other
// replica than the last: no write is lost or duplicated, and every run
// reads the same from either replica.
func TestWritesAlternatingTwoReplicas(t *testing.T) {
	db := freshDatabase(t, "postgresql")
	rs := startReplicas(t, db, 2)
	for _, r := range rs {
		r.waitHealthy(t, 60*time.Second)
	}
	var exp struct {
		ID string `json:"experiment_id"`
	}
	rs[0].call(t, "experiments/create", map[string]any{"name": "load"}, &exp)

	const clients, points, params = 8, 40, 5
	runIDs := make([]string, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				n := c // request counter: alternates the replica
				next := func() *replica { n++; return rs[n%2] }
				var run createdRun
				if err := next().do("POST", "runs/create", map[string]any{"experiment_id": exp.ID, "start_time": 1}, &run); err != nil {
					return err
				}
				id := run.Run.Info.RunID
				runIDs[c] = id
				for i := range points {
					if err := next().do("POST", "runs/log-metric", map[string]any{
						"run_id": id, "key": "loss", "value": float64(c*1000 + i), "timestamp": 1000 + i, "step": i}, nil); err != nil {
						return err
					}
					if i < params {
						if err := next().do("POST", "runs/log-parameter", map[string]any{"run_id": id, "key": fmt.Sprintf("p%d", i), "value": fmt.Sprint(c, i)}, nil); err != nil {
							return err
						}
						if err := next().do("POST", "runs/set-tag", map[string]any{"run_id": id, "key": fmt.Sprintf("t%d", i), "value": fmt.Sprint(i, c)}, nil); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for c, id := range runIDs {
		var hist [2][]point
		var data [2]runData
		for i, r := range rs {
			var out struct {
				Metrics []point `json:"metrics"`
			}
			if err := r.do("GET", "metrics/get-history", map[string]any{"run_id": id, "metric_key": "loss"}, &out); err != nil {
				t.Fatal(err)
			}
			hist[i] = out.Metrics
			if err := r.do("GET", "runs/get", map[string]any{"run_id": id}, &data[i]); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(hist[0], hist[1]) || !reflect.DeepEqual(data[0], data[1]) {
			t.Errorf("run %s reads differently from the two replicas", id)
		}
		if len(hist[0]) != points {
			t.Fatalf("run %s has %d points, want %d (lost or duplicated)", id, len(hist[0]), points)
		}
		for i, p := range hist[0] { // ordered by timestamp, step
			if p.Step != int64(i) || p.Value != float64(c*1000+i) || p.Timestamp != int64(1000+i) {
				t.Fatalf("run %s point %d = %+v", id, i, p)
			}
		}
		if len(data[0].Run.Data.Params) != params || len(data[0].Run.Data.Tags) < params {
			t.Errorf("run %s: %d params, %d tags, want %d of each", id, len(data[0].Run.Data.Params), len(data[0].Run.Data.Tags), params)
		}
	}
}

// One of two replicas is killed with SIGKILL while clients log metrics
// through both: a client whose request fails retries it on the other
// replica, every client finishes, and every run holds each point exactly
// once (a retried point that had already been written is a no-op, as
// upstream's metrics key makes it).
func TestReplicaKilledMidway(t *testing.T) {
	db := freshDatabase(t, "postgresql")
	rs := startReplicas(t, db, 2)
	for _, r := range rs {
		r.waitHealthy(t, 60*time.Second)
	}
	var exp struct {
		ID string `json:"experiment_id"`
	}
	rs[0].call(t, "experiments/create", map[string]any{"name": "kill"}, &exp)
	const clients, points = 8, 60
	runIDs := make([]string, clients)
	for c := range runIDs {
		var run createdRun
		rs[c%2].call(t, "runs/create", map[string]any{"experiment_id": exp.ID, "start_time": 1}, &run)
		runIDs[c] = run.Run.Info.RunID
	}

	var logged, retried atomic.Int64
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c, id := range runIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for i := range points {
					body := map[string]any{"run_id": id, "key": "loss", "value": float64(i), "timestamp": 1000 + i, "step": i}
					err := rs[(c+i)%2].do("POST", "runs/log-metric", body, nil)
					if err != nil { // the other replica; the survivor answers
						retried.Add(1)
						err = rs[(c+i+1)%2].do("POST", "runs/log-metric", body, nil)
					}
					if err != nil {
						return err
					}
					logged.Add(1)
				}
				return nil
			}()
		}()
	}
	for logged.Load() < clients*points/3 {
		time.Sleep(time.Millisecond)
	}
	rs[1].killed = true
	if err := rs[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if retried.Load() == 0 {
		t.Fatal("no request was retried: the kill came too late to test anything")
	}
	t.Logf("%d requests retried on the surviving replica", retried.Load())
	for _, id := range runIDs {
		var out struct {
			Metrics []point `json:"metrics"`
		}
		if err := rs[0].do("GET", "metrics/get-history", map[string]any{"run_id": id, "metric_key": "loss"}, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Metrics) != points {
			t.Fatalf("run %s has %d points, want %d", id, len(out.Metrics), points)
		}
		for i, p := range out.Metrics {
			if p.Step != int64(i) || p.Value != float64(i) {
				t.Fatalf("run %s point %d = %+v", id, i, p)
			}
		}
	}
}
