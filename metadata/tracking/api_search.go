package tracking

import (
	"context"
	"database/sql"
	"math"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// runs/search (spec tracking-api.md §6.1) and experiments/search (§6.2).

const (
	searchRunsDefaultMax = 1000
	searchMaxResults     = 50000
)

// searchError turns a parse error into upstream's 400.
func searchError(err error) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "%s", err.Error())
}

// searchRuns is POST runs/search.
func (a *API) searchRuns(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expStrs, werr := p.strs("experiment_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	filter, werr := p.str("filter")
	if werr != nil {
		return wire.Send(c, werr)
	}
	stages, werr := p.viewType("run_view_type")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxResults, given, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !given {
		maxResults = searchRunsDefaultMax
	}
	if maxResults > searchMaxResults {
		return wire.Send(c, typeError("max_results", p.raw("max_results")))
	}
	if maxResults < 1 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value for request parameter max_results. It must be a positive integer, but got %d", maxResults))
	}
	orderRaw, werr := p.strs("order_by")
	if werr != nil {
		return wire.Send(c, werr)
	}
	token, werr := p.str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	offset, werr := parsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expIDs := make([]int64, 0, len(expStrs))
	for _, s := range expStrs {
		id, werr := parseExperimentID("experiment_ids", s)
		if werr != nil {
			return wire.Send(c, werr)
		}
		expIDs = append(expIDs, id)
	}
	comps, err := search.ParseRunsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	order, err := search.ParseRunsOrderByList(orderRaw)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	resp := fiber.Map{}
	if len(expIDs) == 0 {
		return c.JSON(resp)
	}
	q := search.RunsQuery{
		Columns:       "runs.run_uuid, runs.name, runs.experiment_id, runs.user_id, runs.status, runs.start_time, runs.end_time, runs.artifact_uri, runs.lifecycle_stage",
		ExperimentIDs: expIDs, Stages: stages, Filter: comps, OrderBy: order,
		Limit: maxResults + 1, Offset: offset,
	}
	ctx := c.UserContext()
	var runs []*Run
	err = a.db.Read(ctx, func(tx *metadata.Tx) error {
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
			resp["next_page_token"] = pageToken(offset + maxResults)
		}
		return fillRuns(ctx, tx, runs, true)
	})
	if len(runs) > 0 {
		resp["runs"] = runs
	}
	return a.send(c, resp, err)
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

// searchExperiments is GET and POST experiments/search.
func (a *API) searchExperiments(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	stages, werr := p.viewType("view_type")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxResults, _, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	orderRaw, werr := p.strs("order_by")
	if werr != nil {
		return wire.Send(c, werr)
	}
	filter, werr := p.str("filter")
	if werr != nil {
		return wire.Send(c, werr)
	}
	token, werr := p.str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	// Upstream's store checks max_results first: absent is 0 and refused.
	if maxResults < 1 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", maxResults))
	}
	if maxResults > searchMaxResults {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter 'max_results' supplied. It must be at most %d", maxResults, searchMaxResults))
	}
	comps, err := search.ParseExperimentsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	order, err := search.ParseExperimentsOrderByList(orderRaw)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	offset, werr := parsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	q := search.ExperimentsQuery{
		Columns: "experiments.experiment_id, experiments.name, experiments.artifact_location, experiments.lifecycle_stage, experiments.creation_time, experiments.last_update_time",
		Stages:  stages, Filter: comps, OrderBy: order, Limit: maxResults + 1, Offset: offset,
	}
	ctx := c.UserContext()
	resp := fiber.Map{}
	var exps []*Experiment
	err = a.db.Read(ctx, func(tx *metadata.Tx) error {
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
			resp["next_page_token"] = pageToken(offset + maxResults)
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
	if len(exps) > 0 {
		resp["experiments"] = exps
	}
	return a.send(c, resp, err)
}
