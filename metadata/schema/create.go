package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNotEmpty is returned by Create when, inside its transaction, the
// database turns out to have a schema already: another process created it
// between the caller's inspection and Create (see metadata.SchemaLockName).
var ErrNotEmpty = errors.New("database is no longer empty: another process created the schema")

// IsEmpty reports whether snap shows a database Ferry may initialise:
// no alembic_version and no experiments table. Unrelated tables are
// allowed, as upstream allows them (a shared PostgreSQL schema).
func IsEmpty(snap *Snapshot) bool {
	return !snap.HasTable("alembic_version") && !snap.HasTable("experiments")
}

// Create creates the head schema on an empty database through conn and
// stamps alembic_version. On SQLite and PostgreSQL it runs in one
// transaction; MySQL commits DDL implicitly, so a failure there can leave
// a partial schema (as upstream's own migrations can).
//
// It re-inspects the database first, inside the transaction: on SQLite
// that transaction is BEGIN IMMEDIATE (the writer pool's _txlock), so the
// file lock makes check-and-create atomic across processes; it returns
// ErrNotEmpty when the schema appeared meanwhile.
func Create(ctx context.Context, conn *sql.Conn, d Dialect) error {
	return inTx(ctx, conn, d, func(q Querier) error {
		snap, err := Inspect(ctx, q, d)
		if err != nil {
			return err
		}
		if !IsEmpty(snap) {
			return ErrNotEmpty
		}
		for _, stmt := range HeadDDL(d) {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create schema: %w\n%s", err, stmt)
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction on dialects with transactional DDL and
// directly on conn on MySQL.
func inTx(ctx context.Context, conn *sql.Conn, d Dialect, fn func(Querier) error) error {
	if d == MySQL {
		return fn(conn)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
