package tracing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

func assessmentNotFound(traceID, id string) error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Assessment with ID '%s' not found for trace '%s'", id, traceID)
}

// loadAssessment reads one assessment of a trace (ids compared exactly).
func loadAssessment(ctx context.Context, tx *metadata.Tx, traceID, id string, lock bool) (assessment, error) {
	d := tx.Dialect()
	q := "SELECT " + assessmentColumns + " FROM assessments WHERE " + metadata.ExactEq(d, "assessment_id") + " AND " + metadata.ExactEq(d, "trace_id")
	if lock && d != schema.SQLite {
		q += " FOR UPDATE"
	}
	as, err := scanAssessment(tx.QueryRow(ctx, q, id, traceID))
	if errors.Is(err, sql.ErrNoRows) {
		return as, assessmentNotFound(traceID, id)
	}
	return as, err
}

func setValid(ctx context.Context, tx *metadata.Tx, id string, valid bool) error {
	_, err := tx.Exec(ctx, "UPDATE assessments SET valid = ? WHERE assessment_id = ?", valid, id)
	return err
}

// runIDOf is the run_id column: the sourceRunId metadata when it fits.
func runIDOf(md map[string]string) *string {
	if r, ok := md[sourceRunKey]; ok && r != "" && len(r) <= 32 {
		return &r
	}
	return nil
}

// insertAssessment is CreateAssessment: a new a-<32 hex> id; an
// assessment that overrides another marks that one invalid.
func (a *API) insertAssessment(ctx context.Context, traceID string, in *assessmentInput) (assessment, error) {
	now := a.nowMillis()
	as := assessment{
		ID: "a-" + newHexID(16), TraceID: traceID, Name: *in.Name, Type: in.Kind, Value: *in.Value, Error: in.Error,
		Created: now, Updated: now, SourceType: "SOURCE_TYPE_UNSPECIFIED", SourceID: in.SourceID, SpanID: in.SpanID,
		Rationale: in.Rationale, Overrides: in.Overrides, Valid: true, Metadata: metadataText(in.Metadata),
		RunID: runIDOf(in.Metadata),
	}
	if in.SourceType != nil {
		as.SourceType = *in.SourceType
	}
	if in.Created != nil {
		as.Created = *in.Created
		as.Updated = *in.Created
	}
	if in.Updated != nil {
		as.Updated = *in.Updated
	}
	if in.Valid != nil {
		as.Valid = *in.Valid
	}
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if err := lockTrace(ctx, tx, traceID); err != nil {
			return err
		}
		if as.Overrides != nil {
			if _, err := loadAssessment(ctx, tx, traceID, *as.Overrides, true); err != nil {
				return err
			}
			if err := setValid(ctx, tx, *as.Overrides, false); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO assessments ("+assessmentColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			as.ID, as.TraceID, as.Name, as.Type, as.Value, as.Error, as.Created, as.Updated, as.SourceType, as.SourceID,
			as.RunID, as.SpanID, as.Rationale, as.Overrides, as.Valid, as.Metadata)
		return err
	})
	return as, err
}

// readAssessment is GetAssessment.
func (a *API) readAssessment(ctx context.Context, traceID, id string) (assessment, error) {
	var as assessment
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		as, err = loadAssessment(ctx, tx, traceID, id, false)
		return err
	})
	return as, err
}

// patchAssessment is UpdateAssessment: the fields named by paths change;
// the kind cannot (feedback stays feedback); metadata merges into the
// existing map.
func (a *API) patchAssessment(ctx context.Context, traceID, id string, in *assessmentInput, paths []string) (assessment, error) {
	var as assessment
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		var err error
		if as, err = loadAssessment(ctx, tx, traceID, id, true); err != nil {
			return err
		}
		for _, p := range paths {
			switch p {
			case "assessment_name":
				if in.Name == nil || *in.Name == "" {
					return wire.MissingParam("assessment.assessment_name")
				}
				as.Name = *in.Name
			case kindFeedback, kindExpectation:
				if as.Type != p {
					return wire.Errorf(wire.InvalidParameterValue, "Cannot update the %s of a %s assessment.", p, as.Type)
				}
				if in.Kind != p || in.Value == nil {
					return wire.MissingParam("assessment." + p)
				}
				as.Value, as.Error = *in.Value, in.Error
			case "rationale":
				as.Rationale = in.Rationale
			case "metadata":
				md := map[string]string{}
				if as.Metadata != nil {
					_ = json.Unmarshal([]byte(*as.Metadata), &md)
				}
				for k, v := range in.Metadata {
					md[k] = v
				}
				as.Metadata, as.RunID = metadataText(md), runIDOf(md)
			case "valid":
				as.Valid = in.Valid == nil || *in.Valid
			}
		}
		as.Updated = a.nowMillis()
		_, err = tx.Exec(ctx, "UPDATE assessments SET name = ?, value = ?, error = ?, rationale = ?, assessment_metadata = ?, run_id = ?, valid = ?, last_updated_timestamp = ? WHERE assessment_id = ?",
			as.Name, as.Value, as.Error, as.Rationale, as.Metadata, as.RunID, as.Valid, as.Updated, as.ID)
		return err
	})
	return as, err
}

// removeAssessment is DeleteAssessment: deleting an override makes the
// assessment it overrode valid again. A missing assessment is no error.
func (a *API) removeAssessment(ctx context.Context, traceID, id string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		as, err := loadAssessment(ctx, tx, traceID, id, true)
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) && we.Code == wire.ResourceDoesNotExist {
				return nil
			}
			return err
		}
		if as.Overrides != nil {
			if err := setValid(ctx, tx, *as.Overrides, true); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "DELETE FROM assessments WHERE assessment_id = ?", as.ID)
		return err
	})
}
