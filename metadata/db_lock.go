package metadata

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ferryml/ferry/metadata/schema"
)

// SchemaLockName names the database-wide lock that every Ferry process
// holds while it inspects, creates or upgrades the schema (the start of
// `ferry server` and the whole of `ferry db upgrade`), so that replicas
// started at the same moment on an empty database create the schema
// once and the others wait, then find it at head.
//
//   - PostgreSQL: a session-level advisory lock, key PostgresSchemaLockKey
//     (advisory locks are scoped to the current database).
//   - MySQL/MariaDB: GET_LOCK("ferry.schema.<database>"); user locks are
//     server-wide, hence the database name in it (hashed when the name
//     would pass MySQL's 64-character limit).
//   - SQLite: no extra lock: the schema is created and upgraded inside a
//     BEGIN IMMEDIATE transaction that re-checks the schema first, so
//     SQLite's own file lock serialises processes (waiting up to the
//     20 s busy timeout).
//
// Upstream `mlflow server` takes no such lock: an upstream process racing
// Ferry on an empty database is not protected.
const SchemaLockName = "ferry.schema"

// PostgresSchemaLockKey is the pg_advisory_lock key of SchemaLockName:
// the ASCII bytes of "ferry" (0x6665727279).
const PostgresSchemaLockKey int64 = 0x6665727279

// schemaLockWait bounds how long a process waits for another one's
// schema work; an upgrade of a large database can take minutes. A
// variable so tests can shorten it.
var schemaLockWait = 10 * time.Minute

// schemaLockPoll is the interval between attempts to take the lock.
const schemaLockPoll = 200 * time.Millisecond

// lockSchema takes the schema lock on conn (a dedicated connection: the
// lock belongs to its session) and returns the function that releases
// it. It waits at most schemaLockWait, logging once when it has to wait
// and again when it gets the lock.
func (db *DB) lockSchema(ctx context.Context, conn *sql.Conn) (unlock func(), err error) {
	var try func() (bool, error)
	var release string
	var args []any
	switch db.dialect {
	case schema.Postgres:
		args = []any{PostgresSchemaLockKey}
		try = func() (bool, error) {
			var ok bool
			err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", args...).Scan(&ok)
			return ok, err
		}
		release = "SELECT pg_advisory_unlock($1)"
	case schema.MySQL:
		var dbName sql.NullString
		if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
			return nil, db.unavailable(err)
		}
		args = []any{mysqlLockName(dbName.String)}
		try = func() (bool, error) {
			var got sql.NullInt64 // NULL on error, 0 when held elsewhere
			err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", args...).Scan(&got)
			return got.Valid && got.Int64 == 1, err
		}
		release = "SELECT RELEASE_LOCK(?)"
	default:
		return func() {}, nil
	}
	start := time.Now()
	waiting := false
	for {
		ok, err := try()
		if err != nil {
			return nil, fmt.Errorf("take schema lock %s: %w", SchemaLockName, db.unavailable(err))
		}
		if ok {
			break
		}
		if !waiting {
			waiting = true
			db.log.Info("waiting for the schema lock: another process is creating or upgrading the schema",
				"lock", SchemaLockName, "uri", db.cfg.Redacted, "max_wait", schemaLockWait.String())
		}
		if time.Since(start) >= schemaLockWait {
			return nil, fmt.Errorf("gave up after %s waiting for schema lock %s on %s: another process (a long `ferry db upgrade`?) holds it",
				schemaLockWait, SchemaLockName, db.cfg.Redacted)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(schemaLockPoll):
		}
	}
	if waiting {
		db.log.Info("schema lock acquired", "lock", SchemaLockName, "waited", time.Since(start).Round(time.Millisecond).String())
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, release, args...); err != nil {
			// A session that may still hold the lock must not go back to
			// the pool: ErrBadConn from Raw makes database/sql discard it,
			// and closing the session releases the lock server-side.
			db.log.Warn("release schema lock failed; dropping the connection", "err", err)
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}

// mysqlLockName is SchemaLockName qualified by the database, within
// MySQL's 64-character limit for user lock names.
func mysqlLockName(database string) string {
	name := SchemaLockName + "." + database
	if len(name) <= 64 {
		return name
	}
	sum := sha256.Sum256([]byte(database))
	return SchemaLockName + "." + hex.EncodeToString(sum[:20])
}
