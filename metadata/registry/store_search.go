package registry

import (
	"context"
	"database/sql"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/search"
)

// searchModels returns one page of registered models, fetching one row
// more than asked to know whether another page follows.
func (a *API) searchModels(ctx context.Context, q search.RegistryQuery) ([]registeredModel, bool, error) {
	var out []*registeredModel
	max := q.Limit
	q.Limit++
	q.Columns = "rm.name, rm.creation_time, rm.last_updated_time, rm.description"
	more := false
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		text, args := q.Render(tx.Dialect())
		err := tx.Each(ctx, text, args, func(r *sql.Rows) error {
			m := &registeredModel{}
			var created, updated sql.NullInt64
			var desc sql.NullString
			if err := r.Scan(&m.Name, &created, &updated, &desc); err != nil {
				return err
			}
			m.CreationTimestamp, m.LastUpdatedTimestamp, m.Description = created.Int64, updated.Int64, nullable(desc)
			out = append(out, m)
			return nil
		})
		if err != nil {
			return err
		}
		if int64(len(out)) > max {
			out, more = out[:max], true
		}
		return fillModels(ctx, tx, out)
	})
	res := make([]registeredModel, len(out))
	for i, m := range out {
		res[i] = *m
	}
	return res, more, err
}

// searchVersions returns one page of model versions.
func (a *API) searchVersions(ctx context.Context, q search.RegistryQuery) ([]modelVersion, bool, error) {
	var out []*modelVersion
	max := q.Limit
	q.Limit++
	q.Versions = true
	q.Columns = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, mv.user_id, mv.current_stage, " +
		"mv.source, mv.run_id, mv.status, mv.status_message, mv.run_link, mv.storage_location"
	more := false
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		text, args := q.Render(tx.Dialect())
		err := tx.Each(ctx, text, args, func(r *sql.Rows) error {
			v, err := scanVersion(r)
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
		if err != nil {
			return err
		}
		if int64(len(out)) > max {
			out, more = out[:max], true
		}
		return fillVersions(ctx, tx, out)
	})
	res := make([]modelVersion, len(out))
	for i, v := range out {
		res[i] = *v
	}
	return res, more, err
}
