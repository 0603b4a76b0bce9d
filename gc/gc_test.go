package gc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/stores"
	_ "github.com/ferryml/ferry/stores/local" // registers plain paths
	_ "github.com/ferryml/ferry/stores/s3"    // registers s3://
	"github.com/ferryml/ferry/test/backends/s3srv"
	"github.com/ferryml/ferry/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParseOlderThan(t *testing.T) {
	good := map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "1d2h3m4s": 26*time.Hour + 3*time.Minute + 4*time.Second,
		"1.5h": 90 * time.Minute, "2m4s": 2*time.Minute + 4*time.Second, "1s": time.Second, "": 0,
	}
	for in, want := range good {
		if got, err := ParseOlderThan(in); err != nil || got != want {
			t.Errorf("ParseOlderThan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1h2d", "10", "1w", "-1d", "1..2h", "500ms", "1d 2h", "99999999999999999999d", "1d\x00"} {
		_, err := ParseOlderThan(in)
		we, ok := err.(*wire.Error)
		if !ok || we.Code != wire.InvalidParameterValue || !strings.Contains(we.Message, "Could not parse any time information from") {
			t.Errorf("ParseOlderThan(%q) error = %v", in, err)
		}
	}
}

// TestRunOnMinIO is `ferry gc`'s whole path on MinIO and SQLite: old
// multipart uploads under the destination's prefix are aborted (young ones
// and those outside the prefix stay), and a deleted run's artifacts under
// the destination and its rows go, an active run's stay.
func TestRunOnMinIO(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	const prefix = "ferry/artifacts"
	ctx := context.Background()
	client := srv.Client(t)
	core := minio.Core{Client: client}
	upload := func(key string) string {
		id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	put := func(key string) {
		if _, err := client.PutObject(ctx, bucket, key, strings.NewReader(key), int64(len(key)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(t.TempDir(), "mlflow.db")
	uri := "sqlite:///" + dbPath
	db, err := metadata.Open(ctx, uri, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const dead, alive = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	err = db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (1, 'e', 'mlflow-artifacts:/1', 'active', 1, 1)"); err != nil {
			return err
		}
		for _, r := range []struct{ id, stage string }{{dead, "deleted"}, {alive, "active"}} {
			if _, err := tx.Exec(ctx, "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) VALUES (?, 'r', 'LOCAL', '', '', 'u', 'FINISHED', 1, '', ?, ?, 1, 1)",
				r.id, r.stage, "mlflow-artifacts:/1/"+r.id+"/artifacts"); err != nil {
				return err
			}
			put(prefix + "/1/" + r.id + "/artifacts/model/weights.bin")
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The uploads last, so that the young one is young when the sweep
	// runs, however slow the set-up above was on a loaded machine.
	old := upload(prefix + "/1/r/artifacts/big.bin")
	outside := upload("elsewhere/big.bin")
	time.Sleep(6 * time.Second)
	young := upload(prefix + "/1/r/artifacts/young.bin")

	var out bytes.Buffer
	opener := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), quiet)
	defer opener.Close()
	err = Run(ctx, opener, Options{BackendStoreURI: uri, ArtifactsDestination: "s3://" + bucket + "/" + prefix,
		OlderThan: 3 * time.Second, OlderThanText: "3s", Out: &out, Log: quiet})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Removed 1 stale upload(s)", "Run with ID " + dead + " has been permanently deleted.", "Permanently deleted 1 run(s), 0 logged model(s), 0 experiment(s) and 0 job(s)."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var left []string
	for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		left = append(left, u.UploadID)
	}
	if slices.Contains(left, old) || !slices.Contains(left, outside) || !slices.Contains(left, young) {
		t.Errorf("uploads left %v: want %s and %s, not %s", left, outside, young, old)
	}
	for id, want := range map[string]bool{dead: false, alive: true} {
		_, err := client.StatObject(ctx, bucket, prefix+"/1/"+id+"/artifacts/model/weights.bin", minio.StatObjectOptions{})
		if (err == nil) != want {
			t.Errorf("artifact of run %s: exists=%v, want %v", id, err == nil, want)
		}
	}

	// --uploads-only on a local destination: a stale temp file goes, the
	// database is not opened.
	dir := t.TempDir()
	stale := filepath.Join(dir, "1", ".ferry-upload-123")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	_ = os.Chtimes(stale, past, past)
	out.Reset()
	if err := Run(ctx, opener, Options{ArtifactsDestination: dir, Out: &out, Log: quiet, OlderThan: time.Minute, OlderThanText: "1m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil || !strings.Contains(out.String(), "Removed 1 stale upload(s)") {
		t.Errorf("stale temp file not removed: %s", out.String())
	}
}

// TestRunLoggedModelsAndJobs is `ferry gc`'s whole path for 3.11's
// additions on SQLite with a local destination: a deleted logged model's
// artifacts under the destination and its rows go, an active model's
// stay; --job-ids deletes the named finished job only, --jobs the rest of
// the finished ones; a named active model is refused.
func TestRunLoggedModelsAndJobs(t *testing.T) {
	ctx := context.Background()
	dest := t.TempDir()
	uri := "sqlite:///" + filepath.Join(t.TempDir(), "mlflow.db")
	db, err := metadata.Open(ctx, uri, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const dead, alive = "m-0123456789abcdef0123456789abcdef", "m-fedcba9876543210fedcba9876543210"
	err = db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (1, 'e', 'mlflow-artifacts:/1', 'active', 1, 1)"); err != nil {
			return err
		}
		for _, m := range []struct{ id, stage string }{{dead, "deleted"}, {alive, "active"}} {
			if _, err := tx.Exec(ctx, "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage) VALUES (?, 1, 'm', ?, 1, 1, 2, ?)",
				m.id, "mlflow-artifacts:/1/models/"+m.id+"/artifacts", m.stage); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value) VALUES (?, 1, 'p', 'v')", m.id); err != nil {
				return err
			}
		}
		for id, status := range map[string]int{"j-done": 2, "j-failed": 3, "j-running": 1} {
			if _, err := tx.Exec(ctx, "INSERT INTO jobs (id, creation_time, job_name, params, status, retry_count, last_update_time) VALUES (?, 1, 'j', '{}', ?, 0, 1)", id, status); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, id := range []string{dead, alive} {
		p := filepath.Join(dest, "1", "models", id, "artifacts", "model.pkl")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(id), 0o644); err != nil {
			t.Fatal(err)
		}
		files[id] = p
	}
	rows := func(table, col, v string) int {
		var n int
		err := db.Read(ctx, func(tx *metadata.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM "+table+" WHERE "+col+" = ?", v).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	opener := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), quiet)
	defer opener.Close()
	var out bytes.Buffer
	run := func(o Options) error {
		out.Reset()
		o.BackendStoreURI, o.ArtifactsDestination, o.Out, o.Log = uri, dest, &out, quiet
		return Run(ctx, opener, o)
	}
	err = run(Options{LoggedModelIDs: []string{alive}})
	if we, ok := err.(*wire.Error); !ok || we.Code != wire.InvalidParameterValue || !strings.Contains(we.Message, "Logged model "+alive+" is not in `deleted` lifecycle stage") {
		t.Fatalf("named active model: %v", err)
	}
	if err := run(Options{JobIDs: []string{"j-done", "j-running"}}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Logged model with ID " + dead + " has been permanently deleted.", "Job with ID j-done has been permanently deleted.",
		"Permanently deleted 0 run(s), 1 logged model(s), 0 experiment(s) and 1 job(s)."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(files[dead]); err == nil {
		t.Error("the deleted model's artifacts survived")
	}
	if _, err := os.Stat(files[alive]); err != nil {
		t.Errorf("the active model's artifacts: %v", err)
	}
	for id, want := range map[string]int{dead: 0, alive: 1} {
		if n, m := rows("logged_models", "model_id", id), rows("logged_model_params", "model_id", id); n != want || m != want {
			t.Errorf("model %s: %d rows, %d params; want %d", id, n, m, want)
		}
	}
	for id, want := range map[string]int{"j-done": 0, "j-failed": 1, "j-running": 1} {
		if n := rows("jobs", "id", id); n != want {
			t.Errorf("job %s: %d rows, want %d", id, n, want)
		}
	}
	if err := run(Options{Jobs: true}); err != nil || !strings.Contains(out.String(), "0 logged model(s), 0 experiment(s) and 1 job(s).") {
		t.Fatalf("Run --jobs: %v\n%s", err, out.String())
	}
	if rows("jobs", "id", "j-failed") != 0 || rows("jobs", "id", "j-running") != 1 {
		t.Error("--jobs: wrong jobs deleted")
	}
	db.Close()
}

// TestRunWorkspaceFlags: Ferry has no workspace mode, so --workspace or
// --all-workspaces is upstream's error for a store without workspaces,
// before anything is done (a stale upload stays).
func TestRunWorkspaceFlags(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".ferry-upload-123")
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	_ = os.Chtimes(stale, past, past)
	opener := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), quiet)
	defer opener.Close()
	for _, o := range []Options{{Workspace: "team-a"}, {AllWorkspaces: true}} {
		o.ArtifactsDestination, o.Out, o.Log = dir, io.Discard, quiet
		err := Run(context.Background(), opener, o)
		we, ok := err.(*wire.Error)
		if !ok || we.Code != wire.InvalidParameterValue || we.Message != "Workspace selection flags are only supported when the tracking store supports workspaces." {
			t.Errorf("Run(%+v) = %v", o, err)
		}
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("a refused collection swept: %v", err)
	}
}
