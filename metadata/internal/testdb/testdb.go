// Package testdb gives metadata tests a fresh database on each of the
// three backends: SQLite in a temp dir, PostgreSQL and MariaDB/MySQL on
// 127.0.0.1. It starts the local servers when they are not reachable
// (the commands the project's machines use) and never skips a backend:
// a backend that cannot be reached fails the test.
//
// Admin URLs can be overridden with FERRY_TEST_PG_ADMIN (a pgx URL) and
// FERRY_TEST_MYSQL_ADMIN (a go-sql-driver DSN).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "github.com/mattn/go-sqlite3"    // registers "sqlite3"

	"github.com/ferryml/ferry/metadata/dburi"
	"github.com/ferryml/ferry/metadata/schema"
)

// Backend is one fresh, empty database.
type Backend struct {
	Name    string
	Dialect schema.Dialect
	// URI is the MLflow-style URI (sqlite:////abs, postgresql://, mysql://).
	URI string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

var (
	pgAdmin    = env("FERRY_TEST_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	mysqlAdmin = env("FERRY_TEST_MYSQL_ADMIN", "root@tcp(127.0.0.1:3306)/")
	pgHost     = "127.0.0.1:5432"
	mysqlHost  = "127.0.0.1:3306"
)

var (
	startOnce sync.Once
	startErr  error
)

// All returns a fresh empty database on every backend, each dropped when
// t ends.
func All(t testing.TB) []Backend {
	t.Helper()
	return []Backend{SQLite(t), Postgres(t), MySQL(t)}
}

// SQLite returns a fresh SQLite database file in a temp dir.
func SQLite(t testing.TB) Backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mlflow.db")
	return Backend{Name: "sqlite", Dialect: schema.SQLite, URI: "sqlite:///" + path}
}

// Postgres returns a fresh PostgreSQL database.
func Postgres(t testing.TB) Backend {
	t.Helper()
	ensureServers(t)
	name := dbName()
	admin := openAdmin(t, "pgx", pgAdmin)
	mustExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		mustExec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	})
	return Backend{Name: "postgresql", Dialect: schema.Postgres,
		URI: fmt.Sprintf("postgresql://postgres@%s/%s?sslmode=disable", pgHost, name)}
}

// MySQL returns a fresh MariaDB/MySQL database (utf8mb4, the server's
// default collation, as an operator would create it).
func MySQL(t testing.TB) Backend {
	t.Helper()
	ensureServers(t)
	name := dbName()
	admin := openAdmin(t, "mysql", mysqlAdmin)
	mustExec(t, admin, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
	t.Cleanup(func() {
		mustExec(t, admin, "DROP DATABASE IF EXISTS "+name)
		admin.Close()
	})
	return Backend{Name: "mysql", Dialect: schema.MySQL,
		URI: fmt.Sprintf("mysql+pymysql://root@%s/%s?charset=utf8mb4", mysqlHost, name)}
}

func dbName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ferry_t_" + hex.EncodeToString(b[:])
}

func openAdmin(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s admin: %v", driver, err)
	}
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// ensureServers starts PostgreSQL and MariaDB when they do not answer,
// once per test binary.
func ensureServers(t testing.TB) {
	t.Helper()
	startOnce.Do(func() { startErr = startServers() })
	if startErr != nil {
		t.Fatalf("test databases unavailable: %v", startErr)
	}
}

func startServers() error {
	var errs []string
	if !ping("pgx", pgAdmin) {
		if vers, _ := filepath.Glob("/etc/postgresql/*"); len(vers) > 0 {
			_ = exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(vers[0]), "main", "start").Run()
		}
		if !waitFor("pgx", pgAdmin) {
			errs = append(errs, "PostgreSQL at "+pgHost+" is not reachable and could not be started")
		}
	}
	if !ping("mysql", mysqlAdmin) {
		_ = exec.Command("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd").Run()
		if !waitFor("mysql", mysqlAdmin) {
			errs = append(errs, "MariaDB at "+mysqlHost+" is not reachable and could not be started")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func ping(driver, dsn string) bool {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return false
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}

func waitFor(driver, dsn string) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ping(driver, dsn) {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false
}

// OpenRaw opens b with the Go driver directly (no Ferry setup), for tests
// that build a database by hand.
func (b Backend) OpenRaw(t testing.TB) *sql.DB {
	t.Helper()
	cfg, err := dburi.Parse(b.URI)
	if err != nil {
		t.Fatal(err)
	}
	var db *sql.DB
	switch b.Dialect {
	case schema.MySQL:
		conn, err := mysql.NewConnector(cfg.MySQL)
		if err != nil {
			t.Fatal(err)
		}
		db = sql.OpenDB(conn)
	case schema.SQLite:
		db, err = sql.Open(cfg.Driver, cfg.DSN+"?_foreign_keys=1&_busy_timeout=20000")
	default:
		db, err = sql.Open(cfg.Driver, cfg.DSN)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
