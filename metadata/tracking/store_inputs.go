package tracking

import (
	"context"
	"strconv"

	"github.com/ferryml/ferry/metadata"
)

// logDatasetInputs is upstream's _log_inputs_impl for datasets: datasets
// de-duplicated by (name, digest) and matched against the experiment's
// existing rows; a new input (with its tags) per dataset not yet linked
// to the run. Existing links keep their tags.
func logDatasetInputs(ctx context.Context, tx *metadata.Tx, ri *RunInfo, datasets []datasetIn) error {
	expID, err := strconv.ParseInt(ri.ExperimentID, 10, 64)
	if err != nil {
		return err
	}
	uuids := map[[2]string]string{}
	for _, d := range datasets {
		key := [2]string{d.Name, d.Digest}
		if _, ok := uuids[key]; ok {
			continue
		}
		var u string
		err := tx.QueryRow(ctx, "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND "+exactEq(tx.Dialect(), "name")+" AND "+exactEq(tx.Dialect(), "digest"),
			expID, d.Name, d.Digest).Scan(&u)
		switch {
		case isNoRows(err):
			if u, err = newRunID(); err != nil {
				return err
			}
			var schemaArg, profileArg any
			if d.Schema != "" {
				schemaArg = d.Schema
			}
			if d.Profile != "" {
				profileArg = d.Profile
			}
			if _, err := tx.Exec(ctx, `INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source, dataset_schema, dataset_profile)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, u, expID, d.Name, d.Digest, d.SourceType, d.Source, schemaArg, profileArg); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		uuids[key] = u
	}
	linked := map[string]bool{}
	for _, d := range datasets {
		u := uuids[[2]string{d.Name, d.Digest}]
		if linked[u] {
			continue
		}
		linked[u] = true
		var existing string
		err := tx.QueryRow(ctx, "SELECT input_uuid FROM inputs WHERE source_type = 'DATASET' AND source_id = ? AND destination_type = 'RUN' AND destination_id = ?", u, ri.RunID).Scan(&existing)
		if err == nil {
			continue
		}
		if !isNoRows(err) {
			return err
		}
		in, err := newRunID()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) VALUES (?, 'DATASET', ?, 'RUN', ?, 0)", in, u, ri.RunID); err != nil {
			return err
		}
		for _, t := range dedupeTags(d.tags) {
			if _, err := tx.Exec(ctx, "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)", in, t.Key, t.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// upsertInput is session.merge(SqlInput(...)): insert, or update the
// step of the existing link.
func upsertInput(ctx context.Context, tx *metadata.Tx, srcType, srcID, dstType, dstID string, step int64) error {
	var existing string
	err := tx.QueryRow(ctx, "SELECT input_uuid FROM inputs WHERE source_type = ? AND source_id = ? AND destination_type = ? AND "+exactEq(tx.Dialect(), "destination_id"),
		srcType, srcID, dstType, dstID).Scan(&existing)
	switch {
	case err == nil:
		_, err = tx.Exec(ctx, "UPDATE inputs SET step = ? WHERE input_uuid = ?", step, existing)
		return err
	case !isNoRows(err):
		return err
	}
	u, err := newRunID()
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) VALUES (?, ?, ?, ?, ?, ?)",
		u, srcType, srcID, dstType, dstID, step)
	return err
}

// addRunInputs links datasets and logged models to the active run id as its inputs.
func (a *API) addRunInputs(ctx context.Context, id string, datasets []datasetIn, models []ModelOutput) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		ri, err := activeRun(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := logDatasetInputs(ctx, tx, ri, datasets); err != nil {
			return err
		}
		for _, m := range models {
			if err := upsertInput(ctx, tx, "RUN_INPUT", id, "MODEL_INPUT", m.ModelID, 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// addRunOutputs links logged models to the active run id as its outputs.
func (a *API) addRunOutputs(ctx context.Context, id string, models []ModelOutput) error {
	return a.writeActiveRun(ctx, id, func(tx *metadata.Tx) error {
		for _, m := range models {
			if err := upsertInput(ctx, tx, "RUN_OUTPUT", id, "MODEL_OUTPUT", m.ModelID, m.Step); err != nil {
				return err
			}
		}
		return nil
	})
}
