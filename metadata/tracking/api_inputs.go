package tracking

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/wire"
)

// runs/log-inputs and runs/outputs (spec tracking-api.md §5.7).

const (
	maxDatasetName    = 500
	maxDatasetDigest  = 36
	maxDatasetSource  = 65535
	maxDatasetSchema  = 1048575
	maxDatasetProfile = 16777215
	maxInputTagKey    = 255
	maxInputTagValue  = 500
)

type datasetIn struct {
	Dataset
	tags []KeyValue
}

// readDatasetInputs reads and validates log-inputs' datasets with
// upstream's _validate_dataset / _validate_input_tag messages.
func readDatasetInputs(p *params) ([]datasetIn, *wire.Error) {
	objs, werr := p.objects("datasets")
	if werr != nil {
		return nil, werr
	}
	out := make([]datasetIn, 0, len(objs))
	for _, o := range objs {
		var in datasetIn
		if !o.has("dataset") {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Dataset cannot be None")
		}
		dp, werr := o.objectField("dataset")
		if werr != nil {
			return nil, werr
		}
		fields := []struct {
			name, label string
			dst         *string
			limit       int
			required    bool
		}{
			{"name", "name", &in.Name, maxDatasetName, true},
			{"digest", "digest", &in.Digest, maxDatasetDigest, true},
			{"source_type", "source_type", &in.SourceType, 36, true},
			{"source", "source", &in.Source, maxDatasetSource, true},
			{"schema", "schema", &in.Schema, maxDatasetSchema, false},
			{"profile", "profile", &in.Profile, maxDatasetProfile, false},
		}
		for _, f := range fields {
			v, werr := dp.str(f.name)
			if werr != nil {
				return nil, werr
			}
			if f.required && v == "" {
				return nil, wire.Errorf(wire.InvalidParameterValue, "Dataset %s cannot be None", f.label)
			}
			if runeLen(v) > f.limit {
				return nil, wire.Errorf(wire.InvalidParameterValue, "Dataset %s exceeds the maximum length of %d", f.label, f.limit)
			}
			*f.dst = v
		}
		tags, werr := o.objects("tags")
		if werr != nil {
			return nil, werr
		}
		for _, t := range tags {
			k, werr := t.str("key")
			if werr != nil {
				return nil, werr
			}
			v, werr := t.str("value")
			if werr != nil {
				return nil, werr
			}
			switch {
			case !t.has("key"):
				return nil, wire.Errorf(wire.InvalidParameterValue, "InputTag key cannot be None")
			case !t.has("value"):
				return nil, wire.Errorf(wire.InvalidParameterValue, "InputTag value cannot be None")
			case runeLen(k) > maxInputTagKey:
				return nil, wire.Errorf(wire.InvalidParameterValue, "InputTag key exceeds the maximum length of %d", maxInputTagKey)
			case runeLen(v) > maxInputTagValue:
				return nil, wire.Errorf(wire.InvalidParameterValue, "InputTag value exceeds the maximum length of %d", maxInputTagValue)
			}
			in.tags = append(in.tags, KeyValue{Key: k, Value: v})
		}
		out = append(out, in)
	}
	return out, nil
}

// modelRefs reads [{model_id, step}] lists.
func modelRefs(p *params, name string) ([]ModelOutput, *wire.Error) {
	objs, werr := p.objects(name)
	if werr != nil {
		return nil, werr
	}
	out := make([]ModelOutput, 0, len(objs))
	for _, o := range objs {
		id, werr := o.reqStr("model_id")
		if werr != nil {
			return nil, werr
		}
		step, _, werr := o.int64Field("step")
		if werr != nil {
			return nil, werr
		}
		out = append(out, ModelOutput{ModelID: id, Step: step})
	}
	return out, nil
}

// logInputs is POST runs/log-inputs.
func (a *API) logInputs(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(false)
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !runIDPattern.MatchString(id) {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Invalid value \"%s\" for parameter 'run_id' supplied.", truncateForMessage(id)))
	}
	datasets, werr := readDatasetInputs(p)
	if werr != nil {
		return wire.Send(c, werr)
	}
	models, werr := modelRefs(p, "models")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
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
	return a.send(c, fiber.Map{}, err)
}

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

// logOutputs is POST runs/outputs.
func (a *API) logOutputs(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(false)
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !p.has("models") {
		return wire.Send(c, wire.MissingParam("models"))
	}
	models, werr := modelRefs(p, "models")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.writeActiveRun(ctx, id, func(tx *metadata.Tx) error {
		for _, m := range models {
			if err := upsertInput(ctx, tx, "RUN_OUTPUT", id, "MODEL_OUTPUT", m.ModelID, m.Step); err != nil {
				return err
			}
		}
		return nil
	})
	return a.send(c, fiber.Map{}, err)
}
