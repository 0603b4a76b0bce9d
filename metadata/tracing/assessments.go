package tracing

import (
	"database/sql"
	"encoding/json"
)

// assessment is one assessments row. Value, Error and Metadata hold the
// JSON text upstream writes (json.dumps of the value, of the error dict,
// of the metadata map).
type assessment struct {
	ID, TraceID, Name, Type string
	Value                   string
	Error                   *string
	Created, Updated        int64
	SourceType              string
	SourceID                *string
	RunID, SpanID           *string
	Rationale, Overrides    *string
	Valid                   bool
	Metadata                *string
}

// The assessment kinds (assessments.assessment_type).
const (
	kindFeedback    = "feedback"
	kindExpectation = "expectation"
	kindIssue       = "issue"
)

const assessmentColumns = "assessment_id, trace_id, name, assessment_type, value, error, created_timestamp, last_updated_timestamp, source_type, source_id, run_id, span_id, rationale, overrides, valid, assessment_metadata"

func scanAssessment(rows interface{ Scan(...any) error }) (assessment, error) {
	var a assessment
	var errText, srcID, runID, spanID, rationale, overrides, md sql.NullString
	var valid sql.NullBool
	err := rows.Scan(&a.ID, &a.TraceID, &a.Name, &a.Type, &a.Value, &errText, &a.Created, &a.Updated,
		&a.SourceType, &srcID, &runID, &spanID, &rationale, &overrides, &valid, &md)
	a.Error, a.SourceID, a.RunID, a.SpanID = nullable(errText), nullable(srcID), nullable(runID), nullable(spanID)
	a.Rationale, a.Overrides, a.Metadata = nullable(rationale), nullable(overrides), nullable(md)
	a.Valid = !valid.Valid || valid.Bool
	return a, err
}

// assessmentJSON is the Assessment message in proto JSON.
type assessmentJSON struct {
	AssessmentID   string            `json:"assessment_id"`
	AssessmentName string            `json:"assessment_name"`
	TraceID        string            `json:"trace_id"`
	SpanID         *string           `json:"span_id,omitempty"`
	Source         assessmentSource  `json:"source"`
	CreateTime     string            `json:"create_time"`
	LastUpdateTime string            `json:"last_update_time"`
	Feedback       map[string]any    `json:"feedback,omitempty"`
	Expectation    map[string]any    `json:"expectation,omitempty"`
	Issue          map[string]any    `json:"issue,omitempty"`
	Rationale      *string           `json:"rationale,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Overrides      *string           `json:"overrides,omitempty"`
	Valid          bool              `json:"valid"`
}

type assessmentSource struct {
	SourceType string  `json:"source_type"`
	SourceID   *string `json:"source_id,omitempty"`
}

// decodedValue reads stored JSON text; text that is not JSON (written by
// something else) comes back as a string.
func decodedValue(text string) any {
	var v any
	if err := decodeUseNumber([]byte(text), &v); err != nil {
		return text
	}
	return v
}

func (a *assessment) json() assessmentJSON {
	out := assessmentJSON{
		AssessmentID:   a.ID,
		AssessmentName: a.Name,
		TraceID:        a.TraceID,
		SpanID:         a.SpanID,
		Source:         assessmentSource{SourceType: a.SourceType, SourceID: a.SourceID},
		CreateTime:     protoTimestamp(a.Created),
		LastUpdateTime: protoTimestamp(a.Updated),
		Rationale:      a.Rationale,
		Overrides:      a.Overrides,
		Valid:          a.Valid,
	}
	if a.Metadata != nil {
		var m map[string]string
		if json.Unmarshal([]byte(*a.Metadata), &m) == nil && len(m) > 0 {
			out.Metadata = m
		}
	}
	v := decodedValue(a.Value)
	switch a.Type {
	case kindExpectation:
		out.Expectation = map[string]any{"value": v}
	case kindIssue:
		out.Issue = map[string]any{"issue_name": v}
	default:
		out.Feedback = map[string]any{}
		if v != nil {
			out.Feedback["value"] = v
		}
		if a.Error != nil {
			if e, ok := decodedValue(*a.Error).(map[string]any); ok {
				out.Feedback["error"] = e
			}
		}
	}
	return out
}
