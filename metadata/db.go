// Package metadata is the core of Ferry's tracking side, over upstream
// MLflow's own SQL schema on SQLite, PostgreSQL or MySQL/MariaDB: the
// database handle (DB: Open, Upgrade, reader and writer pools), transactions
// with one placeholder convention (DB.Read, DB.Write, Tx), and the one place
// driver errors are classified (WireError, IsUniqueViolation).
//
// Layout: db*.go are this core; schema/ owns upstream's DDL and migrations;
// dburi/ parses backend-store URIs; search/ parses MLflow's filter grammar
// into SQL. Each domain is a package beside them (tracking/ today; the model
// registry and tracing next) that imports the core and never another
// domain; the core imports no domain (internal/layout's test checks both).
// See NOTES.md for the state of the work.
package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "github.com/mattn/go-sqlite3"    // registers "sqlite3"

	"github.com/ferryml/ferry/metadata/dburi"
	"github.com/ferryml/ferry/metadata/schema"
)

// DB is an open tracking database. Reads and writes go through separate
// pools on SQLite (one writer connection, so SQLite's single-writer lock
// is taken in Go and "database is locked" never reaches a client); on
// PostgreSQL and MySQL both are the same pool.
type DB struct {
	dialect schema.Dialect
	reader  *sql.DB
	writer  *sql.DB
	cfg     *dburi.Config
	log     *slog.Logger
	// writeMu serialises SQLite write transactions in-process, in addition
	// to the single writer connection, so BEGIN never waits inside SQLite.
	writeMu sync.Mutex
}

// Dialect reports the database family.
func (db *DB) Dialect() schema.Dialect { return db.dialect }

// Close closes every pool.
func (db *DB) Close() error {
	err := db.writer.Close()
	if db.reader != db.writer {
		err = errors.Join(err, db.reader.Close())
	}
	return err
}

// Open opens the backend store at uri (an MLflow URI, spec
// backend-store.md §1). An empty database gets upstream's head schema and
// is stamped, under the schema lock (SchemaLockName) so that replicas
// started at once create it once; a database at the head revision, or stamped by a newer
// upstream but carrying every table and column Ferry uses, is opened; a
// database at an older revision, or missing what Ferry needs, is refused
// with an error naming the revision and the command to run.
func Open(ctx context.Context, uri string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	db, err := connect(ctx, uri, log)
	if err != nil {
		return nil, err
	}
	if err := db.prepare(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// Upgrade creates the schema on an empty database or brings one at MLflow
// 3.6's head (bf29a5ff90ea) or any later known revision to Ferry's head,
// for `ferry db upgrade URI`. It holds the schema lock (SchemaLockName)
// throughout, so concurrent upgrades and starting servers wait for it.
func Upgrade(ctx context.Context, uri string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	db, err := connect(ctx, uri, log)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.writer.Conn(ctx)
	if err != nil {
		return db.unavailable(err)
	}
	defer conn.Close()
	unlock, err := db.lockSchema(ctx, conn)
	if err != nil {
		return err
	}
	defer unlock()
	snap, created, err := db.inspectOrCreate(ctx, conn)
	if err != nil || created {
		return err
	}
	rev, err := snap.Revision()
	if err != nil {
		return err
	}
	if rev == "" {
		return schema.ErrNotMLflow
	}
	if schema.Classify(rev) == schema.RevisionUnknown {
		if err := schema.CheckUsable(snap); err != nil {
			return err
		}
		log.Warn("database is stamped by a revision Ferry does not know (newer upstream?); nothing to upgrade, and every table and column Ferry uses is present", "revision", rev)
		return nil
	}
	if err := schema.Upgrade(ctx, conn, db.dialect, log); err != nil {
		return fmt.Errorf("upgrade %s from %s: %w", db.cfg.Redacted, rev, err)
	}
	log.Info("database schema is at head", "revision", schema.Head)
	return nil
}

// connect parses uri and opens the pools, retrying the first connection
// as upstream does (10 attempts, 0.1·(2^n−1) s apart) but capped so a
// wrong URI fails within seconds.
func connect(ctx context.Context, uri string, log *slog.Logger) (*DB, error) {
	cfg, err := dburi.Parse(uri)
	if err != nil {
		return nil, err
	}
	db := &DB{dialect: cfg.Dialect, cfg: cfg, log: log}
	switch cfg.Dialect {
	case schema.SQLite:
		err = db.openSQLite()
	case schema.MySQL:
		conn, cerr := mysql.NewConnector(cfg.MySQL)
		if cerr != nil {
			return nil, cerr
		}
		db.writer = sql.OpenDB(conn)
		db.reader = db.writer
		applyPool(db.writer, cfg.Pool)
	default:
		db.writer, err = sql.Open(cfg.Driver, cfg.DSN)
		db.reader = db.writer
		if err == nil {
			applyPool(db.writer, cfg.Pool)
		}
	}
	if err != nil {
		return nil, err
	}
	var perr error
	for attempt := 1; attempt <= 5; attempt++ {
		if perr = db.writer.PingContext(ctx); perr == nil {
			return db, nil
		}
		select {
		case <-ctx.Done():
			attempt = 99
		case <-time.After(time.Duration(100*((1<<attempt)-1)) * time.Millisecond):
		}
	}
	_ = db.Close()
	return nil, fmt.Errorf("connect to %s: %w", cfg.Redacted, perr)
}

// applyPool maps SQLAlchemy's QueuePool onto database/sql: pool_size
// connections kept idle, pool_size+max_overflow open at most, recycled
// after pool_recycle.
func applyPool(db *sql.DB, p dburi.Pool) {
	size, overflow := 5, 10
	if p.Size > 0 {
		size = p.Size
	}
	if p.MaxOverflow > 0 {
		overflow = p.MaxOverflow
	}
	db.SetMaxIdleConns(size)
	db.SetMaxOpenConns(size + overflow)
	db.SetConnMaxLifetime(p.Recycle)
}

// sqliteParams are upstream's per-connection pragmas (foreign keys,
// 20 s busy timeout, case-sensitive LIKE) plus WAL so readers never
// block the writer.
const sqliteParams = "_foreign_keys=1&_busy_timeout=20000&_case_sensitive_like=1&_journal_mode=WAL&_synchronous=NORMAL"

func (db *DB) openSQLite() error {
	cfg := db.cfg
	if cfg.Memory {
		// One connection that never closes: each new connection to
		// :memory: would be a different, empty database.
		w, err := sql.Open(cfg.Driver, "file::memory:?_foreign_keys=1&_case_sensitive_like=1")
		if err != nil {
			return err
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		db.writer, db.reader = w, w
		return nil
	}
	if dir := filepath.Dir(cfg.SQLitePath); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", cfg.SQLitePath, err)
		}
	}
	w, err := sql.Open(cfg.Driver, cfg.DSN+"?"+sqliteParams+"&_txlock=immediate")
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	r, err := sql.Open(cfg.Driver, cfg.DSN+"?"+sqliteParams+"&_query_only=1")
	if err != nil {
		_ = w.Close()
		return err
	}
	n := 4
	if cfg.Pool.Size > 0 {
		n = cfg.Pool.Size
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.writer, db.reader = w, r
	return nil
}
