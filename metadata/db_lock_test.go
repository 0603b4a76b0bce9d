package metadata

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/metadata/schema"
)

// lockedBuffer is a bytes.Buffer a logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Several processes' worth of Open and Upgrade at the same moment on one
// empty database: every one succeeds and the schema is stamped once.
func TestConcurrentOpenAndUpgradeCreateSchemaOnce(t *testing.T) {
	t.Parallel()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const n = 4
			start := make(chan struct{})
			errs := make(chan error, 2*n)
			var wg sync.WaitGroup
			for i := range 2 * n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if i%2 == 0 {
						errs <- Upgrade(ctx, b.URI, quiet)
						return
					}
					db, err := Open(ctx, b.URI, quiet)
					if err == nil {
						err = db.Close()
					}
					errs <- err
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			raw := b.OpenRaw(t)
			var revs []string
			rows, err := raw.QueryContext(ctx, "SELECT version_num FROM alembic_version")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var r string
				if err := rows.Scan(&r); err != nil {
					t.Fatal(err)
				}
				revs = append(revs, r)
			}
			rows.Close()
			if len(revs) != 1 || revs[0] != schema.Head {
				t.Fatalf("alembic_version rows = %v, want [%s]", revs, schema.Head)
			}
		})
	}
}

// holdLock takes the schema lock of b on a connection of its own, as
// another Ferry process would, and returns the release function.
func holdLock(t *testing.T, b testdb.Backend) func() {
	t.Helper()
	ctx := context.Background()
	raw := b.OpenRaw(t)
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var q, rel string
	var arg any
	switch b.Dialect {
	case schema.Postgres:
		q, rel, arg = "SELECT pg_advisory_lock($1)", "SELECT pg_advisory_unlock($1)", PostgresSchemaLockKey
	case schema.MySQL:
		var name string
		if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		q, rel, arg = "SELECT GET_LOCK(?, 5)", "SELECT RELEASE_LOCK(?)", mysqlLockName(name)
	}
	var got sql.NullInt64
	if b.Dialect == schema.Postgres {
		_, err = conn.ExecContext(ctx, q, arg)
		got.Valid, got.Int64 = err == nil, 1
	} else {
		err = conn.QueryRowContext(ctx, q, arg).Scan(&got)
	}
	if err != nil || got.Int64 != 1 {
		t.Fatalf("take lock: %v %v", got, err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, rel, arg); err != nil {
				t.Error(err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// Open waits (and says so) while another session holds the schema lock,
// proceeds when it is released, and gives up after schemaLockWait. Not
// parallel: it shortens schemaLockWait.
func TestSchemaLockWaitsThenGivesUp(t *testing.T) {
	for _, b := range []testdb.Backend{testdb.Postgres(t), testdb.MySQL(t)} {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			release := holdLock(t, b)
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			done := make(chan error, 1)
			go func() {
				db, err := Open(ctx, b.URI, log)
				if err == nil {
					db.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("Open returned while the lock was held elsewhere: %v", err)
			case <-time.After(time.Second):
			}
			if !strings.Contains(logs.String(), "waiting for the schema lock") {
				t.Fatalf("no waiting message in logs:\n%s", logs.String())
			}
			release()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Open still blocked 30 s after the lock was released")
			}
			if !strings.Contains(logs.String(), "schema lock acquired") {
				t.Fatalf("no acquired message in logs:\n%s", logs.String())
			}

			old := schemaLockWait
			schemaLockWait = 300 * time.Millisecond
			defer func() { schemaLockWait = old }()
			holdLock(t, b)
			_, err := Open(ctx, b.URI, quiet)
			if err == nil || !strings.Contains(err.Error(), "gave up after") {
				t.Fatalf("Open with the lock held elsewhere: %v, want a give-up error", err)
			}
		})
	}
}

func TestMySQLLockNameFitsLimit(t *testing.T) {
	t.Parallel()
	if got := mysqlLockName("ferry"); got != "ferry.schema.ferry" {
		t.Errorf("short name: %q", got)
	}
	long := mysqlLockName(strings.Repeat("d", 64))
	if len(long) > 64 || !strings.HasPrefix(long, SchemaLockName+".") {
		t.Errorf("long name %q (%d chars)", long, len(long))
	}
	if long == mysqlLockName(strings.Repeat("d", 63)+"e") {
		t.Error("distinct long names collide")
	}
}

// Upgrades of an MLflow 3.6 database run from several processes at once
// (and servers starting beside them): one upgrades, the others wait and
// find it at head; every Open after that succeeds.
func TestConcurrentUpgradeOfLegacyDatabase(t *testing.T) {
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
			start := make(chan struct{})
			errs := make(chan error, 3)
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs <- Upgrade(ctx, b.URI, quiet)
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			var rev string
			if err := raw.QueryRowContext(ctx, "SELECT version_num FROM alembic_version").Scan(&rev); err != nil || rev != schema.Head {
				t.Fatalf("revision %q, %v", rev, err)
			}
			db, err := Open(ctx, b.URI, quiet)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		})
	}
}
