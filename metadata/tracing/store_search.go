package tracing

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// searchTraces runs one page: the matching ids (max+1 to know whether a
// next page exists), then their infos, in one read transaction.
func (a *API) searchTraces(ctx context.Context, sa *searchArgs) ([]*traceRow, string, error) {
	var out []*traceRow
	next := ""
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		filter, err := pageFloor(ctx, tx, sa)
		if err != nil {
			return err
		}
		q, args := search.TracesQuery{Columns: "t.request_id", ExperimentIDs: sa.exps, Filter: filter,
			OrderBy: sa.orderBy, Limit: sa.max + 1, Offset: sa.offset}.Render(tx.Dialect())
		var ids []string
		err = tx.Each(ctx, q, args, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			return err
		}
		if int64(len(ids)) > sa.max {
			ids = ids[:sa.max]
			next = wire.PageToken(sa.offset + sa.max)
		}
		out, err = loadTraces(ctx, tx, ids, true)
		return err
	})
	return out, next, err
}

// pageFloor returns the page's filter, on MySQL in the default order
// (timestamp_ms DESC, request_id ASC) narrowed by timestamp_ms >= the
// timestamp of the last row the page needs. MariaDB cannot use the
// ascending (experiment_id, timestamp_ms) index for that mixed-direction
// order and sorted every matching trace (100,000 for an unfiltered
// search: ~100 ms a page); the floor is found by reading the index
// backwards without the tie-break (it stops after offset+max+1 matches),
// and every row of the page has a timestamp at or above it, so the page is
// unchanged while the sort shrinks to about offset+max+1 rows. PostgreSQL
// (incremental sort) and SQLite stop early by themselves.
func pageFloor(ctx context.Context, tx *metadata.Tx, sa *searchArgs) ([]search.Comparison, error) {
	if tx.Dialect() != schema.MySQL || len(sa.orderBy) != 0 {
		return sa.filter, nil
	}
	q, args := search.TracesQuery{Columns: "t.timestamp_ms", ExperimentIDs: sa.exps, Filter: sa.filter,
		TimeOnly: true, Limit: 1, Offset: sa.offset + sa.max}.Render(tx.Dialect())
	var floor int64
	err := tx.QueryRow(ctx, q, args...).Scan(&floor)
	if errors.Is(err, sql.ErrNoRows) {
		return sa.filter, nil // the matches end before this page does
	}
	if err != nil {
		return nil, err
	}
	if floor >= 1<<53 || floor <= -(1<<53) {
		return sa.filter, nil // the filter's float64 number would round it
	}
	return append(sa.filter[:len(sa.filter):len(sa.filter)], search.Comparison{Type: search.Attribute, Key: "timestamp_ms", Op: ">=",
		Value: search.Value{Kind: search.VNumber, Num: float64(floor)}}), nil
}
