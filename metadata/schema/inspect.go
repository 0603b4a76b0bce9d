package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Querier is what introspection and migration need from a connection:
// satisfied by *sql.DB, *sql.Conn and *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// TableInfo is what Ferry knows about one live table.
type TableInfo struct {
	Columns map[string]bool     // lower-cased names
	Indexes map[string][]string // index name (lower-cased) -> columns, PK and constraint-backed included
	PK      []string            // primary-key columns in key order
	// Uniques are the column lists of unique, non-primary indexes.
	Uniques [][]string
	// Constraints maps named constraints (lower-cased) to their kind:
	// 'p', 'u', 'f' or 'c'. Empty on SQLite, whose constraints are
	// compared through Indexes and Uniques instead.
	Constraints map[string]byte
	// FKRefs maps foreign-key names (lower-cased) to the referenced table.
	FKRefs map[string]string
}

// Snapshot is the live schema of a database, as far as Ferry cares.
type Snapshot struct {
	Tables map[string]*TableInfo // lower-cased table names
	// Revisions are the rows of alembic_version (nil if the table is
	// absent).
	Revisions []string
	// Triggers are the trigger names (lower-cased) of the database.
	Triggers map[string]bool
}

// HasTable reports whether the database has table name.
func (s *Snapshot) HasTable(name string) bool { return s.Tables[strings.ToLower(name)] != nil }

// HasColumn reports whether table has column.
func (s *Snapshot) HasColumn(table, column string) bool {
	t := s.Tables[strings.ToLower(table)]
	return t != nil && t.Columns[strings.ToLower(column)]
}

// HasIndex reports whether table has an index named name.
func (s *Snapshot) HasIndex(table, name string) bool {
	t := s.Tables[strings.ToLower(table)]
	if t == nil {
		return false
	}
	_, ok := t.Indexes[strings.ToLower(name)]
	return ok
}

// Revision returns the single alembic revision, "" when the database has
// no alembic_version table or row. Several rows (alembic branches) are an
// error: upstream has a single head.
func (s *Snapshot) Revision() (string, error) {
	switch len(s.Revisions) {
	case 0:
		return "", nil
	case 1:
		return s.Revisions[0], nil
	}
	return "", fmt.Errorf("alembic_version holds %d rows (%s); upstream MLflow has a single head", len(s.Revisions), strings.Join(s.Revisions, ", "))
}

// Inspect reads the live schema through q.
func Inspect(ctx context.Context, q Querier, d Dialect) (*Snapshot, error) {
	snap := &Snapshot{Tables: map[string]*TableInfo{}, Triggers: map[string]bool{}}
	var err error
	switch d {
	case SQLite:
		err = inspectSQLite(ctx, q, snap)
	case Postgres:
		err = inspectInfoSchema(ctx, q, snap, "current_schema()", pgIndexQuery)
	case MySQL:
		err = inspectInfoSchema(ctx, q, snap, "DATABASE()", mysqlIndexQuery)
	default:
		err = fmt.Errorf("schema: unknown dialect %v", d)
	}
	if err != nil {
		return nil, err
	}
	if snap.HasTable("alembic_version") {
		revs, err := queryStrings(ctx, q, "SELECT version_num FROM alembic_version")
		if err != nil {
			return nil, fmt.Errorf("read alembic_version: %w", err)
		}
		sort.Strings(revs)
		snap.Revisions = revs
	}
	return snap, nil
}

func queryStrings(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (s *Snapshot) table(name string) *TableInfo {
	name = strings.ToLower(name)
	t := s.Tables[name]
	if t == nil {
		t = &TableInfo{Columns: map[string]bool{}, Indexes: map[string][]string{}, Constraints: map[string]byte{}, FKRefs: map[string]string{}}
		s.Tables[name] = t
	}
	return t
}

func inspectSQLite(ctx context.Context, q Querier, snap *Snapshot) error {
	tables, err := queryStrings(ctx, q, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	trig, err := queryStrings(ctx, q, "SELECT name FROM sqlite_master WHERE type = 'trigger'")
	if err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	for _, tr := range trig {
		snap.Triggers[strings.ToLower(tr)] = true
	}
	for _, name := range tables {
		t := snap.table(name)
		rows, err := q.QueryContext(ctx, "SELECT name, pk FROM pragma_table_xinfo(?)", name)
		if err != nil {
			return fmt.Errorf("columns of %s: %w", name, err)
		}
		type pkcol struct {
			name string
			pos  int
		}
		var pks []pkcol
		for rows.Next() {
			var col string
			var pk int
			if err := rows.Scan(&col, &pk); err != nil {
				rows.Close()
				return err
			}
			t.Columns[strings.ToLower(col)] = true
			if pk > 0 {
				pks = append(pks, pkcol{strings.ToLower(col), pk})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		sort.Slice(pks, func(i, j int) bool { return pks[i].pos < pks[j].pos })
		for _, p := range pks {
			t.PK = append(t.PK, p.name)
		}
		irows, err := q.QueryContext(ctx, "SELECT name, \"unique\", origin FROM pragma_index_list(?)", name)
		if err != nil {
			return fmt.Errorf("indexes of %s: %w", name, err)
		}
		type idx struct {
			name   string
			unique bool
			origin string
		}
		var idxs []idx
		for irows.Next() {
			var x idx
			if err := irows.Scan(&x.name, &x.unique, &x.origin); err != nil {
				irows.Close()
				return err
			}
			idxs = append(idxs, x)
		}
		irows.Close()
		if err := irows.Err(); err != nil {
			return err
		}
		for _, ix := range idxs {
			cols, err := queryStrings(ctx, q, "SELECT COALESCE(name, '') FROM pragma_index_info(?) ORDER BY seqno", ix.name)
			if err != nil {
				return fmt.Errorf("index %s: %w", ix.name, err)
			}
			t.Indexes[strings.ToLower(ix.name)] = lowerAll(cols)
			if ix.unique && ix.origin != "pk" {
				t.Uniques = append(t.Uniques, lowerAll(cols))
			}
		}
	}
	return nil
}

const pgIndexQuery = `
SELECT t.relname, i.relname, a.attname, x.indisunique AND NOT x.indisprimary
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = current_schema()
ORDER BY t.relname, i.relname, k.ord`

const mysqlIndexQuery = `
SELECT table_name, index_name, column_name, non_unique = 0 AND index_name <> 'PRIMARY'
FROM information_schema.statistics
WHERE table_schema = DATABASE()
ORDER BY table_name, index_name, seq_in_index`

const pgConstraintQuery = `
SELECT t.relname, c.conname, c.contype::text, COALESCE(r.relname, '')
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_class r ON r.oid = c.confrelid
WHERE n.nspname = current_schema()`

const mysqlConstraintQuery = `
SELECT tc.table_name, tc.constraint_name,
       CASE tc.constraint_type WHEN 'PRIMARY KEY' THEN 'p' WHEN 'UNIQUE' THEN 'u' WHEN 'FOREIGN KEY' THEN 'f' ELSE 'c' END,
       COALESCE(rc.referenced_table_name, '')
FROM information_schema.table_constraints tc
LEFT JOIN information_schema.referential_constraints rc
  ON rc.constraint_schema = tc.constraint_schema AND rc.constraint_name = tc.constraint_name AND rc.table_name = tc.table_name
WHERE tc.table_schema = DATABASE()`

func inspectInfoSchema(ctx context.Context, q Querier, snap *Snapshot, schemaExpr, indexQuery string) error {
	rows, err := q.QueryContext(ctx, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "+schemaExpr)
	if err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			rows.Close()
			return err
		}
		snap.table(table).Columns[strings.ToLower(col)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, indexQuery)
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	defer rows.Close()
	uniq := map[*TableInfo]map[string]bool{}
	for rows.Next() {
		var table, index, col string
		var unique bool
		if err := rows.Scan(&table, &index, &col, &unique); err != nil {
			return err
		}
		t := snap.Tables[strings.ToLower(table)]
		if t == nil {
			continue // an index of a view or of another schema's relation
		}
		key := strings.ToLower(index)
		t.Indexes[key] = append(t.Indexes[key], strings.ToLower(col))
		if unique {
			if uniq[t] == nil {
				uniq[t] = map[string]bool{}
			}
			uniq[t][key] = true
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for t, names := range uniq {
		for name := range names {
			t.Uniques = append(t.Uniques, t.Indexes[name])
		}
	}
	cq, tq := pgConstraintQuery, "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
	if indexQuery == mysqlIndexQuery {
		cq, tq = mysqlConstraintQuery, "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()"
	}
	crows, err := q.QueryContext(ctx, cq)
	if err != nil {
		return fmt.Errorf("list constraints: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		var table, name, kind, ref string
		if err := crows.Scan(&table, &name, &kind, &ref); err != nil {
			return err
		}
		t := snap.Tables[strings.ToLower(table)]
		if t == nil || kind == "" {
			continue
		}
		t.Constraints[strings.ToLower(name)] = kind[0]
		if kind[0] == 'f' {
			t.FKRefs[strings.ToLower(name)] = strings.ToLower(ref)
		}
	}
	if err := crows.Err(); err != nil {
		return err
	}
	trig, err := queryStrings(ctx, q, tq)
	if err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	for _, tr := range trig {
		snap.Triggers[strings.ToLower(tr)] = true
	}
	// The primary key is the index named PRIMARY (MySQL) or the one backing
	// the pk constraint (PostgreSQL, named after the model's PKName).
	for name, t := range snap.Tables {
		if cols, ok := t.Indexes["primary"]; ok {
			t.PK = cols
			continue
		}
		if head := Lookup(name); head != nil {
			t.PK = t.Indexes[strings.ToLower(head.PKName)]
		} else if name == "alembic_version" {
			t.PK = t.Indexes["alembic_version_pkc"]
		}
	}
	return nil
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// ErrNotMLflow means the database has MLflow-looking tables but no
// alembic_version: Ferry will not guess what it is.
var ErrNotMLflow = errors.New("database has an experiments table but no alembic_version: not an MLflow database Ferry can identify")
