// Package schema owns upstream MLflow's SQL schema as Ferry reproduces it:
// the table model at alembic head 7d34483879f0 (the 47 tables of MLflow
// 3.11 plus alembic_version), its DDL for SQLite, PostgreSQL and MySQL,
// introspection of a live database, the "can Ferry use this database"
// check, and the upgrade from any revision since bf29a5ff90ea (MLflow 3.6).
//
// The model is data, not SQL text, so that creation, the usability check
// and the upgrade all read one source of truth. Upstream's names for
// constraints and indexes are kept exactly, because upstream's own later
// migrations drop and recreate them by name.
package schema

import "fmt"

// Dialect is a SQL database family Ferry speaks.
type Dialect int

// The dialects Ferry supports. MySQL covers MariaDB.
const (
	SQLite Dialect = iota + 1
	Postgres
	MySQL
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgresql"
	case MySQL:
		return "mysql"
	}
	return fmt.Sprintf("dialect(%d)", int(d))
}

// Quote quotes an identifier for d. MySQL needs it (`key` and `schema`
// are reserved there); PostgreSQL and SQLite get upstream's unquoted
// names, which are valid identifiers in both.
func (d Dialect) Quote(name string) string {
	if d == MySQL {
		return "`" + name + "`"
	}
	return name
}
