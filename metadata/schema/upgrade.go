package schema

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// obsoleteIndexes are indexes that revisions after Base36 replaced; the
// upgrade drops them where present.
var obsoleteIndexes = map[string][]string{
	"jobs":                    {"index_jobs_function_status_creation_time"},
	"secrets":                 {"unique_secret_name"},
	"endpoints":               {"unique_endpoint_name"},
	"model_definitions":       {"unique_model_definition_name"},
	"endpoint_model_mappings": {"unique_endpoint_model_mapping"},
}

// obsoleteUniques are single-column unique constraints that the
// workspace revision (1b5f0d9ad7c1) replaced by (workspace, column) keys.
var obsoleteUniques = map[string][]string{
	"experiments":       {"name"},
	"registered_models": {"name"},
	"secrets":           {"secret_name"},
	"endpoints":         {"name"},
	"model_definitions": {"name"},
}

// renamedColumns maps table -> head column -> the name it had before
// (revision 5d2d30f0abce renamed jobs.function_fullname).
var renamedColumns = map[string]map[string]string{
	"jobs": {"job_name": "function_fullname"},
}

// Upgrade brings a database at Base36 or any later revision to Head
// through conn. It is declarative: it compares the live schema with the
// head model and applies what is missing (tables, columns, keys,
// constraints, indexes, the secrets trigger, the workspaces seed row),
// which is what the 15 upstream revisions after Base36 add, then stamps
// Head. Running it on a head database changes nothing.
func Upgrade(ctx context.Context, conn *sql.Conn, d Dialect, log *slog.Logger) error {
	snap, err := Inspect(ctx, conn, d)
	if err != nil {
		return err
	}
	rev, err := snap.Revision()
	if err != nil {
		return err
	}
	switch Classify(rev) {
	case RevisionHead:
		return nil
	case RevisionUpgradable:
	case RevisionTooOld:
		return fmt.Errorf("database is at alembic revision %s, older than MLflow 3.6 (%s): run upstream's 'mlflow db upgrade' first, then Ferry's", rev, Base36)
	default:
		return fmt.Errorf("database is at alembic revision %q, which Ferry does not know (newer upstream?): nothing to upgrade", rev)
	}
	log.Info("upgrading database schema", "from", rev, "to", Head, "dialect", d.String())
	if d == SQLite {
		// Table rebuilds need foreign keys off, which SQLite only allows
		// outside a transaction.
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
			return err
		}
		defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON") }()
	}
	return inTx(ctx, conn, d, func(q Querier) error {
		// Another process may have upgraded meanwhile (on SQLite, where
		// only this BEGIN IMMEDIATE transaction serialises processes).
		if snap, err := Inspect(ctx, q, d); err != nil {
			return err
		} else if rev, err := snap.Revision(); err != nil || rev == Head {
			return err
		}
		m := &migrator{ctx: ctx, q: q, d: d, log: log}
		if d == SQLite {
			err = m.convergeSQLite()
		} else {
			err = m.convergeAlter()
		}
		if err != nil {
			return err
		}
		if err := m.finish(); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, "UPDATE alembic_version SET version_num = '"+Head+"'")
		return err
	})
}

type migrator struct {
	ctx  context.Context
	q    Querier
	d    Dialect
	log  *slog.Logger
	snap *Snapshot
}

func (m *migrator) exec(stmt string) error {
	m.log.Debug("migration step", "sql", stmt)
	if _, err := m.q.ExecContext(m.ctx, stmt); err != nil {
		return fmt.Errorf("%w\n%s", err, stmt)
	}
	return nil
}

func (m *migrator) refresh() error {
	snap, err := Inspect(m.ctx, m.q, m.d)
	m.snap = snap
	return err
}

func (m *migrator) table(name string) *TableInfo { return m.snap.Tables[name] }

// convergeSQLite rebuilds every table whose columns, primary key or
// unique constraints differ from the head model (SQLite cannot alter
// keys), creating missing tables on the way.
func (m *migrator) convergeSQLite() error {
	if err := m.refresh(); err != nil {
		return err
	}
	for i := range headTables {
		t := &headTables[i]
		live := m.table(t.Name)
		if live == nil {
			if err := m.exec(CreateTableSQL(m.d, t)); err != nil {
				return err
			}
			continue
		}
		if !m.needsRebuild(t, live) {
			continue
		}
		if err := m.rebuildSQLite(t, live); err != nil {
			return err
		}
	}
	return m.refresh()
}

func (m *migrator) needsRebuild(t *Table, live *TableInfo) bool {
	for _, c := range t.Columns {
		if !live.Columns[c.Name] {
			return true
		}
	}
	if !slices.Equal(live.PK, t.PK) {
		return true
	}
	for _, u := range t.Uniques {
		if !slices.ContainsFunc(live.Uniques, func(cols []string) bool { return slices.Equal(cols, u.Columns) }) {
			return true
		}
	}
	return false
}

func (m *migrator) rebuildSQLite(t *Table, live *TableInfo) error {
	tmp := *t
	tmp.Name = "_ferry_rebuild_" + t.Name
	if err := m.exec(CreateTableSQL(m.d, &tmp)); err != nil {
		return err
	}
	var dst, src []string
	for _, c := range t.Columns {
		if c.Generated != "" {
			continue
		}
		from := c.Name
		if !live.Columns[from] {
			from = renamedColumns[t.Name][c.Name]
			if from == "" || !live.Columns[from] {
				continue // new column: its default fills it
			}
		}
		dst = append(dst, c.Name)
		src = append(src, from)
	}
	steps := []string{
		fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", tmp.Name, strings.Join(dst, ", "), strings.Join(src, ", "), t.Name),
		"DROP TABLE " + t.Name,
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", tmp.Name, t.Name),
	}
	for _, s := range steps {
		if err := m.exec(s); err != nil {
			return err
		}
	}
	return nil
}

// convergeAlter applies the head model with ALTER TABLE (PostgreSQL,
// MySQL), in an order that keeps every foreign key satisfiable.
func (m *migrator) convergeAlter() error {
	if err := m.refresh(); err != nil {
		return err
	}
	// 1. Renamed columns (jobs.function_fullname -> job_name).
	for table, cols := range renamedColumns {
		live := m.table(table)
		for newName, oldName := range cols {
			if live != nil && live.Columns[oldName] && !live.Columns[newName] {
				for _, ix := range obsoleteIndexes[table] {
					if _, ok := live.Indexes[ix]; ok {
						if err := m.exec(DropIndexSQL(m.d, table, ix)); err != nil {
							return err
						}
					}
				}
				if err := m.exec(fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", m.d.Quote(table), m.d.Quote(oldName), m.d.Quote(newName))); err != nil {
					return err
				}
			}
		}
	}
	if err := m.refresh(); err != nil {
		return err
	}
	// 2. Foreign keys that head names differently (the registry FKs before
	// the workspace revision): drop them before their keys change.
	for i := range headTables {
		t := &headTables[i]
		live := m.table(t.Name)
		if live == nil {
			continue
		}
		for _, f := range t.FKs {
			if f.Name == "" {
				continue
			}
			if _, ok := live.Constraints[f.Name]; ok {
				continue
			}
			for name, ref := range live.FKRefs {
				if ref == f.RefTable && !slices.ContainsFunc(t.FKs, func(h ForeignKey) bool { return h.Name == name }) {
					if err := m.exec(m.dropConstraintSQL(t.Name, name, 'f')); err != nil {
						return err
					}
				}
			}
		}
	}
	if err := m.refresh(); err != nil {
		return err
	}
	// 3. Uniques that head widened with the workspace: drop the old
	// single-column one, and obsolete indexes.
	for i := range headTables {
		t := &headTables[i]
		live := m.table(t.Name)
		if live == nil {
			continue
		}
		if old := obsoleteUniques[t.Name]; old != nil {
			for name, cols := range live.Indexes {
				if name != "primary" && slices.Equal(cols, old) && slices.ContainsFunc(live.Uniques, func(c []string) bool { return slices.Equal(c, cols) }) {
					if err := m.dropIndexOrConstraint(t.Name, live, name); err != nil {
						return err
					}
				}
			}
		}
		for _, ix := range obsoleteIndexes[t.Name] {
			if _, ok := live.Indexes[ix]; ok {
				if err := m.dropIndexOrConstraint(t.Name, live, ix); err != nil {
					return err
				}
			}
		}
	}
	if err := m.refresh(); err != nil {
		return err
	}
	// 4. Missing tables and columns, then primary keys.
	for i := range headTables {
		t := &headTables[i]
		live := m.table(t.Name)
		if live == nil {
			if err := m.exec(CreateTableSQL(m.d, t)); err != nil {
				return err
			}
			continue
		}
		for _, c := range t.Columns {
			if !live.Columns[c.Name] {
				if err := m.exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", m.d.Quote(t.Name), ColumnDDL(m.d, c))); err != nil {
					return err
				}
			}
		}
		if len(live.PK) > 0 && !slices.Equal(live.PK, t.PK) {
			var stmt string
			if m.d == MySQL {
				stmt = fmt.Sprintf("ALTER TABLE %s DROP PRIMARY KEY, ADD PRIMARY KEY (%s)", m.d.Quote(t.Name), quoteList(m.d, t.PK))
			} else {
				old := t.PKName
				for name, kind := range live.Constraints {
					if kind == 'p' {
						old = name
					}
				}
				stmt = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s PRIMARY KEY (%s)",
					t.Name, old, t.PKName, quoteList(m.d, t.PK))
			}
			if err := m.exec(stmt); err != nil {
				return err
			}
		}
	}
	if err := m.refresh(); err != nil {
		return err
	}
	// 5. Missing named uniques and foreign keys.
	for i := range headTables {
		t := &headTables[i]
		live := m.table(t.Name)
		for _, u := range t.Uniques {
			if _, ok := live.Indexes[u.Name]; !ok {
				if err := m.exec(fmt.Sprintf("ALTER TABLE %s ADD %s", m.d.Quote(t.Name), UniqueDDL(m.d, u))); err != nil {
					return err
				}
			}
		}
		for _, f := range t.FKs {
			if _, ok := live.Constraints[f.Name]; f.Name != "" && !ok {
				if err := m.exec(fmt.Sprintf("ALTER TABLE %s ADD %s", m.d.Quote(t.Name), FKDDL(m.d, f))); err != nil {
					return err
				}
			}
		}
	}
	return m.refresh()
}

func (m *migrator) dropConstraintSQL(table, name string, kind byte) string {
	if m.d == MySQL {
		switch kind {
		case 'f':
			return fmt.Sprintf("ALTER TABLE %s DROP FOREIGN KEY %s", m.d.Quote(table), m.d.Quote(name))
		case 'u':
			return fmt.Sprintf("ALTER TABLE %s DROP INDEX %s", m.d.Quote(table), m.d.Quote(name))
		}
	}
	return fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", m.d.Quote(table), m.d.Quote(name))
}

func (m *migrator) dropIndexOrConstraint(table string, live *TableInfo, name string) error {
	if kind, ok := live.Constraints[name]; ok {
		return m.exec(m.dropConstraintSQL(table, name, kind))
	}
	return m.exec(DropIndexSQL(m.d, table, name))
}

// finish creates missing or reshaped head indexes, drops obsolete ones,
// recreates the secrets trigger and seeds the default workspace.
func (m *migrator) finish() error {
	for i := range headTables {
		t := &headTables[i]
		live := m.table(t.Name)
		for _, ix := range obsoleteIndexes[t.Name] {
			if _, ok := live.Indexes[ix]; ok {
				if err := m.dropIndexOrConstraint(t.Name, live, ix); err != nil {
					return err
				}
			}
		}
		for _, ix := range t.Indexes {
			cols, ok := live.Indexes[ix.Name]
			if ok && slices.Equal(cols, ix.Columns) {
				continue
			}
			if ok {
				if err := m.exec(DropIndexSQL(m.d, t.Name, ix.Name)); err != nil {
					return err
				}
			}
			if err := m.exec(CreateIndexSQL(m.d, t.Name, ix)); err != nil {
				return err
			}
		}
	}
	if !m.snap.Triggers["prevent_secrets_aad_mutation"] {
		for _, stmt := range secretsTrigger(m.d) {
			if err := m.exec(stmt); err != nil {
				return err
			}
		}
	}
	n, err := queryStrings(m.ctx, m.q, "SELECT name FROM workspaces WHERE name = 'default'")
	if err != nil {
		return err
	}
	if len(n) == 0 {
		return m.exec(seedWorkspaceSQL(m.d))
	}
	return nil
}
