package schema

import (
	"fmt"
	"slices"
)

// tablesAddedAfter36 are the 14 tables revisions after Base36 create.
var tablesAddedAfter36 = []string{
	"secrets", "endpoints", "model_definitions", "endpoint_model_mappings", "endpoint_bindings",
	"endpoint_tags", "trace_metrics", "online_scoring_configs", "span_metrics", "workspaces",
	"budget_policies", "issues", "guardrails", "guardrail_configs",
}

// Legacy36DDL returns statements that build a database as MLflow 3.6
// (revision Base36) leaves it, derived from the head model by undoing the
// 15 later revisions: no workspace columns, name-keyed registry tables,
// jobs.function_fullname, no GenAI tables. Tests use it as upgrade input;
// it is not used to serve.
func Legacy36DDL(d Dialect) []string {
	var out []string
	all := append([]Table{alembicVersion}, legacy36Tables()...)
	for i := range all {
		out = append(out, CreateTableSQL(d, &all[i]))
		for _, ix := range all[i].Indexes {
			out = append(out, CreateIndexSQL(d, all[i].Name, ix))
		}
	}
	return append(out, fmt.Sprintf("INSERT INTO alembic_version (version_num) VALUES ('%s')", Base36))
}

func legacy36Tables() []Table {
	var out []Table
	for _, h := range headTables {
		if slices.Contains(tablesAddedAfter36, h.Name) {
			continue
		}
		t := h
		t.Columns = slices.DeleteFunc(slices.Clone(h.Columns), func(c Column) bool {
			return c.Name == "workspace" || c.Name == "status_details" || c.Name == "dimension_attributes"
		})
		t.Indexes = slices.DeleteFunc(slices.Clone(h.Indexes), func(ix Index) bool {
			return slices.Contains(ix.Columns, "workspace") || ix.Name == "index_metrics_run_uuid_key_step"
		})
		t.Uniques = nil
		regFK := func(name string, cols []string, ref string, onDelete string) []ForeignKey {
			return []ForeignKey{{Name: name, Columns: cols, RefTable: ref, RefColumns: cols, OnDelete: onDelete, OnUpdate: "CASCADE"}}
		}
		switch t.Name {
		case "experiments":
			t.Uniques = []Unique{{Columns: []string{"name"}}}
		case "registered_models":
			t.PK = []string{"name"}
			t.Uniques = []Unique{{Columns: []string{"name"}}}
		case "model_versions":
			t.PK = []string{"name", "version"}
			t.FKs = regFK("", []string{"name"}, "registered_models", "")
		case "registered_model_tags":
			t.PK = []string{"key", "name"}
			t.FKs = regFK("", []string{"name"}, "registered_models", "")
		case "model_version_tags":
			t.PK = []string{"key", "name", "version"}
			t.FKs = regFK("", []string{"name", "version"}, "model_versions", "")
		case "registered_model_aliases":
			t.PK = []string{"name", "alias"}
			t.FKs = regFK("registered_model_alias_name_fkey", []string{"name"}, "registered_models", "CASCADE")
		case "jobs":
			t.Columns = slices.Clone(t.Columns)
			for i := range t.Columns {
				if t.Columns[i].Name == "job_name" {
					t.Columns[i].Name = "function_fullname"
				}
			}
			t.Indexes = []Index{{Name: "index_jobs_function_status_creation_time", Columns: []string{"function_fullname", "status", "creation_time"}}}
		case "evaluation_dataset_records":
			t.Uniques = h.Uniques
		}
		out = append(out, t)
	}
	return out
}
