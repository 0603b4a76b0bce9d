package schema

import (
	"fmt"
	"strings"
)

// columnType renders t for d the way SQLAlchemy renders upstream's types.
func columnType(d Dialect, c Column) string {
	switch c.Type {
	case Integer:
		return "INTEGER"
	case BigInt:
		return "BIGINT"
	case Varchar:
		return fmt.Sprintf("VARCHAR(%d)", c.Len)
	case Text:
		return "TEXT"
	case MediumText:
		if d == MySQL {
			return "MEDIUMTEXT"
		}
		return "TEXT"
	case Double:
		switch d {
		case Postgres:
			return "DOUBLE PRECISION"
		case MySQL:
			return "DOUBLE"
		}
		return "FLOAT"
	case Boolean:
		if d == MySQL {
			return "BOOL"
		}
		return "BOOLEAN"
	case Blob:
		if d == Postgres {
			return "BYTEA"
		}
		return "BLOB"
	case JSON:
		return "JSON"
	}
	panic(fmt.Sprintf("schema: column %s has no type", c.Name))
}

// defaultSQL renders a server default literal. Defaults are constants of
// the model, never user input.
func defaultSQL(d Dialect, v any) string {
	switch v := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case int64:
		return fmt.Sprintf("'%d'", v)
	case bool:
		if d == Postgres {
			if v {
				return "true"
			}
			return "false"
		}
		if v {
			return "'1'"
		}
		return "'0'"
	}
	panic(fmt.Sprintf("schema: unsupported default %T", v))
}

// ColumnDDL renders one column definition (as in CREATE TABLE or ALTER
// TABLE ... ADD COLUMN).
func ColumnDDL(d Dialect, c Column) string {
	var b strings.Builder
	b.WriteString(d.Quote(c.Name))
	b.WriteByte(' ')
	if c.AutoIncrement && d == Postgres {
		b.WriteString("SERIAL")
	} else {
		b.WriteString(columnType(d, c))
	}
	if c.Generated != "" {
		fmt.Fprintf(&b, " GENERATED ALWAYS AS (%s) STORED", c.Generated)
		return b.String()
	}
	if c.Default != nil {
		b.WriteString(" DEFAULT ")
		b.WriteString(defaultSQL(d, c.Default))
	}
	if c.NotNull {
		b.WriteString(" NOT NULL")
	}
	if c.AutoIncrement && d == MySQL {
		b.WriteString(" AUTO_INCREMENT")
	}
	return b.String()
}

func quoteList(d Dialect, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = d.Quote(c)
	}
	return strings.Join(q, ", ")
}

// FKDDL renders a foreign-key table constraint.
func FKDDL(d Dialect, f ForeignKey) string {
	var b strings.Builder
	if f.Name != "" {
		fmt.Fprintf(&b, "CONSTRAINT %s ", d.Quote(f.Name))
	}
	fmt.Fprintf(&b, "FOREIGN KEY(%s) REFERENCES %s (%s)", quoteList(d, f.Columns), d.Quote(f.RefTable), quoteList(d, f.RefColumns))
	if f.OnDelete != "" {
		b.WriteString(" ON DELETE " + f.OnDelete)
	}
	if f.OnUpdate != "" {
		b.WriteString(" ON UPDATE " + f.OnUpdate)
	}
	return b.String()
}

func checkDDL(d Dialect, c Check) (string, bool) {
	var expr string
	if c.Bool {
		if d == Postgres {
			return "", false // native boolean: SQLAlchemy emits no check
		}
		expr = fmt.Sprintf("%s IN (0, 1)", d.Quote(c.Column))
	} else {
		vals := make([]string, len(c.Values))
		for i, v := range c.Values {
			vals[i] = "'" + v + "'"
		}
		expr = fmt.Sprintf("%s IN (%s)", d.Quote(c.Column), strings.Join(vals, ", "))
	}
	if c.Name != "" {
		return fmt.Sprintf("CONSTRAINT %s CHECK (%s)", d.Quote(c.Name), expr), true
	}
	return fmt.Sprintf("CHECK (%s)", expr), true
}

// CreateTableSQL renders CREATE TABLE for t (without its indexes).
func CreateTableSQL(d Dialect, t *Table) string {
	var parts []string
	for _, c := range t.Columns {
		parts = append(parts, ColumnDDL(d, c))
	}
	parts = append(parts, fmt.Sprintf("CONSTRAINT %s PRIMARY KEY (%s)", d.Quote(t.PKName), quoteList(d, t.PK)))
	for _, f := range t.FKs {
		parts = append(parts, FKDDL(d, f))
	}
	for _, u := range t.Uniques {
		parts = append(parts, UniqueDDL(d, u))
	}
	for _, c := range t.Checks {
		if s, ok := checkDDL(d, c); ok {
			parts = append(parts, s)
		}
	}
	suffix := ""
	if d == MySQL {
		// Upstream's MySQL tables are InnoDB (FKs need it); the character
		// set is the database's default, as with SQLAlchemy.
		suffix = " ENGINE=InnoDB"
	}
	return fmt.Sprintf("CREATE TABLE %s (\n\t%s\n)%s", d.Quote(t.Name), strings.Join(parts, ",\n\t"), suffix)
}

// UniqueDDL renders a UNIQUE table constraint (unnamed when u.Name is "").
func UniqueDDL(d Dialect, u Unique) string {
	if u.Name == "" {
		return fmt.Sprintf("UNIQUE (%s)", quoteList(d, u.Columns))
	}
	return fmt.Sprintf("CONSTRAINT %s UNIQUE (%s)", d.Quote(u.Name), quoteList(d, u.Columns))
}

// CreateIndexSQL renders CREATE [UNIQUE] INDEX for one index of table.
func CreateIndexSQL(d Dialect, table string, ix Index) string {
	u := ""
	if ix.Unique {
		u = "UNIQUE "
	}
	return fmt.Sprintf("CREATE %sINDEX %s ON %s (%s)", u, d.Quote(ix.Name), d.Quote(table), quoteList(d, ix.Columns))
}

// DropIndexSQL renders DROP INDEX for one index of table.
func DropIndexSQL(d Dialect, table, name string) string {
	if d == MySQL {
		return fmt.Sprintf("DROP INDEX %s ON %s", d.Quote(name), d.Quote(table))
	}
	return "DROP INDEX " + d.Quote(name)
}

// secretsTrigger is upstream's prevent_secrets_aad_mutation trigger
// (revision 1bd49d398cd23), one statement list per dialect.
func secretsTrigger(d Dialect) []string {
	const msg = "secret_id and secret_name are immutable (used as AAD in encryption)"
	switch d {
	case SQLite:
		return []string{`CREATE TRIGGER prevent_secrets_aad_mutation
BEFORE UPDATE ON secrets
FOR EACH ROW
WHEN OLD.secret_id != NEW.secret_id OR OLD.secret_name != NEW.secret_name
BEGIN
    SELECT RAISE(ABORT, '` + msg + `');
END;`}
	case Postgres:
		return []string{`CREATE OR REPLACE FUNCTION prevent_secrets_aad_mutation()
RETURNS TRIGGER AS $$
BEGIN
    IF OLD.secret_id != NEW.secret_id OR OLD.secret_name != NEW.secret_name THEN
        RAISE EXCEPTION '` + msg + `';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;`, `CREATE TRIGGER prevent_secrets_aad_mutation
BEFORE UPDATE ON secrets
FOR EACH ROW
EXECUTE FUNCTION prevent_secrets_aad_mutation();`}
	case MySQL:
		return []string{`CREATE TRIGGER prevent_secrets_aad_mutation
BEFORE UPDATE ON secrets
FOR EACH ROW
BEGIN
    IF OLD.secret_id != NEW.secret_id OR OLD.secret_name != NEW.secret_name THEN
        SIGNAL SQLSTATE '45000'
        SET MESSAGE_TEXT = '` + msg + `';
    END IF;
END;`}
	}
	return nil
}

// HeadDDL returns every statement that creates an empty database at the
// head revision, in order: tables, indexes, the secrets trigger, the
// workspaces seed row and the alembic stamp.
func HeadDDL(d Dialect) []string {
	var out []string
	all := append([]Table{alembicVersion}, headTables...)
	for i := range all {
		out = append(out, CreateTableSQL(d, &all[i]))
		for _, ix := range all[i].Indexes {
			out = append(out, CreateIndexSQL(d, all[i].Name, ix))
		}
	}
	out = append(out, secretsTrigger(d)...)
	out = append(out, seedWorkspaceSQL(d))
	out = append(out, fmt.Sprintf("INSERT INTO alembic_version (version_num) VALUES ('%s')", Head))
	return out
}

func seedWorkspaceSQL(d Dialect) string {
	return fmt.Sprintf("INSERT INTO workspaces (%s, %s) VALUES ('default', 'Default workspace for legacy resources')",
		d.Quote("name"), d.Quote("description"))
}
