package replicas

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/test/ferrytest"
)

// The load test's size: short in the suite; the full run is
//
//	go test -run TestLoadTwoReplicasKillAndGC -v -timeout 10m ./test/replicas/ -clients 32 -duration 60s
var (
	loadClients  = flag.Int("clients", 4, "TestLoadTwoReplicasKillAndGC: concurrent clients")
	loadDuration = flag.Duration("duration", 5*time.Second, "TestLoadTwoReplicasKillAndGC: how long the clients write")
)

const (
	loadPrefix  = "ferry/artifacts"
	partSize    = 5 << 20 // S3's minimum part size
	proxiedBig  = 6 << 20 // over the replicas' multipart threshold: a proxied multipart Put
	retryWindow = 60 * time.Second
)

var loadHTTP = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}

// errRetry marks a failure the other replica may not have: the
// connection failed (the replica died) or it answered 502/503/504.
var errRetry = errors.New("retry on the other replica")

// send makes one request to r and returns the status and body.
func send(r *replica, method, path, ctype string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, r.url(path), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := loadHTTP.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errRetry, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errRetry, err)
	}
	switch resp.StatusCode {
	case 502, 503, 504:
		return resp.StatusCode, raw, fmt.Errorf("%w: %s %s: %d %s", errRetry, method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, raw, nil
}

// loadClient is one client: its own run, the requests it alternates
// between the replicas, and the ledger of everything it wrote.
type loadClient struct {
	rs      []*replica
	n       int // requests sent: picks the replica
	retried *atomic.Int64
	sent    *atomic.Int64
	// completedByLost counts presigned uploads whose complete reached S3
	// through the replica killed before it answered.
	completedByLost *atomic.Int64

	exp, run string
	points   []int64           // steps logged, value = step*10, timestamp = step+1000
	params   map[string]string // key → value
	tags     map[string]string // key → last value
	files    map[string][32]byte
}

// call sends to the next replica in turn; a retryable failure is retried
// on the other one (then alternately) until retryWindow passes. It
// returns the status and body of the first non-retryable answer.
func (c *loadClient) call(method, path, ctype string, body []byte) (int, []byte, error) {
	deadline := time.Now().Add(retryWindow)
	c.n++
	for attempt := 0; ; attempt++ {
		r := c.rs[(c.n+attempt)%len(c.rs)]
		c.sent.Add(1)
		st, raw, err := send(r, method, path, ctype, body)
		if err == nil || !errors.Is(err, errRetry) {
			return st, raw, err
		}
		if time.Now().After(deadline) {
			return st, raw, err
		}
		c.retried.Add(1)
		if attempt%2 == 1 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// api is call for a tracking API request that must answer 200.
func (c *loadClient) api(path string, req, out any) error {
	b, _ := json.Marshal(req)
	st, raw, err := c.call("POST", "/api/2.0/mlflow/"+path, "application/json", b)
	if err != nil {
		return err
	}
	if st != 200 {
		return fmt.Errorf("%s: %d %s", path, st, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (c *loadClient) artifactPath(name string) string {
	return c.exp + "/" + c.run + "/artifacts/" + name
}

// presignedUpload is the MLflow client's multipart algorithm through the
// replicas: mpu/create, each part PUT straight to MinIO, mpu/complete.
// A complete whose first answer was lost (the replica died) may find the
// upload already completed: the object is then checked instead.
func (c *loadClient) presignedUpload(name string, data []byte) error {
	dir := "/api/2.0/mlflow-artifacts/mpu/%s/" + c.exp + "/" + c.run + "/artifacts"
	parts := (len(data) + partSize - 1) / partSize
	b, _ := json.Marshal(map[string]any{"path": "/tmp/" + name, "num_parts": parts})
	st, raw, err := c.call("POST", fmt.Sprintf(dir, "create"), "application/json", b)
	if err != nil || st != 200 {
		return fmt.Errorf("mpu/create: %d %s %v", st, raw, err)
	}
	var cr ferrytest.CreateResp
	if err := json.Unmarshal(raw, &cr); err != nil || len(cr.Credentials) != parts {
		return fmt.Errorf("mpu/create answer %s: %v", raw, err)
	}
	var done []ferrytest.Part
	for i, cred := range cr.Credentials {
		chunk := data[i*partSize : min(len(data), (i+1)*partSize)]
		req, _ := http.NewRequest("PUT", cred.URL, bytes.NewReader(chunk))
		for k, v := range cred.Headers {
			req.Header.Set(k, v)
		}
		resp, err := loadHTTP.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("part %d: %d", cred.PartNumber, resp.StatusCode)
		}
		done = append(done, ferrytest.Part{PartNumber: cred.PartNumber, ETag: resp.Header.Get("ETag"), URL: cred.URL})
	}
	b, _ = json.Marshal(map[string]any{"path": "/tmp/" + name, "upload_id": cr.UploadID, "parts": done})
	before := c.retried.Load()
	st, raw, err = c.call("POST", fmt.Sprintf(dir, "complete"), "application/json", b)
	if err == nil && st != 200 && c.retried.Load() > before {
		// The replica that died may have sent the complete before it
		// died: S3 finishes it on its own. Ferry answers a retry 200 once
		// the object is there (stores/s3 alreadyCompleted), but the first
		// complete may still be running in MinIO when the retry arrives,
		// which then refuses it. The upload counts if the object appears.
		for wait := time.Now().Add(10 * time.Second); st != 200 && time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
			for _, r := range c.rs {
				if h, err2 := c.fetch(r, name); err2 == nil && h == sha256.Sum256(data) {
					st = 200
					c.completedByLost.Add(1)
					break
				}
			}
		}
	}
	if err != nil || st != 200 {
		return fmt.Errorf("mpu/complete: %d %s %v", st, raw, err)
	}
	c.files[name] = sha256.Sum256(data)
	return nil
}

// fetch reads an artifact through r and hashes it.
func (c *loadClient) fetch(r *replica, name string) ([32]byte, error) {
	resp, err := loadHTTP.Get(r.url("/api/2.0/mlflow-artifacts/artifacts/" + c.artifactPath(name)))
	if err != nil {
		return [32]byte{}, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return [32]byte{}, err
	}
	if resp.StatusCode != 200 {
		return [32]byte{}, fmt.Errorf("GET %s: %d", name, resp.StatusCode)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// work writes until stop: per iteration a metric point, a param and a
// tag; every 5th a small proxied artifact; some iterations a proxied
// multipart artifact or a presigned multipart upload (each at least once).
func (c *loadClient) work(stop time.Time, big []byte) error {
	for i := int64(0); i < 3 || time.Now().Before(stop); i++ {
		if err := c.api("runs/log-metric", map[string]any{"run_id": c.run, "key": "m", "value": float64(i * 10), "timestamp": 1000 + i, "step": i}, nil); err != nil {
			return err
		}
		c.points = append(c.points, i)
		k, v := "p"+strconv.FormatInt(i, 10), fmt.Sprintf("v-%d", i)
		if err := c.api("runs/log-parameter", map[string]any{"run_id": c.run, "key": k, "value": v}, nil); err != nil {
			return err
		}
		c.params[k] = v
		tk, tv := fmt.Sprintf("t%d", i%7), strconv.FormatInt(i, 10)
		if err := c.api("runs/set-tag", map[string]any{"run_id": c.run, "key": tk, "value": tv}, nil); err != nil {
			return err
		}
		c.tags[tk] = tv
		name := ""
		var data []byte
		switch {
		case i == 1 || i%40 == 21: // presigned multipart, two parts
			data = append(slices.Clip(big[:partSize]), []byte(fmt.Sprintf("tail %s %d", c.run, i))...)
			if err := c.presignedUpload(fmt.Sprintf("mpu-%d.bin", i), data); err != nil {
				return err
			}
			continue
		case i == 2 || i%40 == 1: // proxied, multipart towards MinIO
			name = fmt.Sprintf("big-%d.bin", i)
			data = append(slices.Clip(big[:proxiedBig]), []byte(name)...)
		case i%5 == 0:
			name = fmt.Sprintf("small-%d.txt", i)
			data = []byte(strings.Repeat(name, 100))
		default:
			continue
		}
		st, raw, err := c.call("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+c.artifactPath(name), "application/octet-stream", data)
		if err != nil || st != 200 {
			return fmt.Errorf("PUT %s: %d %s %v", name, st, raw, err)
		}
		c.files[name] = sha256.Sum256(data)
	}
	return nil
}

// verify reads the run back from replica r and compares it with the
// ledger: every metric point once, params exactly, tags at their last
// value, every artifact's bytes.
func (c *loadClient) verify(r *replica) (metrics []point, err error) {
	var hist struct {
		Metrics []point `json:"metrics"`
	}
	if err := r.do("GET", "metrics/get-history", map[string]any{"run_id": c.run, "metric_key": "m"}, &hist); err != nil {
		return nil, err
	}
	if len(hist.Metrics) != len(c.points) {
		return nil, fmt.Errorf("run %s on port %d: %d points, %d logged (lost or duplicated)", c.run, r.port, len(hist.Metrics), len(c.points))
	}
	slices.SortFunc(hist.Metrics, func(a, b point) int { return int(a.Step - b.Step) })
	for i, p := range hist.Metrics {
		s := c.points[i]
		if p.Step != s || p.Value != float64(s*10) || p.Timestamp != 1000+s {
			return nil, fmt.Errorf("run %s point %d = %+v, logged step %d", c.run, i, p, s)
		}
	}
	var data runData
	if err := r.do("GET", "runs/get", map[string]any{"run_id": c.run}, &data); err != nil {
		return nil, err
	}
	params := map[string]string{}
	for _, p := range data.Run.Data.Params {
		params[p.Key] = p.Value
	}
	if !reflect.DeepEqual(params, c.params) {
		return nil, fmt.Errorf("run %s on port %d: %d params, %d logged", c.run, r.port, len(params), len(c.params))
	}
	tags := map[string]string{}
	for _, tg := range data.Run.Data.Tags {
		tags[tg.Key] = tg.Value
	}
	for k, v := range c.tags {
		if tags[k] != v {
			return nil, fmt.Errorf("run %s tag %s = %q, last set %q", c.run, k, tags[k], v)
		}
	}
	for name, sum := range c.files {
		got, err := c.fetch(r, name)
		if err != nil || got != sum {
			return nil, fmt.Errorf("run %s artifact %s on port %d: %v (content differs: %v)", c.run, name, r.port, err, got != sum)
		}
	}
	return hist.Metrics, nil
}

// The load test (bullet 2 of "What it must show"): clients log
// metrics, params, tags and artifacts — proxied ones, small and
// multipart, and presigned multipart uploads on MinIO — each request to
// the other replica than the last, two replicas on one PostgreSQL. One
// replica is SIGKILLed halfway; clients retry on the survivor. Then the
// killed one is restarted and every run must read exactly as its
// client's ledger says, identically from both replicas (nothing lost or
// duplicated), and after `ferry gc` no multipart upload is left open under
// Ferry's prefix. The S3 store writes no temporary files, so there are
// none to check.
func TestLoadTwoReplicasKillAndGC(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	dest := "s3://" + bucket + "/" + loadPrefix
	s3env := append(srv.Env(), "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE="+strconv.Itoa(proxiedBig),
		"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE="+strconv.Itoa(partSize))
	db := freshDatabase(t, "postgresql")
	rs := startReplicasWith(t, db, 2, dest, s3env)
	for _, r := range rs {
		r.waitHealthy(t, 60*time.Second)
	}
	var exp struct {
		ID string `json:"experiment_id"`
	}
	rs[0].call(t, "experiments/create", map[string]any{"name": "load"}, &exp)

	big := make([]byte, proxiedBig)
	_, _ = rand.Read(big)
	var retried, sent, completedByLost atomic.Int64
	clients := make([]*loadClient, *loadClients)
	for i := range clients {
		c := &loadClient{rs: rs, n: i, retried: &retried, sent: &sent, completedByLost: &completedByLost, exp: exp.ID,
			params: map[string]string{}, tags: map[string]string{}, files: map[string][32]byte{}}
		var run createdRun
		if err := c.api("runs/create", map[string]any{"experiment_id": exp.ID, "start_time": 1}, &run); err != nil {
			t.Fatal(err)
		}
		c.run = run.Run.Info.RunID
		clients[i] = c
	}

	start := time.Now()
	stop := start.Add(*loadDuration)
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { errs[i] = c.work(stop, big) })
	}
	time.Sleep(*loadDuration / 2)
	rs[1].killed = true
	if err := rs[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Since(start)
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if retried.Load() == 0 {
		t.Fatal("no request was retried: the kill came too late to test anything")
	}
	rs[1].restart(t)
	rs[1].waitHealthy(t, 60*time.Second)

	var points, params, files int
	for _, c := range clients {
		var hist [2][]point
		for i, r := range rs {
			h, err := c.verify(r)
			if err != nil {
				t.Fatal(err)
			}
			hist[i] = h
		}
		if !reflect.DeepEqual(hist[0], hist[1]) {
			t.Fatalf("run %s reads differently from the two replicas", c.run)
		}
		points, params, files = points+len(c.points), params+len(c.params), files+len(c.files)
	}

	// What the kill cut off is left in the bucket until the sweep; make
	// it older than the sweep's age, then run `ferry gc` as an operator
	// would (uploads only: the runs are live).
	time.Sleep(1500 * time.Millisecond)
	gc := exec.Command(ferryBin, "gc", "--uploads-only", "--artifacts-destination", dest, "--older-than", "1s")
	gc.Env = append(cleanEnv(), s3env...)
	out, err := gc.CombinedOutput()
	if err != nil {
		t.Fatalf("ferry gc: %v\n%s", err, out)
	}
	core := minio.Core{Client: srv.Client(t)}
	left := 0
	for u := range core.ListIncompleteUploads(t.Context(), bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		if strings.HasPrefix(u.Key, loadPrefix+"/") {
			left++
			t.Errorf("multipart upload left after gc: %s %s", u.Key, u.UploadID)
		}
	}
	t.Logf("%d clients for %s (replica 1 SIGKILLed at %s, restarted after): %d requests (%.0f/s), %d retried on the other replica (%d presigned uploads completed by the killed one); "+
		"verified on both replicas: %d metric points, %d params, %d artifacts (proxied and presigned multipart); gc: %s; uploads left: %d",
		len(clients), elapsed.Round(time.Millisecond), killedAt.Round(time.Millisecond), sent.Load(), float64(sent.Load())/elapsed.Seconds(),
		retried.Load(), completedByLost.Load(), points, params, files, strings.TrimSpace(string(out)), left)
}
