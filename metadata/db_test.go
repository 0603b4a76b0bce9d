package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/metadata/schema"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestOpenCreatesEmptyDatabase(t *testing.T) {
	t.Parallel()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := Open(ctx, b.URI, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var rev string
			if err := db.Read(ctx, func(tx *Tx) error {
				return tx.QueryRow(ctx, "SELECT version_num FROM alembic_version").Scan(&rev)
			}); err != nil || rev != schema.Head {
				t.Fatalf("revision = %q, %v", rev, err)
			}
			db.Close()
			// Reopening a head database works and changes nothing.
			db2, err := Open(ctx, b.URI, quiet)
			if err != nil {
				t.Fatal(err)
			}
			db2.Close()
		})
	}
}

func TestOpenRefusesOldAndForeignDatabases(t *testing.T) {
	t.Parallel()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			raw := b.OpenRaw(t)
			for _, stmt := range schema.Legacy36DDL(b.Dialect) {
				if _, err := raw.ExecContext(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Open(ctx, b.URI, quiet)
			if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), schema.Base36) || !strings.Contains(err.Error(), "ferry db upgrade") {
				t.Fatalf("Open(3.6 db) = %v", err)
			}
			if err := Upgrade(ctx, b.URI, quiet); err != nil {
				t.Fatal(err)
			}
			db, err := Open(ctx, b.URI, quiet)
			if err != nil {
				t.Fatalf("Open after upgrade: %v", err)
			}
			db.Close()

			// Stamped by a newer upstream: served while the columns are there.
			if _, err := raw.ExecContext(ctx, "UPDATE alembic_version SET version_num = 'feedfacecafe'"); err != nil {
				t.Fatal(err)
			}
			var logBuf bytes.Buffer
			db, err = Open(ctx, b.URI, slog.New(slog.NewTextHandler(&logBuf, nil)))
			if err != nil {
				t.Fatalf("Open(newer revision) = %v", err)
			}
			db.Close()
			if !strings.Contains(logBuf.String(), "feedfacecafe") {
				t.Errorf("log does not mention the unknown revision: %s", logBuf.String())
			}
			if _, err := raw.ExecContext(ctx, "ALTER TABLE runs DROP COLUMN deleted_time"); err != nil {
				t.Fatal(err)
			}
			_, err = Open(ctx, b.URI, quiet)
			if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "runs.deleted_time") {
				t.Errorf("Open(newer revision, missing column) = %v", err)
			}
		})
	}
}

func TestOpenRefusesNonMLflowAndNonDefaultWorkspace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testdb.SQLite(t)
	raw := b.OpenRaw(t)
	if _, err := raw.ExecContext(ctx, "CREATE TABLE experiments (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, b.URI, quiet); !errors.Is(err, ErrSchema) {
		t.Errorf("Open(foreign experiments table) = %v", err)
	}

	b = testdb.SQLite(t)
	db, err := Open(ctx, b.URI, quiet)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := b.OpenRaw(t).ExecContext(ctx, "INSERT INTO experiments (name, lifecycle_stage, workspace) VALUES ('x', 'active', 'team-a')"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, b.URI, quiet); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "default workspace") {
		t.Errorf("Open(non-default workspace) = %v", err)
	}
}

func TestOpenUnsupportedURIs(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"mssql://u@h/db", "./mlruns", "oracle://h/db"} {
		if _, err := Open(context.Background(), uri, quiet); err == nil {
			t.Errorf("Open(%q) succeeded", uri)
		}
	}
}

// TestSQLiteConcurrentWrites: many writers at once never see
// "database is locked".
func TestSQLiteConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, testdb.SQLite(t).URI, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16*20*2)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				name := fmt.Sprintf("e-%d-%d", w, i)
				errs <- db.Write(ctx, func(tx *Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO experiments (name, lifecycle_stage, workspace) VALUES (?, 'active', 'default')", name)
					return err
				})
				errs <- db.Read(ctx, func(tx *Tx) error {
					var n int
					return tx.QueryRow(ctx, "SELECT COUNT(*) FROM experiments").Scan(&n)
				})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
