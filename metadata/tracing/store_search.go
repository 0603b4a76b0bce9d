package tracing

import (
	"context"
	"database/sql"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// searchTraces runs one page: the matching ids (max+1 to know whether a
// next page exists), then their infos, in one read transaction.
func (a *API) searchTraces(ctx context.Context, sa *searchArgs) ([]*traceRow, string, error) {
	var out []*traceRow
	next := ""
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		q, args := search.TracesQuery{Columns: "t.request_id", ExperimentIDs: sa.exps, Filter: sa.filter,
			OrderBy: sa.orderBy, Limit: sa.max + 1, Offset: sa.offset}.Render(tx.Dialect())
		var ids []string
		err := tx.Each(ctx, q, args, func(rows *sql.Rows) error {
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
