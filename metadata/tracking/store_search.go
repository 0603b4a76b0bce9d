package tracking

import (
	"context"
	"database/sql"
	"math"
	"strconv"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// searchRunRows runs a runs/search query and loads the runs' data, inputs and outputs; next is the token of the following page, if any.
func (a *API) searchRunRows(ctx context.Context, q search.RunsQuery, maxResults, offset int64) ([]*Run, string, error) {
	var runs []*Run
	var next string
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		text, args, err := q.Render(tx.Dialect())
		if err != nil {
			return searchError(err)
		}
		runs = nil
		err = tx.Each(ctx, text, args, func(rows *sql.Rows) error {
			ri, err := scanRunInfo(rows)
			if err != nil {
				return err
			}
			runs = append(runs, &Run{Info: *ri})
			return nil
		})
		if err != nil {
			return err
		}
		if int64(len(runs)) > maxResults {
			runs = runs[:maxResults]
			next = wire.PageToken(offset + maxResults)
		}
		return fillRuns(ctx, tx, runs, true)
	})
	return runs, next, err
}

// searchExperimentRows runs an experiments/search query and loads the experiments' tags; next is the token of the following page, if any.
func (a *API) searchExperimentRows(ctx context.Context, q search.ExperimentsQuery, maxResults, offset int64) ([]*Experiment, string, error) {
	var exps []*Experiment
	var next string
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		text, args := q.Render(tx.Dialect())
		exps = nil
		err := tx.Each(ctx, text, args, func(rows *sql.Rows) error {
			e, err := scanExperiment(rows)
			exps = append(exps, e)
			return err
		})
		if err != nil {
			return err
		}
		if int64(len(exps)) > maxResults {
			exps = exps[:maxResults]
			next = wire.PageToken(offset + maxResults)
		}
		if len(exps) == 0 {
			return nil
		}
		byID := make(map[int64]*Experiment, len(exps))
		ids := make([]int64, len(exps))
		for i, e := range exps {
			ids[i], _ = strconv.ParseInt(e.ExperimentID, 10, 64) // written by scanExperiment
			byID[ids[i]] = e
		}
		k := tx.Dialect().Quote("key")
		return inChunks(ctx, tx, ids, "SELECT experiment_id, "+k+", value FROM experiment_tags WHERE experiment_id IN ", " ORDER BY experiment_id, "+k,
			func(rows *sql.Rows) error {
				var id int64
				var kv KeyValue
				var v sql.NullString
				if err := rows.Scan(&id, &kv.Key, &v); err != nil {
					return err
				}
				kv.Value = v.String
				if e := byID[id]; e != nil {
					e.Tags = append(e.Tags, kv)
				}
				return nil
			})
	})
	return exps, next, err
}

// fillRuns loads data, inputs and outputs of runs whose info is loaded
// (runs/search and runs/get; withIO false leaves Inputs and Outputs nil,
// as runs/create answers).
func fillRuns(ctx context.Context, tx *metadata.Tx, runs []*Run, withIO bool) error {
	if len(runs) == 0 {
		return nil
	}
	byID := make(map[string]*Run, len(runs))
	ids := make([]string, len(runs))
	for i, r := range runs {
		byID[r.Info.RunID] = r
		ids[i] = r.Info.RunID
	}
	k, ts := tx.Dialect().Quote("key"), tx.Dialect().Quote("timestamp")
	err := inChunks(ctx, tx, ids, "SELECT run_uuid, "+k+", value, "+ts+", step, is_nan FROM latest_metrics WHERE run_uuid IN ", " ORDER BY run_uuid, "+k,
		func(rows *sql.Rows) error {
			var id string
			var m Metric
			var v float64
			var stamp sql.NullInt64
			var isNaN bool
			if err := rows.Scan(&id, &m.Key, &v, &stamp, &m.Step, &isNaN); err != nil {
				return err
			}
			m.Value, m.Timestamp = jsonFloat(v), stamp.Int64
			if isNaN {
				m.Value = jsonFloat(math.NaN())
			}
			if r := byID[id]; r != nil {
				r.Data.Metrics = append(r.Data.Metrics, m)
			}
			return nil
		})
	if err != nil {
		return err
	}
	for _, table := range []string{"params", "tags"} {
		table := table
		err := inChunks(ctx, tx, ids, "SELECT run_uuid, "+k+", value FROM "+table+" WHERE run_uuid IN ", " ORDER BY run_uuid, "+k,
			func(rows *sql.Rows) error {
				var id string
				var kv KeyValue
				var v sql.NullString
				if err := rows.Scan(&id, &kv.Key, &v); err != nil {
					return err
				}
				kv.Value = v.String
				if r := byID[id]; r != nil {
					if table == "params" {
						r.Data.Params = append(r.Data.Params, kv)
					} else {
						r.Data.Tags = append(r.Data.Tags, kv)
					}
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	if !withIO {
		return nil
	}
	return fillRunsIO(ctx, tx, runs, byID, ids)
}

// fillRunsIO batch-loads the inputs and outputs of runs (three queries
// per 500 runs instead of three per run): dataset inputs by name and
// digest with their tags by name, model inputs by model id, model outputs
// by step and model id.
func fillRunsIO(ctx context.Context, tx *metadata.Tx, runs []*Run, byID map[string]*Run, ids []string) error {
	for _, r := range runs {
		r.Inputs, r.Outputs = &RunInputs{}, &RunOutputs{}
	}
	type dsRef struct {
		run *Run
		idx int
	}
	byInput := map[string]dsRef{}
	var inputIDs []string
	err := inChunks(ctx, tx, ids, `SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id IN `, " ORDER BY i.destination_id, d.name, d.digest",
		func(rows *sql.Rows) error {
			var (
				id, u           string
				di              DatasetInput
				schemaJSON, pro sql.NullString
			)
			if err := rows.Scan(&id, &u, &di.Dataset.Name, &di.Dataset.Digest, &di.Dataset.SourceType, &di.Dataset.Source, &schemaJSON, &pro); err != nil {
				return err
			}
			r := byID[id]
			if r == nil {
				return nil
			}
			di.Dataset.Schema, di.Dataset.Profile = schemaJSON.String, pro.String
			byInput[u] = dsRef{run: r, idx: len(r.Inputs.DatasetInputs)}
			inputIDs = append(inputIDs, u)
			r.Inputs.DatasetInputs = append(r.Inputs.DatasetInputs, di)
			return nil
		})
	if err != nil {
		return err
	}
	if len(inputIDs) > 0 {
		err = inChunks(ctx, tx, inputIDs, "SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN ", " ORDER BY input_uuid, name",
			func(rows *sql.Rows) error {
				var u string
				var kv KeyValue
				if err := rows.Scan(&u, &kv.Key, &kv.Value); err != nil {
					return err
				}
				if ref, ok := byInput[u]; ok {
					di := &ref.run.Inputs.DatasetInputs[ref.idx]
					di.Tags = append(di.Tags, kv)
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	return inChunks(ctx, tx, ids, `SELECT source_type, source_id, destination_id, step FROM inputs
WHERE ((source_type = 'RUN_INPUT' AND destination_type = 'MODEL_INPUT') OR (source_type = 'RUN_OUTPUT' AND destination_type = 'MODEL_OUTPUT')) AND source_id IN `,
		" ORDER BY source_id, step, destination_id",
		func(rows *sql.Rows) error {
			var st, id, model string
			var step sql.NullInt64
			if err := rows.Scan(&st, &id, &model, &step); err != nil {
				return err
			}
			r := byID[id]
			if r == nil {
				return nil
			}
			if st == "RUN_INPUT" {
				r.Inputs.ModelInputs = append(r.Inputs.ModelInputs, ModelInput{ModelID: model})
			} else {
				r.Outputs.ModelOutputs = append(r.Outputs.ModelOutputs, ModelOutput{ModelID: model, Step: step.Int64})
			}
			return nil
		})
}

// inChunks runs prefix + (?, ...) + suffix for ids in chunks of 500 and
// calls scan for every row.
func inChunks[T any](ctx context.Context, tx *metadata.Tx, ids []T, prefix, suffix string, scan func(*sql.Rows) error) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		if err := tx.Each(ctx, prefix+"("+metadata.Placeholders(n)+")"+suffix, args, scan); err != nil {
			return err
		}
	}
	return nil
}
