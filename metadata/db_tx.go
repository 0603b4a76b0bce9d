package metadata

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// Tx is a transaction with Ferry's placeholder convention: queries are
// written with '?' and rebound to $n for PostgreSQL. Queries are constant
// text of the domain packages; user input only ever travels as arguments.
type Tx struct {
	tx *sql.Tx
	d  schema.Dialect
}

// maxBindArgs is the most arguments one statement may bind: SQLite's
// SQLITE_MAX_VARIABLE_NUMBER (32,766 since 3.32, the build mattn/go-sqlite3
// ships). PostgreSQL's protocol and MySQL's prepared statements take
// 65,535; Ferry holds all three to the smallest, so a request is answered
// alike on every database.
const maxBindArgs = 32766

// tooManyArgs refuses a statement with more arguments than maxBindArgs,
// as a client error: only a request can make a statement that long (a
// search over tens of thousands of experiment ids or filter values; Ferry's
// own batches stay far below). Upstream has no limit of its own and
// answers such a search with the database's error, a 500.
func tooManyArgs(n int) error {
	if n <= maxBindArgs {
		return nil
	}
	return wire.Errorf(wire.InvalidParameterValue,
		"The request needs %d values in one database query, more than the %d a query can hold. "+
			"Ask for fewer experiment ids, run ids, datasets or filter values at a time.", n, maxBindArgs)
}

// Dialect is the database family the transaction runs on.
func (t *Tx) Dialect() schema.Dialect { return t.d }

// Exec runs a statement.
func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := tooManyArgs(len(args)); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, rebind(t.d, q), args...)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := tooManyArgs(len(args)); err != nil {
		return nil, err
	}
	return t.tx.QueryContext(ctx, rebind(t.d, q), args...)
}

// Each runs q and calls scan for every row; it closes the rows and returns
// the first error of the query, a scan, the iteration or the close. It is
// the one row loop of the domains.
func (t *Tx) Each(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// QueryRow runs a query expected to return at most one row.
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, rebind(t.d, q), args...)
}

// Placeholders is "?, ?, ..." with n marks.
func Placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// rebind turns '?' placeholders into $1, $2, ... for PostgreSQL. Query
// text never contains a literal '?' (values are always arguments).
func rebind(d schema.Dialect, q string) string {
	if d != schema.Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Write runs fn in a read-write transaction, committed when fn returns
// nil. On SQLite writes are serialised by a mutex and the one-connection
// writer pool (BEGIN IMMEDIATE), so SQLITE_BUSY cannot reach a client.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	if db.dialect == schema.SQLite {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	return db.run(ctx, db.writer, nil, fn)
}

// Read runs fn in a read-only transaction (a consistent snapshot).
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == schema.SQLite {
		opts = nil // the reader pool is query_only already; mattn rejects ReadOnly with _txlock
	}
	return db.run(ctx, db.reader, opts, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(*Tx) error) error {
	t, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return WireError(err)
	}
	if err := fn(&Tx{tx: t, d: db.dialect}); err != nil {
		_ = t.Rollback()
		return WireError(err)
	}
	if err := t.Commit(); err != nil {
		return WireError(err)
	}
	return nil
}

// ExactEq is "<col> = ?" compared byte for byte on every dialect: MySQL's
// default collation ignores case (and trailing spaces), so there the
// argument is made a binary string, which makes the comparison binary.
// Only the argument: "BINARY col = BINARY ?" compares the same way but
// hides the column from its index, so MariaDB scanned whole tables (and a
// FOR UPDATE locked every row it scanned); with the column bare it looks
// the value up in the index and checks the bytes of what it finds.
func ExactEq(d schema.Dialect, col string) string {
	if d == schema.MySQL {
		return d.Quote(col) + " = BINARY ?"
	}
	return d.Quote(col) + " = ?"
}
