package schema

import (
	"fmt"
	"strings"
)

// UsedTables are the tables Ferry reads or writes today. The usability
// check of a database stamped by an unknown (newer) upstream revision
// verifies that each of them has every column of the head model. Extend
// this list when Ferry starts using another table.
var UsedTables = []string{
	"experiments", "experiment_tags", "runs", "tags", "params", "metrics", "latest_metrics",
	"datasets", "inputs", "input_tags",
	"logged_models", "logged_model_metrics", "logged_model_params", "logged_model_tags",
	"assessments", // run and experiment deletion delete assessments (3.11)
	// tracing
	"trace_info", "trace_tags", "trace_request_metadata", "spans", "entity_associations",
}

// MissingError lists what a database lacks for Ferry to use it.
type MissingError struct {
	Revision string
	Missing  []string // "table" or "table.column"
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("database (alembic revision %q) lacks what Ferry needs: %s", e.Revision, strings.Join(e.Missing, ", "))
}

// CheckUsable returns a *MissingError when snap lacks a table or column
// Ferry uses, nil otherwise. It deliberately ignores the revision string,
// so a database migrated by a newer upstream stays usable while the
// columns Ferry touches are still there.
func CheckUsable(snap *Snapshot) error {
	var missing []string
	for _, name := range UsedTables {
		t := Lookup(name)
		if !snap.HasTable(name) {
			missing = append(missing, name)
			continue
		}
		for _, c := range t.Columns {
			if !snap.HasColumn(name, c.Name) {
				missing = append(missing, name+"."+c.Name)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rev, _ := snap.Revision()
	return &MissingError{Revision: rev, Missing: missing}
}
