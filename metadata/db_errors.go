package metadata

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/ferryml/ferry/wire"
)

// dbErrKind is what Ferry needs to know about a driver error.
type dbErrKind int

const (
	dbErrOther       dbErrKind = iota
	dbErrUnique                // unique or primary-key violation
	dbErrForeignKey            // foreign-key violation
	dbErrData                  // value too long, out of range, bad encoding
	dbErrUnavailable           // connection lost, locked, busy, shutting down
)

// classify inspects a driver error once per dialect; nothing else in
// Ferry looks at driver errors.
func classify(err error) dbErrKind {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch {
		case se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey:
			return dbErrUnique
		case se.ExtendedCode == sqlite3.ErrConstraintForeignKey:
			return dbErrForeignKey
		case se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked || se.Code == sqlite3.ErrIoErr || se.Code == sqlite3.ErrCantOpen:
			return dbErrUnavailable
		case se.Code == sqlite3.ErrTooBig || se.Code == sqlite3.ErrRange || se.Code == sqlite3.ErrMismatch:
			return dbErrData
		}
		return dbErrOther
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return dbErrUnique
		case pe.Code == "23503":
			return dbErrForeignKey
		case len(pe.Code) == 2+3 && pe.Code[:2] == "22": // data exception class
			return dbErrData
		case pe.Code[:2] == "08" || pe.Code[:2] == "53" || pe.Code[:2] == "57" || pe.Code == "40001" || pe.Code == "40P01":
			return dbErrUnavailable
		}
		return dbErrOther
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1062, 1586:
			return dbErrUnique
		case 1451, 1452, 1216, 1217:
			return dbErrForeignKey
		case 1406, 1264, 1366, 1265, 3140:
			return dbErrData
		case 1205, 1213, 1040, 1053, 2006, 2013:
			return dbErrUnavailable
		}
		return dbErrOther
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) {
		return dbErrUnavailable
	}
	return dbErrOther
}

// dbError converts a database error into the MLflow error upstream sends
// (spec tracking-api.md §1.4): connection problems are
// TEMPORARILY_UNAVAILABLE, constraint and data errors BAD_REQUEST,
// anything else INTERNAL_ERROR. Messages stay generic: the driver text
// goes to the log through Cause.
func WireError(err error) *wire.Error {
	if err == nil {
		return nil
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &wire.Error{Code: wire.TemporarilyUnavailable, Message: "The database did not answer in time.", Cause: err}
	}
	switch classify(err) {
	case dbErrUnavailable:
		return &wire.Error{Code: wire.TemporarilyUnavailable, Message: "The database is temporarily unavailable.", Cause: err}
	case dbErrUnique, dbErrForeignKey:
		return &wire.Error{Code: wire.BadRequest, Message: "The request conflicts with existing data.", Cause: err}
	case dbErrData:
		return &wire.Error{Code: wire.BadRequest, Message: "A value does not fit the database column.", Cause: err}
	}
	return &wire.Error{Code: wire.InternalError, Message: "Database operation failed.", Cause: err}
}

func (db *DB) unavailable(err error) error {
	return &wire.Error{Code: wire.TemporarilyUnavailable, Message: "The database is unavailable.", Cause: err}
}

// IsUniqueViolation reports whether err is a unique or primary-key
// violation, the one driver condition domains branch on (a name taken by a
// concurrent create).
func IsUniqueViolation(err error) bool { return classify(err) == dbErrUnique }
