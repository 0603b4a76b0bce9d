package tracking

import (
	"github.com/gofiber/fiber/v2"

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
	err := a.addRunInputs(ctx, id, datasets, models)
	return a.send(c, fiber.Map{}, err)
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
	err := a.addRunOutputs(ctx, id, models)
	return a.send(c, fiber.Map{}, err)
}
