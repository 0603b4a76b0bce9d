package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ferryml/ferry/metadata/schema"
)

// ErrSchema marks a database Ferry refuses to serve; the message says why
// and what to run.
var ErrSchema = errors.New("unusable database schema")

// inspectOrCreate reads the schema behind conn; on an empty database it
// creates upstream's head schema (created = true) and reads it again. It
// is the start of both `ferry server` (prepare) and `ferry db upgrade`,
// and runs with the schema lock held (lockSchema).
func (db *DB) inspectOrCreate(ctx context.Context, conn *sql.Conn) (snap *schema.Snapshot, created bool, err error) {
	snap, err = schema.Inspect(ctx, conn, db.dialect)
	if err != nil {
		return nil, false, fmt.Errorf("inspect %s: %w", db.cfg.Redacted, err)
	}
	if !schema.IsEmpty(snap) {
		return snap, false, nil
	}
	db.log.Info("empty database: creating upstream MLflow schema", "uri", db.cfg.Redacted, "revision", schema.Head)
	err = schema.Create(ctx, conn, db.dialect)
	created = err == nil
	if errors.Is(err, schema.ErrNotEmpty) {
		db.log.Info("schema created meanwhile by another process", "uri", db.cfg.Redacted)
	} else if err != nil {
		return nil, false, fmt.Errorf("create schema in %s: %w", db.cfg.Redacted, err)
	}
	if snap, err = schema.Inspect(ctx, conn, db.dialect); err != nil {
		return nil, false, err
	}
	return snap, created, nil
}

// prepare makes a freshly connected database servable, under the schema
// lock: create the schema on an empty one, then check the revision, the tables Ferry uses and
// upstream's single-tenant guard.
func (db *DB) prepare(ctx context.Context) error {
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
	snap, _, err := db.inspectOrCreate(ctx, conn)
	if err != nil {
		return err
	}
	rev, err := snap.Revision()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSchema, err)
	}
	switch {
	case rev == "":
		return fmt.Errorf("%w: %v", ErrSchema, schema.ErrNotMLflow)
	case schema.Classify(rev) == schema.RevisionUpgradable || schema.Classify(rev) == schema.RevisionTooOld:
		return fmt.Errorf("%w: the database is at MLflow schema revision %s, older than %s which Ferry needs; take a backup, then run 'ferry db upgrade %s'", ErrSchema, rev, schema.Head, db.cfg.Redacted)
	}
	if err := schema.CheckUsable(snap); err != nil {
		return fmt.Errorf("%w: %v", ErrSchema, err)
	}
	if schema.Classify(rev) == schema.RevisionUnknown {
		db.log.Warn("database is stamped by an MLflow schema revision Ferry does not know (a newer upstream?); every table and column Ferry uses is present, so Ferry serves it", "revision", rev, "ferry_revision", schema.Head)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM experiments WHERE workspace <> 'default'").Scan(&n); err != nil {
		return fmt.Errorf("check workspaces: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: Cannot disable workspaces because experiments exist outside the default workspace (i.e., assigned to non-default workspaces). Ferry serves the default workspace only; move those experiments back to the default workspace (upstream: 'mlflow db migrate-to-default-workspace')", ErrSchema)
	}
	return nil
}
