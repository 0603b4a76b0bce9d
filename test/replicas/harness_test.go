package replicas

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "github.com/mattn/go-sqlite3"    // registers "sqlite3"

	"github.com/ferryml/ferry/test/ferrytest"
)

var ferryBin string

func TestMain(m *testing.M) { ferrytest.Main(m, &ferryBin) }

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

var (
	pgAdmin    = env("FERRY_TEST_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	mysqlAdmin = env("FERRY_TEST_MYSQL_ADMIN", "root@tcp(127.0.0.1:3306)/")
)

// database is one fresh, empty database for a test.
type database struct {
	name string
	// uri is the MLflow backend-store URI Ferry is given.
	uri string
	// driver and dsn open it directly from the test.
	driver, dsn string
	// schemaOnce: the backend serialises creation with a lock, so exactly
	// one process logs that it creates the schema (SQLite re-checks inside
	// its transaction instead, so several may start to).
	schemaOnce bool
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ferry_r_" + hex.EncodeToString(b[:])
}

// freshDatabase creates an empty database of kind ("postgresql",
// "mysql" or "sqlite") and drops it when t ends. An unreachable server
// fails the test: test/backends/databases.sh starts both.
func freshDatabase(t *testing.T, kind string) database {
	t.Helper()
	name := randomName()
	switch kind {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "mlflow.db")
		return database{name: kind, uri: "sqlite:///" + path, driver: "sqlite3", dsn: path}
	case "postgresql":
		admin := openAdmin(t, "pgx", pgAdmin)
		adminExec(t, admin, "CREATE DATABASE "+name)
		t.Cleanup(func() { adminExec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); admin.Close() })
		return database{name: kind, schemaOnce: true,
			uri:    "postgresql://postgres@127.0.0.1:5432/" + name + "?sslmode=disable",
			driver: "pgx", dsn: "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"}
	case "mysql":
		admin := openAdmin(t, "mysql", mysqlAdmin)
		adminExec(t, admin, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
		t.Cleanup(func() { adminExec(t, admin, "DROP DATABASE IF EXISTS "+name); admin.Close() })
		return database{name: kind, schemaOnce: true,
			uri:    "mysql+pymysql://root@127.0.0.1:3306/" + name + "?charset=utf8mb4",
			driver: "mysql", dsn: "root@tcp(127.0.0.1:3306)/" + name}
	}
	t.Fatalf("unknown database kind %q", kind)
	return database{}
}

func openAdmin(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("%s admin connection (run test/backends/databases.sh): %v", driver, err)
	}
	return db
}

func adminExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// revisions returns the rows of alembic_version.
func (d database) revisions(t *testing.T) []string {
	t.Helper()
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT version_num FROM alembic_version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var revs []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r)
	}
	return revs
}

// replica is one `ferry server` process.
type replica struct {
	port int
	cmd  *exec.Cmd
	logs *ferrytest.LogBuffer
	done chan struct{}
	err  error
	// killed: the test sent SIGKILL, so a non-zero exit is expected.
	killed bool
	// args and env start the process again (restart).
	args, env []string
	dir       string
}

// cleanEnv is the environment without variables that configure Ferry.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MLFLOW_") || strings.HasPrefix(k, "_MLFLOW_") || strings.HasPrefix(k, "FERRY_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// startReplicas starts n servers on db at the same moment, sharing one
// artifacts destination, and returns once all have been started (not
// yet healthy). Each is stopped with SIGTERM when t ends and must exit 0.
func startReplicas(t *testing.T, db database, n int) []*replica {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "artifacts")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	return startReplicasWith(t, db, n, dest, nil)
}

// startReplicasWith is startReplicas with an artifacts destination URI
// and extra environment (e.g. an S3 endpoint's).
func startReplicasWith(t *testing.T, db database, n int, dest string, env []string) []*replica {
	t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		r := &replica{port: ferrytest.FreePort(t), logs: &ferrytest.LogBuffer{}, dir: t.TempDir(), env: append(cleanEnv(), env...)}
		r.args = []string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(r.port),
			"--backend-store-uri", db.uri, "--artifacts-destination", dest}
		r.prepare()
		rs[i] = r
	}
	for _, r := range rs { // started back to back: all race for the empty database
		r.start(t)
	}
	t.Cleanup(func() {
		for i, r := range rs {
			select {
			case <-r.done:
			default:
				_ = r.cmd.Process.Signal(os.Interrupt)
				select {
				case <-r.done:
				case <-time.After(30 * time.Second):
					_ = r.cmd.Process.Kill()
					<-r.done
				}
			}
			if r.err != nil && !r.killed {
				t.Errorf("replica %d exited with %v", i, r.err)
			}
			if t.Failed() {
				t.Logf("replica %d logs:\n%s", i, r.logs.String())
			}
		}
	})
	return rs
}

// prepare makes the process's command (not started).
func (r *replica) prepare() {
	r.cmd = exec.Command(ferryBin, r.args...)
	r.cmd.Dir, r.cmd.Env = r.dir, r.env
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	r.done = make(chan struct{})
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := r.done
	go func(cmd *exec.Cmd) { r.err = cmd.Wait(); close(done) }(r.cmd)
}

// restart starts an exited (killed) replica again on its port.
func (r *replica) restart(t *testing.T) {
	t.Helper()
	<-r.done
	r.killed, r.err = false, nil
	r.prepare()
	r.start(t)
}

func (r *replica) url(p string) string { return "http://127.0.0.1:" + strconv.Itoa(r.port) + p }

// waitHealthy waits for /health to answer 200 OK, failing the test if
// the process exits first.
func (r *replica) waitHealthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.done:
			t.Fatalf("replica on port %d exited before serving: %v\n%s", r.port, r.err, r.logs.String())
		default:
		}
		resp, err := http.Get(r.url("/health"))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "OK" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica on port %d not healthy within %s (last error %v)\n%s", r.port, timeout, err, r.logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// call POSTs body as JSON to the tracking API path and decodes the reply
// into out; a non-200 status fails the test.
func (r *replica) call(t *testing.T, path string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(r.url("/api/2.0/mlflow/"+path), "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s on port %d: %d %s", path, r.port, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v in %s", path, err, raw)
		}
	}
}

// countLogs counts the replica's log lines containing s.
func (r *replica) countLogs(s string) int { return strings.Count(r.logs.String(), s) }

// upgrade runs `ferry db upgrade uri` and returns its exit error and
// output.
func upgrade(uri string) *exec.Cmd {
	cmd := exec.Command(ferryBin, "db", "upgrade", uri)
	cmd.Env = cleanEnv()
	return cmd
}

func runConcurrently(cmds ...*exec.Cmd) ([]error, []string) {
	errs := make([]error, len(cmds))
	outs := make([]*bytes.Buffer, len(cmds))
	for i, c := range cmds {
		outs[i] = &bytes.Buffer{}
		c.Stdout, c.Stderr = outs[i], outs[i]
		errs[i] = c.Start()
	}
	for i, c := range cmds {
		if errs[i] == nil {
			errs[i] = c.Wait()
		}
	}
	texts := make([]string, len(cmds))
	for i := range outs {
		texts[i] = outs[i].String()
	}
	return errs, texts
}
