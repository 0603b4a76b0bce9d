package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/metadata/schema"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func conn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func inspect(t *testing.T, c *sql.Conn, d schema.Dialect) *schema.Snapshot {
	t.Helper()
	snap, err := schema.Inspect(context.Background(), c, d)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// assertHead checks snap against the head model: every table with exactly
// the model's columns, primary key, uniques and named indexes.
func assertHead(t *testing.T, snap *schema.Snapshot) {
	t.Helper()
	if rev, err := snap.Revision(); err != nil || rev != schema.Head {
		t.Fatalf("revision = %q, %v; want %s", rev, err, schema.Head)
	}
	if got := len(schema.Tables()); got != 47 {
		t.Fatalf("head model has %d tables, upstream 3.11 has 47", got)
	}
	for _, tbl := range schema.Tables() {
		live := snap.Tables[tbl.Name]
		if live == nil {
			t.Errorf("table %s missing", tbl.Name)
			continue
		}
		var want, got []string
		for _, c := range tbl.Columns {
			want = append(want, c.Name)
		}
		for c := range live.Columns {
			got = append(got, c)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s columns = %v, want %v", tbl.Name, got, want)
		}
		if !slices.Equal(live.PK, tbl.PK) {
			t.Errorf("%s primary key = %v, want %v", tbl.Name, live.PK, tbl.PK)
		}
		for _, ix := range tbl.Indexes {
			if cols, ok := live.Indexes[ix.Name]; !ok || !slices.Equal(cols, ix.Columns) {
				t.Errorf("%s index %s = %v (present %v), want %v", tbl.Name, ix.Name, cols, ok, ix.Columns)
			}
		}
		for _, u := range tbl.Uniques {
			if !slices.ContainsFunc(live.Uniques, func(c []string) bool { return slices.Equal(c, u.Columns) }) {
				t.Errorf("%s unique %s %v missing (have %v)", tbl.Name, u.Name, u.Columns, live.Uniques)
			}
		}
		for _, cols := range live.Uniques {
			isIndex := slices.ContainsFunc(tbl.Indexes, func(ix schema.Index) bool { return ix.Unique && slices.Equal(ix.Columns, cols) })
			isUnique := slices.ContainsFunc(tbl.Uniques, func(u schema.Unique) bool { return slices.Equal(u.Columns, cols) })
			if !isIndex && !isUnique {
				t.Errorf("%s has a unique %v the head model does not", tbl.Name, cols)
			}
		}
	}
	if !snap.Triggers["prevent_secrets_aad_mutation"] {
		t.Error("trigger prevent_secrets_aad_mutation missing")
	}
	if err := schema.CheckUsable(snap); err != nil {
		t.Error(err)
	}
}

func TestCreateHead(t *testing.T) {
	t.Parallel()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := conn(t, b.OpenRaw(t))
			ctx := context.Background()
			if !schema.IsEmpty(inspect(t, c, b.Dialect)) {
				t.Fatal("fresh database is not empty")
			}
			if err := schema.Create(ctx, c, b.Dialect); err != nil {
				t.Fatal(err)
			}
			snap := inspect(t, c, b.Dialect)
			assertHead(t, snap)
			var desc string
			if err := c.QueryRowContext(ctx, "SELECT description FROM workspaces WHERE name = 'default'").Scan(&desc); err != nil || desc != "Default workspace for legacy resources" {
				t.Errorf("workspace seed row = %q, %v", desc, err)
			}
			// Upgrading a head database is a no-op.
			if err := schema.Upgrade(ctx, c, b.Dialect, quiet); err != nil {
				t.Fatal(err)
			}
			assertHead(t, inspect(t, c, b.Dialect))
		})
	}
}

// TestHeadConstraints exercises the constraints upstream relies on.
func TestHeadConstraints(t *testing.T) {
	t.Parallel()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := conn(t, b.OpenRaw(t))
			ctx := context.Background()
			if err := schema.Create(ctx, c, b.Dialect); err != nil {
				t.Fatal(err)
			}
			exec := func(q string) error { _, err := c.ExecContext(ctx, q); return err }
			q := b.Dialect.Quote
			if err := exec("INSERT INTO experiments (name, lifecycle_stage) VALUES ('a', 'active')"); err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name, sql string
			}{
				{"duplicate experiment name", "INSERT INTO experiments (name, lifecycle_stage) VALUES ('a', 'active')"},
				{"bad lifecycle", "INSERT INTO experiments (name, lifecycle_stage) VALUES ('b', 'gone')"},
				{"bad run status", "INSERT INTO runs (run_uuid, status, experiment_id) VALUES ('r1', 'WEIRD', 1)"},
				{"run of missing experiment", "INSERT INTO runs (run_uuid, status, experiment_id) VALUES ('r2', 'RUNNING', 999)"},
				{"secret rename", "UPDATE secrets SET secret_name = 'y'"},
			}
			if err := exec("INSERT INTO secrets (secret_id, secret_name, encrypted_value, wrapped_dek, kek_version, masked_value, created_at, last_updated_at) VALUES ('s', 'x', 'v', 'k', 1, 'm', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			for _, tc := range cases {
				if err := exec(tc.sql); err == nil {
					t.Errorf("%s: accepted", tc.name)
				}
			}
			// Same name in another workspace is allowed.
			if err := exec("INSERT INTO experiments (name, lifecycle_stage, workspace) VALUES ('a', 'active', 'other')"); err != nil {
				t.Errorf("name in another workspace: %v", err)
			}
			// Generated duration column.
			if err := exec("INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, status) VALUES ('tr', 1, 1, 'OK')"); err != nil {
				t.Fatal(err)
			}
			if err := exec("INSERT INTO spans (trace_id, experiment_id, span_id, " + q("status") + ", start_time_unix_nano, end_time_unix_nano, content) VALUES ('tr', 1, 's', 'OK', 10, 25, '')"); err != nil {
				t.Fatal(err)
			}
			var dur int64
			if err := c.QueryRowContext(ctx, "SELECT duration_ns FROM spans").Scan(&dur); err != nil || dur != 15 {
				t.Errorf("duration_ns = %d, %v; want 15", dur, err)
			}
		})
	}
}

// seed36 inserts rows that the workspace revision has to carry over.
var seed36 = []string{
	"INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (1, 'exp', '/a/1', 'active', 5, 6)",
	"INSERT INTO runs (run_uuid, name, status, experiment_id, lifecycle_stage, start_time) VALUES ('r1', 'run', 'RUNNING', 1, 'active', 7)",
	"INSERT INTO metrics (`key`, value, timestamp, run_uuid, step, is_nan) VALUES ('m', 1.5, 3, 'r1', 2, false)",
	"INSERT INTO registered_models (name, creation_time) VALUES ('model', 1)",
	"INSERT INTO model_versions (name, version, current_stage, status) VALUES ('model', 1, 'None', 'READY')",
	"INSERT INTO registered_model_tags (`key`, value, name) VALUES ('k', 'v', 'model')",
	"INSERT INTO model_version_tags (`key`, value, name, version) VALUES ('k', 'v', 'model', 1)",
	"INSERT INTO registered_model_aliases (alias, version, name) VALUES ('champ', 1, 'model')",
	"INSERT INTO jobs (id, creation_time, function_fullname, params, status, retry_count, last_update_time) VALUES ('j', 1, 'pkg.fn', '{}', 0, 0, 1)",
	"INSERT INTO webhooks (webhook_id, name, url) VALUES ('w', 'hook', 'https://x')",
}

func TestUpgradeFrom36(t *testing.T) {
	t.Parallel()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := conn(t, b.OpenRaw(t))
			ctx := context.Background()
			for _, stmt := range schema.Legacy36DDL(b.Dialect) {
				if _, err := c.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
			}
			for _, stmt := range seed36 {
				if b.Dialect != schema.MySQL {
					stmt = strings.ReplaceAll(stmt, "`", "")
				}
				if _, err := c.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
			}
			before := inspect(t, c, b.Dialect)
			if err := schema.CheckUsable(before); err == nil {
				t.Error("a 3.6 database passes the usability check")
			}
			if err := schema.Upgrade(ctx, c, b.Dialect, quiet); err != nil {
				t.Fatal(err)
			}
			assertHead(t, inspect(t, c, b.Dialect))
			checks := []struct {
				query string
				want  string
			}{
				{"SELECT name FROM experiments WHERE workspace = 'default' AND experiment_id = 1", "exp"},
				{"SELECT job_name FROM jobs WHERE workspace = 'default'", "pkg.fn"},
				{"SELECT name FROM model_versions WHERE workspace = 'default' AND version = 1", "model"},
				{"SELECT value FROM model_version_tags WHERE workspace = 'default'", "v"},
				{"SELECT value FROM registered_model_tags WHERE workspace = 'default'", "v"},
				{"SELECT alias FROM registered_model_aliases WHERE workspace = 'default'", "champ"},
				{"SELECT name FROM webhooks WHERE workspace = 'default'", "hook"},
				{"SELECT run_uuid FROM metrics WHERE step = 2", "r1"},
			}
			for _, ck := range checks {
				var got string
				if err := c.QueryRowContext(ctx, ck.query).Scan(&got); err != nil || got != ck.want {
					t.Errorf("%s = %q, %v; want %q", ck.query, got, err, ck.want)
				}
			}
			// The new keys hold: renaming a registered model cascades.
			if _, err := c.ExecContext(ctx, "UPDATE registered_models SET name = 'renamed' WHERE name = 'model'"); err != nil {
				t.Fatalf("rename: %v", err)
			}
			var n int
			if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM model_versions WHERE name = 'renamed'").Scan(&n); err != nil || n != 1 {
				t.Errorf("rename did not cascade: %d, %v", n, err)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := map[string]schema.RevisionKind{
		schema.Head:     schema.RevisionHead,
		schema.Base36:   schema.RevisionUpgradable,
		"1bd49d398cd23": schema.RevisionUpgradable,
		"ae8bbe7743c9":  schema.RevisionUpgradable,
		"451aebb31d03":  schema.RevisionTooOld,
		"3da73c924c2f":  schema.RevisionTooOld,
		"ffffffffffff":  schema.RevisionUnknown,
		"":              schema.RevisionUnknown,
	}
	for rev, want := range cases {
		if got := schema.Classify(rev); got != want {
			t.Errorf("Classify(%q) = %v, want %v", rev, got, want)
		}
	}
}

func TestCheckUsableNamesMissingColumns(t *testing.T) {
	t.Parallel()
	b := testdb.SQLite(t)
	c := conn(t, b.OpenRaw(t))
	ctx := context.Background()
	if err := schema.Create(ctx, c, b.Dialect); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"DROP TABLE input_tags",
		"ALTER TABLE runs DROP COLUMN deleted_time",
		"UPDATE alembic_version SET version_num = 'abcdef123456'",
	} {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	err := schema.CheckUsable(inspect(t, c, b.Dialect))
	var me *schema.MissingError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want *MissingError", err)
	}
	if !slices.Contains(me.Missing, "input_tags") || !slices.Contains(me.Missing, "runs.deleted_time") || len(me.Missing) != 2 {
		t.Errorf("missing = %v", me.Missing)
	}
	if me.Revision != "abcdef123456" || !strings.Contains(err.Error(), "abcdef123456") {
		t.Errorf("error does not name the revision: %v", err)
	}
}
