package tracing

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// sourceRunKey is AssessmentMetadataKey.SOURCE_RUN_ID; its value also
// goes to the assessments.run_id column.
const sourceRunKey = "mlflow.assessment.sourceRunId"

var sourceTypes = map[string]bool{"SOURCE_TYPE_UNSPECIFIED": true, "HUMAN": true, "LLM_JUDGE": true, "CODE": true}

// assessmentInput is what a create or update request carries; a nil
// field was not given.
type assessmentInput struct {
	Name       *string
	Kind       string // feedback / expectation / issue, "" when none given
	Value      *string
	Error      *string
	SourceType *string
	SourceID   *string
	SpanID     *string
	Rationale  *string
	Metadata   map[string]string
	HasMeta    bool
	Overrides  *string
	Valid      *bool
	Created    *int64
	Updated    *int64
}

func strPtrField(m map[string]any, path, name string, max int) (*string, *wire.Error) {
	s, ok, werr := strField(m, path, name)
	if werr != nil || !ok {
		return nil, werr
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		return nil, wire.Errorf(wire.InvalidParameterValue, "'%s.%s' exceeds the maximum length of %d characters", path, name, max)
	}
	return &s, nil
}

// readAssessment reads the request's assessment message.
func readAssessment(r *wire.Request) (*assessmentInput, *wire.Error) {
	m, ok, werr := r.Object("assessment")
	if werr != nil {
		return nil, werr
	}
	if !ok {
		return nil, wire.MissingParam("assessment")
	}
	const p = "assessment"
	in := &assessmentInput{}
	if in.Name, werr = strPtrField(m, p, "assessment_name", 250); werr != nil {
		return nil, werr
	}
	if in.SpanID, werr = strPtrField(m, p, "span_id", 50); werr != nil {
		return nil, werr
	}
	if in.Rationale, werr = strPtrField(m, p, "rationale", 0); werr != nil {
		return nil, werr
	}
	if in.Overrides, werr = strPtrField(m, p, "overrides", 50); werr != nil {
		return nil, werr
	}
	if v, ok := m["valid"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, wire.InvalidType(p+".valid", v)
		}
		in.Valid = &b
	}
	if _, ok := m["metadata"]; ok {
		in.HasMeta = true
		if in.Metadata, werr = stringMap(m, p, "metadata"); werr != nil {
			return nil, werr
		}
	}
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"create_time", &in.Created}, {"last_update_time", &in.Updated}} {
		s, ok, werr := strField(m, p, f.name)
		if werr != nil {
			return nil, werr
		}
		if ok {
			ms, good := parseProtoTimestamp(s)
			if !good {
				return nil, wire.InvalidType(p+"."+f.name, s)
			}
			*f.dst = &ms
		}
	}
	if src, ok := m["source"]; ok && src != nil {
		sm, werr := wire.AsObject(p+".source", src)
		if werr != nil {
			return nil, werr
		}
		if in.SourceType, werr = strPtrField(sm, p+".source", "source_type", 0); werr != nil {
			return nil, werr
		}
		if in.SourceType != nil && !sourceTypes[*in.SourceType] {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Invalid source type: %s. Must be one of [HUMAN, LLM_JUDGE, CODE, SOURCE_TYPE_UNSPECIFIED]", *in.SourceType)
		}
		if in.SourceID, werr = strPtrField(sm, p+".source", "source_id", 250); werr != nil {
			return nil, werr
		}
	}
	kinds := 0
	for _, kind := range []string{kindFeedback, kindExpectation, kindIssue} {
		raw, ok := m[kind]
		if !ok || raw == nil {
			continue
		}
		kinds++
		km, werr := wire.AsObject(p+"."+kind, raw)
		if werr != nil {
			return nil, werr
		}
		in.Kind = kind
		if werr := in.readValue(kind, km); werr != nil {
			return nil, werr
		}
	}
	if kinds > 1 {
		return nil, wire.Errorf(wire.InvalidParameterValue, "Exactly one of `expectation`, `feedback` or `issue` should be specified.")
	}
	return in, nil
}

// readValue reads the value of a feedback / expectation / issue message
// as the JSON text stored in assessments.value.
func (in *assessmentInput) readValue(kind string, km map[string]any) *wire.Error {
	path := "assessment." + kind
	var text string
	switch kind {
	case kindIssue:
		name, ok, werr := strField(km, path, "issue_name")
		if werr != nil {
			return werr
		}
		if !ok || name == "" {
			return wire.MissingParam(path + ".issue_name")
		}
		text = pyDumps(name)
	case kindExpectation:
		if sv, ok := km["serialized_value"]; ok && sv != nil {
			sm, werr := wire.AsObject(path+".serialized_value", sv)
			if werr != nil {
				return werr
			}
			raw, _, werr := strField(sm, path+".serialized_value", "value")
			if werr != nil {
				return werr
			}
			var v any
			if err := decodeUseNumber([]byte(raw), &v); err != nil {
				return wire.Errorf(wire.InvalidParameterValue, "Invalid value for parameter '%s.serialized_value.value': not JSON.", path)
			}
			text = pyDumps(v)
		} else {
			text = pyDumps(km["value"])
		}
	default:
		text = pyDumps(km["value"])
		if e, ok := km["error"]; ok && e != nil {
			em, werr := wire.AsObject(path+".error", e)
			if werr != nil {
				return werr
			}
			et := pyDumps(em)
			in.Error = &et
		}
	}
	if werr := wire.CheckText(path, text); werr != nil {
		return werr
	}
	in.Value = &text
	return nil
}

// metadataText is the assessment_metadata column for md (nil when empty).
func metadataText(md map[string]string) *string {
	if len(md) == 0 {
		return nil
	}
	s := pyDumps(md)
	return &s
}

// assessmentIDParam reads and checks the URL's ids.
func assessmentIDs(c *fiber.Ctx) (string, string, *wire.Error) {
	traceID, werr := traceIDParam(c)
	if werr != nil {
		return "", "", werr
	}
	id := c.Params("assessment_id")
	if werr := wire.CheckText("assessment_id", id); werr != nil {
		return "", "", werr
	}
	if id == "" || len(id) > 50 {
		return "", "", wire.Errorf(wire.ResourceDoesNotExist, "Assessment with ID '%s' not found for trace '%s'", id, traceID)
	}
	return traceID, id, nil
}

// createAssessment is POST /api/3.0/mlflow/traces/<trace_id>/assessments.
func (a *API) createAssessment(c *fiber.Ctx) error {
	traceID, werr := traceIDParam(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	in, werr := readAssessment(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	if in.Name == nil || strings.TrimFunc(*in.Name, unicode.IsSpace) == "" {
		return wire.Send(c, wire.MissingParam("assessment.assessment_name"))
	}
	if in.Kind == "" {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Exactly one of `expectation`, `feedback` or `issue` should be specified."))
	}
	return a.sendAssessment(c)(a.insertAssessment(c.UserContext(), traceID, in))
}

// sendAssessment answers {"assessment"} or the error.
func (a *API) sendAssessment(c *fiber.Ctx) func(assessment, error) error {
	return func(out assessment, err error) error {
		if err != nil {
			return a.send(c, nil, err)
		}
		return a.send(c, fiber.Map{"assessment": out.json()}, nil)
	}
}

// getAssessment is GET …/traces/<trace_id>/assessments/<assessment_id>.
func (a *API) getAssessment(c *fiber.Ctx) error {
	traceID, id, werr := assessmentIDs(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.sendAssessment(c)(a.readAssessment(c.UserContext(), traceID, id))
}

// updateMaskPaths are UpdateAssessment's update_mask paths.
var updateMaskPaths = map[string]bool{"assessment_name": true, "expectation": true, "feedback": true, "rationale": true, "metadata": true, "valid": true}

// readUpdateMask reads a FieldMask: proto JSON's comma-separated string
// (camelCase or snake_case paths), or {"paths": [...]}.
func readUpdateMask(r *wire.Request) ([]string, *wire.Error) {
	raw, ok := r.Value("update_mask")
	if !ok {
		return nil, wire.MissingParam("update_mask")
	}
	var paths []string
	switch x := raw.(type) {
	case string:
		for _, p := range strings.Split(x, ",") {
			if p = strings.TrimSpace(p); p != "" {
				paths = append(paths, snakeCase(p))
			}
		}
	case map[string]any:
		list, werr := wire.AsStrings("update_mask.paths", x["paths"])
		if x["paths"] == nil {
			list, werr = nil, nil
		}
		if werr != nil {
			return nil, werr
		}
		paths = list
	default:
		return nil, r.TypeError("update_mask")
	}
	if len(paths) == 0 {
		return nil, wire.MissingParam("update_mask")
	}
	for _, p := range paths {
		if !updateMaskPaths[p] {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Invalid update_mask path '%s'. Supported paths are assessment_name, expectation, feedback, rationale, metadata, valid.", p)
		}
	}
	return paths, nil
}

func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// updateAssessment is PATCH …/traces/<trace_id>/assessments/<assessment_id>.
func (a *API) updateAssessment(c *fiber.Ctx) error {
	traceID, id, werr := assessmentIDs(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	in, werr := readAssessment(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	paths, werr := readUpdateMask(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.sendAssessment(c)(a.patchAssessment(c.UserContext(), traceID, id, in, paths))
}

// deleteAssessment is DELETE …/traces/<trace_id>/assessments/<assessment_id>.
func (a *API) deleteAssessment(c *fiber.Ctx) error {
	traceID, id, werr := assessmentIDs(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.send(c, fiber.Map{}, a.removeAssessment(c.UserContext(), traceID, id))
}
