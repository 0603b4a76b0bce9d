package schema

// headTables is upstream's schema at alembic head 7d34483879f0 (MLflow
// 3.11), in creation order. Sources: spec backend-store.md §5 and
// upstream's migrations and reference DDL dumps; see metadata/NOTES.md for
// the few GenAI-table details that had to be reconstructed.
var headTables = []Table{
	{
		Name: "experiments",
		Columns: []Column{
			{Name: "experiment_id", Type: Integer, NotNull: true, AutoIncrement: true},
			S("name", 256), s("artifact_location", 256), s("lifecycle_stage", 32),
			b("creation_time"), b("last_update_time"), ws(),
		},
		PKName:  "experiment_pk",
		PK:      []string{"experiment_id"},
		Uniques: []Unique{{Name: "uq_experiments_workspace_name", Columns: []string{"workspace", "name"}}},
		Checks:  []Check{{Name: "experiments_lifecycle_stage", Column: "lifecycle_stage", Values: lifecycle}},
		Indexes: []Index{
			{Name: "idx_experiments_workspace", Columns: []string{"workspace"}},
			{Name: "idx_experiments_workspace_creation_time", Columns: []string{"workspace", "creation_time"}},
		},
	},
	{
		Name:    "experiment_tags",
		Columns: []Column{S("key", 250), s("value", 5000), I("experiment_id")},
		PKName:  "experiment_tag_pk", PK: []string{"key", "experiment_id"},
		FKs: []ForeignKey{fk("", "experiment_id", "experiments", "experiment_id", "")},
	},
	{
		Name: "runs",
		Columns: []Column{
			S("run_uuid", 32), s("name", 250), s("source_type", 20), s("source_name", 500),
			s("entry_point_name", 50), s("user_id", 256), s("status", 9), b("start_time"),
			b("end_time"), s("source_version", 50), s("lifecycle_stage", 20),
			s("artifact_uri", 200), i("experiment_id"), b("deleted_time"),
		},
		PKName: "run_pk", PK: []string{"run_uuid"},
		FKs: []ForeignKey{fk("", "experiment_id", "experiments", "experiment_id", "")},
		Checks: []Check{
			{Name: "runs_lifecycle_stage", Column: "lifecycle_stage", Values: lifecycle},
			{Name: "source_type", Column: "source_type", Values: []string{"NOTEBOOK", "JOB", "LOCAL", "UNKNOWN", "PROJECT"}},
			{Column: "status", Values: []string{"SCHEDULED", "FAILED", "FINISHED", "RUNNING", "KILLED"}},
		},
	},
	{
		Name:    "tags",
		Columns: []Column{S("key", 250), s("value", 8000), S("run_uuid", 32)},
		PKName:  "tag_pk", PK: []string{"key", "run_uuid"},
		FKs:     []ForeignKey{fk("", "run_uuid", "runs", "run_uuid", "")},
		Indexes: []Index{{Name: "index_tags_run_uuid", Columns: []string{"run_uuid"}}},
	},
	{
		Name:    "params",
		Columns: []Column{S("key", 250), S("value", 8000), S("run_uuid", 32)},
		PKName:  "param_pk", PK: []string{"key", "run_uuid"},
		FKs:     []ForeignKey{fk("", "run_uuid", "runs", "run_uuid", "")},
		Indexes: []Index{{Name: "index_params_run_uuid", Columns: []string{"run_uuid"}}},
	},
	{
		Name: "metrics",
		Columns: []Column{
			S("key", 250), DBL("value"), B("timestamp"), S("run_uuid", 32),
			{Name: "step", Type: BigInt, NotNull: true, Default: int64(0)},
			{Name: "is_nan", Type: Boolean, NotNull: true, Default: false},
		},
		PKName: "metric_pk", PK: []string{"key", "timestamp", "step", "run_uuid", "value", "is_nan"},
		FKs:    []ForeignKey{fk("", "run_uuid", "runs", "run_uuid", "")},
		Checks: []Check{{Column: "is_nan", Bool: true}},
		Indexes: []Index{
			{Name: "index_metrics_run_uuid", Columns: []string{"run_uuid"}},
			{Name: "index_metrics_run_uuid_key_step", Columns: []string{"run_uuid", "key", "step"}},
		},
	},
	{
		Name: "latest_metrics",
		Columns: []Column{
			S("key", 250), DBL("value"), b("timestamp"), B("step"), BOOL("is_nan"), S("run_uuid", 32),
		},
		PKName: "latest_metric_pk", PK: []string{"key", "run_uuid"},
		FKs:     []ForeignKey{fk("", "run_uuid", "runs", "run_uuid", "")},
		Checks:  []Check{{Column: "is_nan", Bool: true}},
		Indexes: []Index{{Name: "index_latest_metrics_run_uuid", Columns: []string{"run_uuid"}}},
	},
	{
		Name: "datasets",
		Columns: []Column{
			S("dataset_uuid", 36), I("experiment_id"), S("name", 500), S("digest", 36),
			S("dataset_source_type", 36), TXT("dataset_source"),
			{Name: "dataset_schema", Type: MediumText}, {Name: "dataset_profile", Type: MediumText},
		},
		PKName: "dataset_pk", PK: []string{"experiment_id", "name", "digest"},
		FKs: []ForeignKey{fk("fk_datasets_experiment_id_experiments", "experiment_id", "experiments", "experiment_id", "CASCADE")},
		Indexes: []Index{
			{Name: "index_datasets_dataset_uuid", Columns: []string{"dataset_uuid"}},
			{Name: "index_datasets_experiment_id_dataset_source_type", Columns: []string{"experiment_id", "dataset_source_type"}},
		},
	},
	{
		Name: "inputs",
		Columns: []Column{
			S("input_uuid", 36), S("source_type", 36), S("source_id", 36), S("destination_type", 36),
			S("destination_id", 36), {Name: "step", Type: BigInt, NotNull: true, Default: int64(0)},
		},
		PKName: "inputs_pk", PK: []string{"source_type", "source_id", "destination_type", "destination_id"},
		Indexes: []Index{
			{Name: "index_inputs_destination_type_destination_id_source_type", Columns: []string{"destination_type", "destination_id", "source_type"}},
			{Name: "index_inputs_input_uuid", Columns: []string{"input_uuid"}},
		},
	},
	{
		Name:    "input_tags",
		Columns: []Column{S("input_uuid", 36), S("name", 255), S("value", 500)},
		PKName:  "input_tags_pk", PK: []string{"input_uuid", "name"},
	},
	{
		Name: "logged_models",
		Columns: []Column{
			S("model_id", 36), I("experiment_id"), S("name", 500), S("artifact_location", 1000),
			B("creation_timestamp_ms"), B("last_updated_timestamp_ms"), I("status"),
			s("lifecycle_stage", 32), s("model_type", 500), s("source_run_id", 32), s("status_message", 1000),
		},
		PKName: "logged_models_pk", PK: []string{"model_id"},
		FKs:    []ForeignKey{fk("fk_logged_models_experiment_id", "experiment_id", "experiments", "experiment_id", "CASCADE")},
		Checks: []Check{{Name: "logged_models_lifecycle_stage_check", Column: "lifecycle_stage", Values: lifecycle}},
	},
	{
		Name: "logged_model_metrics",
		Columns: []Column{
			S("model_id", 36), S("metric_name", 500), B("metric_timestamp_ms"), B("metric_step"),
			dbl("metric_value"), I("experiment_id"), S("run_id", 32), s("dataset_uuid", 36),
			s("dataset_name", 500), s("dataset_digest", 36),
		},
		PKName: "logged_model_metrics_pk", PK: []string{"model_id", "metric_name", "metric_timestamp_ms", "metric_step", "run_id"},
		FKs: []ForeignKey{
			fk("fk_logged_model_metrics_experiment_id", "experiment_id", "experiments", "experiment_id", ""),
			fk("fk_logged_model_metrics_model_id", "model_id", "logged_models", "model_id", "CASCADE"),
			fk("fk_logged_model_metrics_run_id", "run_id", "runs", "run_uuid", "CASCADE"),
		},
		Indexes: []Index{{Name: "index_logged_model_metrics_model_id", Columns: []string{"model_id"}}},
	},
	{
		Name:    "logged_model_params",
		Columns: []Column{S("model_id", 36), I("experiment_id"), S("param_key", 255), TXT("param_value")},
		PKName:  "logged_model_params_pk", PK: []string{"model_id", "param_key"},
		FKs: []ForeignKey{
			fk("fk_logged_model_params_experiment_id", "experiment_id", "experiments", "experiment_id", ""),
			fk("fk_logged_model_params_model_id", "model_id", "logged_models", "model_id", "CASCADE"),
		},
	},
	{
		Name:    "logged_model_tags",
		Columns: []Column{S("model_id", 36), I("experiment_id"), S("tag_key", 255), TXT("tag_value")},
		PKName:  "logged_model_tags_pk", PK: []string{"model_id", "tag_key"},
		FKs: []ForeignKey{
			fk("fk_logged_model_tags_experiment_id", "experiment_id", "experiments", "experiment_id", ""),
			fk("fk_logged_model_tags_model_id", "model_id", "logged_models", "model_id", "CASCADE"),
		},
	},
	{
		Name:    "registered_models",
		Columns: []Column{S("name", 256), b("creation_time"), b("last_updated_time"), s("description", 5000), ws()},
		PKName:  "registered_model_pk", PK: []string{"workspace", "name"},
		Indexes: []Index{{Name: "idx_registered_models_workspace", Columns: []string{"workspace"}}},
	},
	{
		Name: "model_versions",
		Columns: []Column{
			S("name", 256), I("version"), b("creation_time"), b("last_updated_time"),
			s("description", 5000), s("user_id", 256), s("current_stage", 20), s("source", 500),
			s("run_id", 32), s("status", 20), s("status_message", 500), s("run_link", 500),
			s("storage_location", 500), ws(),
		},
		PKName: "model_version_pk", PK: []string{"workspace", "name", "version"},
		FKs: []ForeignKey{{Name: "fk_model_versions_registered_models", Columns: []string{"workspace", "name"},
			RefTable: "registered_models", RefColumns: []string{"workspace", "name"}, OnUpdate: "CASCADE"}},
	},
	{
		Name:    "registered_model_tags",
		Columns: []Column{S("key", 250), s("value", 5000), S("name", 256), ws()},
		PKName:  "registered_model_tag_pk", PK: []string{"workspace", "key", "name"},
		FKs: []ForeignKey{{Name: "fk_registered_model_tags_registered_models", Columns: []string{"workspace", "name"},
			RefTable: "registered_models", RefColumns: []string{"workspace", "name"}, OnUpdate: "CASCADE"}},
		Indexes: []Index{{Name: "idx_registered_model_tags_workspace_name", Columns: []string{"workspace", "name"}}},
	},
	{
		Name:    "model_version_tags",
		Columns: []Column{S("key", 250), txt("value"), S("name", 256), I("version"), ws()},
		PKName:  "model_version_tag_pk", PK: []string{"workspace", "key", "name", "version"},
		FKs: []ForeignKey{{Name: "fk_model_version_tags_model_versions", Columns: []string{"workspace", "name", "version"},
			RefTable: "model_versions", RefColumns: []string{"workspace", "name", "version"}, OnUpdate: "CASCADE"}},
		Indexes: []Index{{Name: "idx_model_version_tags_workspace_name_version", Columns: []string{"workspace", "name", "version"}}},
	},
	{
		Name:    "registered_model_aliases",
		Columns: []Column{S("alias", 256), I("version"), S("name", 256), ws()},
		PKName:  "registered_model_alias_pk", PK: []string{"workspace", "name", "alias"},
		FKs: []ForeignKey{{Name: "fk_registered_model_aliases_registered_models", Columns: []string{"workspace", "name"},
			RefTable: "registered_models", RefColumns: []string{"workspace", "name"}, OnDelete: "CASCADE", OnUpdate: "CASCADE"}},
	},
	{
		Name: "webhooks",
		Columns: []Column{
			S("webhook_id", 256), S("name", 256), s("description", 1000), S("url", 500),
			{Name: "status", Type: Varchar, Len: 20, NotNull: true, Default: "ACTIVE"},
			s("secret", 1000), b("creation_timestamp"), b("last_updated_timestamp"), b("deleted_timestamp"), ws(),
		},
		PKName: "webhook_pk", PK: []string{"webhook_id"},
		Indexes: []Index{
			{Name: "idx_webhooks_name", Columns: []string{"name"}},
			{Name: "idx_webhooks_status", Columns: []string{"status"}},
			{Name: "idx_webhooks_workspace", Columns: []string{"workspace"}},
		},
	},
	{
		Name:    "webhook_events",
		Columns: []Column{S("webhook_id", 256), S("entity", 50), S("action", 50)},
		PKName:  "webhook_event_pk", PK: []string{"webhook_id", "entity", "action"},
		FKs: []ForeignKey{fk("", "webhook_id", "webhooks", "webhook_id", "CASCADE")},
		Indexes: []Index{
			{Name: "idx_webhook_events_action", Columns: []string{"action"}},
			{Name: "idx_webhook_events_entity", Columns: []string{"entity"}},
			{Name: "idx_webhook_events_entity_action", Columns: []string{"entity", "action"}},
		},
	},
	{
		Name: "trace_info",
		Columns: []Column{
			S("request_id", 50), I("experiment_id"), B("timestamp_ms"), b("execution_time_ms"),
			S("status", 50), s("client_request_id", 50), s("request_preview", 1000), s("response_preview", 1000),
		},
		PKName: "trace_info_pk", PK: []string{"request_id"},
		FKs:     []ForeignKey{fk("fk_trace_info_experiment_id", "experiment_id", "experiments", "experiment_id", "")},
		Indexes: []Index{{Name: "index_trace_info_experiment_id_timestamp_ms", Columns: []string{"experiment_id", "timestamp_ms"}}},
	},
	{
		Name:    "trace_tags",
		Columns: []Column{S("key", 250), s("value", 8000), S("request_id", 50)},
		PKName:  "trace_tag_pk", PK: []string{"key", "request_id"},
		FKs:     []ForeignKey{fk("fk_trace_tags_request_id", "request_id", "trace_info", "request_id", "CASCADE")},
		Indexes: []Index{{Name: "index_trace_tags_request_id", Columns: []string{"request_id"}}},
	},
	{
		Name:    "trace_request_metadata",
		Columns: []Column{S("key", 250), s("value", 8000), S("request_id", 50)},
		PKName:  "trace_request_metadata_pk", PK: []string{"key", "request_id"},
		FKs:     []ForeignKey{fk("fk_trace_request_metadata_request_id", "request_id", "trace_info", "request_id", "CASCADE")},
		Indexes: []Index{{Name: "index_trace_request_metadata_request_id", Columns: []string{"request_id"}}},
	},
	{
		Name: "spans",
		Columns: []Column{
			S("trace_id", 50), I("experiment_id"), S("span_id", 50), s("parent_span_id", 50),
			txt("name"), s("type", 500), S("status", 50), B("start_time_unix_nano"), b("end_time_unix_nano"),
			{Name: "duration_ns", Type: BigInt, Generated: "end_time_unix_nano - start_time_unix_nano"},
			TXT("content"), {Name: "dimension_attributes", Type: JSON},
		},
		PKName: "spans_pk", PK: []string{"trace_id", "span_id"},
		FKs: []ForeignKey{
			fk("fk_spans_trace_id", "trace_id", "trace_info", "request_id", "CASCADE"),
			fk("fk_spans_experiment_id", "experiment_id", "experiments", "experiment_id", ""),
		},
		Indexes: []Index{
			{Name: "index_spans_experiment_id", Columns: []string{"experiment_id"}},
			{Name: "index_spans_experiment_id_duration", Columns: []string{"experiment_id", "duration_ns"}},
			{Name: "index_spans_experiment_id_status_type", Columns: []string{"experiment_id", "status", "type"}},
			{Name: "index_spans_experiment_id_type_status", Columns: []string{"experiment_id", "type", "status"}},
		},
	},
	{
		Name: "assessments",
		Columns: []Column{
			S("assessment_id", 50), S("trace_id", 50), S("name", 250), S("assessment_type", 20),
			TXT("value"), txt("error"), B("created_timestamp"), B("last_updated_timestamp"),
			S("source_type", 50), s("source_id", 250), s("run_id", 32), s("span_id", 50),
			txt("rationale"), s("overrides", 50), BOOL("valid"), txt("assessment_metadata"),
		},
		PKName: "assessments_pk", PK: []string{"assessment_id"},
		FKs: []ForeignKey{fk("fk_assessments_trace_id", "trace_id", "trace_info", "request_id", "CASCADE")},
		Indexes: []Index{
			{Name: "index_assessments_assessment_type", Columns: []string{"assessment_type"}},
			{Name: "index_assessments_last_updated_timestamp", Columns: []string{"last_updated_timestamp"}},
			{Name: "index_assessments_run_id_created_timestamp", Columns: []string{"run_id", "created_timestamp"}},
			{Name: "index_assessments_trace_id_created_timestamp", Columns: []string{"trace_id", "created_timestamp"}},
		},
	},
	{
		Name: "entity_associations",
		Columns: []Column{
			S("association_id", 36), S("source_type", 36), S("source_id", 36),
			S("destination_type", 36), S("destination_id", 36), b("created_time"),
		},
		PKName: "entity_associations_pk", PK: []string{"source_type", "source_id", "destination_type", "destination_id"},
		Indexes: []Index{
			{Name: "index_entity_associations_association_id", Columns: []string{"association_id"}},
			{Name: "index_entity_associations_reverse_lookup", Columns: []string{"destination_type", "destination_id", "source_type", "source_id"}},
		},
	},
	{
		Name: "evaluation_datasets",
		Columns: []Column{
			S("dataset_id", 36), S("name", 255), txt("schema"), txt("profile"), s("digest", 64),
			b("created_time"), b("last_update_time"), s("created_by", 255), s("last_updated_by", 255), ws(),
		},
		PKName: "evaluation_datasets_pk", PK: []string{"dataset_id"},
		Indexes: []Index{
			{Name: "idx_evaluation_datasets_workspace", Columns: []string{"workspace"}},
			{Name: "index_evaluation_datasets_created_time", Columns: []string{"created_time"}},
			{Name: "index_evaluation_datasets_name", Columns: []string{"name"}},
		},
	},
	{
		Name:    "evaluation_dataset_tags",
		Columns: []Column{S("dataset_id", 36), S("key", 255), s("value", 5000)},
		PKName:  "evaluation_dataset_tags_pk", PK: []string{"dataset_id", "key"},
		FKs:     []ForeignKey{fk("fk_evaluation_dataset_tags_dataset_id", "dataset_id", "evaluation_datasets", "dataset_id", "CASCADE")},
		Indexes: []Index{{Name: "index_evaluation_dataset_tags_dataset_id", Columns: []string{"dataset_id"}}},
	},
	{
		Name: "evaluation_dataset_records",
		Columns: []Column{
			S("dataset_record_id", 36), S("dataset_id", 36), {Name: "inputs", Type: JSON, NotNull: true},
			{Name: "expectations", Type: JSON}, {Name: "tags", Type: JSON}, {Name: "source", Type: JSON},
			s("source_id", 36), s("source_type", 255), b("created_time"), b("last_update_time"),
			s("created_by", 255), s("last_updated_by", 255), S("input_hash", 64), {Name: "outputs", Type: JSON},
		},
		PKName: "evaluation_dataset_records_pk", PK: []string{"dataset_record_id"},
		FKs:     []ForeignKey{fk("fk_evaluation_dataset_records_dataset_id", "dataset_id", "evaluation_datasets", "dataset_id", "CASCADE")},
		Uniques: []Unique{{Name: "unique_dataset_input", Columns: []string{"dataset_id", "input_hash"}}},
		Indexes: []Index{{Name: "index_evaluation_dataset_records_dataset_id", Columns: []string{"dataset_id"}}},
	},
	{
		Name:    "scorers",
		Columns: []Column{I("experiment_id"), S("scorer_name", 256), S("scorer_id", 36)},
		PKName:  "scorer_pk", PK: []string{"scorer_id"},
		FKs:     []ForeignKey{fk("fk_scorers_experiment_id", "experiment_id", "experiments", "experiment_id", "CASCADE")},
		Indexes: []Index{{Name: "index_scorers_experiment_id_scorer_name", Columns: []string{"experiment_id", "scorer_name"}, Unique: true}},
	},
	{
		Name:    "scorer_versions",
		Columns: []Column{S("scorer_id", 36), I("scorer_version"), TXT("serialized_scorer"), b("creation_time")},
		PKName:  "scorer_version_pk", PK: []string{"scorer_id", "scorer_version"},
		FKs:     []ForeignKey{fk("fk_scorer_versions_scorer_id", "scorer_id", "scorers", "scorer_id", "CASCADE")},
		Indexes: []Index{{Name: "index_scorer_versions_scorer_id", Columns: []string{"scorer_id"}}},
	},
	{
		Name: "jobs",
		Columns: []Column{
			S("id", 36), B("creation_time"), S("job_name", 500), TXT("params"), dbl("timeout"),
			I("status"), txt("result"), I("retry_count"), B("last_update_time"), ws(),
			{Name: "status_details", Type: JSON},
		},
		PKName: "jobs_pk", PK: []string{"id"},
		Indexes: []Index{{Name: "index_jobs_name_status_creation_time", Columns: []string{"job_name", "workspace", "status", "creation_time"}}},
	},
	{
		Name: "secrets",
		Columns: []Column{
			S("secret_id", 36), S("secret_name", 255), {Name: "encrypted_value", Type: Blob, NotNull: true},
			{Name: "wrapped_dek", Type: Blob, NotNull: true}, I("kek_version"), S("masked_value", 500),
			s("provider", 64), txt("auth_config"), txt("description"), s("created_by", 255), B("created_at"),
			s("last_updated_by", 255), B("last_updated_at"), ws(),
		},
		PKName: "secrets_pk", PK: []string{"secret_id"},
		Uniques: []Unique{{Name: "uq_secrets_workspace_secret_name", Columns: []string{"workspace", "secret_name"}}},
		Indexes: []Index{{Name: "idx_secrets_workspace", Columns: []string{"workspace"}}},
	},
	{
		Name: "endpoints",
		Columns: []Column{
			S("endpoint_id", 36), s("name", 255), s("created_by", 255), B("created_at"),
			s("last_updated_by", 255), B("last_updated_at"), s("routing_strategy", 64),
			txt("fallback_config_json"), i("experiment_id"),
			{Name: "usage_tracking", Type: Boolean, NotNull: true, Default: false}, ws(),
		},
		PKName: "endpoints_pk", PK: []string{"endpoint_id"},
		FKs:     []ForeignKey{fk("fk_endpoints_experiment_id", "experiment_id", "experiments", "experiment_id", "SET NULL")},
		Uniques: []Unique{{Name: "uq_endpoints_workspace_name", Columns: []string{"workspace", "name"}}},
		Indexes: []Index{{Name: "idx_endpoints_workspace", Columns: []string{"workspace"}}},
	},
	{
		Name: "model_definitions",
		Columns: []Column{
			S("model_definition_id", 36), S("name", 255), s("secret_id", 36), S("provider", 64),
			S("model_name", 256), s("created_by", 255), B("created_at"), s("last_updated_by", 255),
			B("last_updated_at"), ws(),
		},
		PKName: "model_definitions_pk", PK: []string{"model_definition_id"},
		FKs:     []ForeignKey{fk("fk_model_definitions_secret_id", "secret_id", "secrets", "secret_id", "SET NULL")},
		Uniques: []Unique{{Name: "uq_model_definitions_workspace_name", Columns: []string{"workspace", "name"}}},
		Indexes: []Index{
			{Name: "idx_model_definitions_workspace", Columns: []string{"workspace"}},
			{Name: "index_model_definitions_provider", Columns: []string{"provider"}},
			{Name: "index_model_definitions_secret_id", Columns: []string{"secret_id"}},
		},
	},
	{
		Name: "endpoint_model_mappings",
		Columns: []Column{
			S("mapping_id", 36), S("endpoint_id", 36), S("model_definition_id", 36), DBL("weight"),
			s("created_by", 255), B("created_at"),
			{Name: "linkage_type", Type: Varchar, Len: 64, NotNull: true, Default: "PRIMARY"}, i("fallback_order"),
		},
		PKName: "endpoint_model_mappings_pk", PK: []string{"mapping_id"},
		FKs: []ForeignKey{
			fk("fk_endpoint_model_mappings_endpoint_id", "endpoint_id", "endpoints", "endpoint_id", "CASCADE"),
			fk("fk_endpoint_model_mappings_model_definition_id", "model_definition_id", "model_definitions", "model_definition_id", ""),
		},
		Indexes: []Index{
			{Name: "index_endpoint_model_mappings_endpoint_id", Columns: []string{"endpoint_id"}},
			{Name: "index_endpoint_model_mappings_model_definition_id", Columns: []string{"model_definition_id"}},
			{Name: "unique_endpoint_model_linkage_mapping", Columns: []string{"endpoint_id", "model_definition_id", "linkage_type"}, Unique: true},
		},
	},
	{
		Name: "endpoint_bindings",
		Columns: []Column{
			S("endpoint_id", 36), S("resource_type", 50), S("resource_id", 255), B("created_at"),
			s("created_by", 255), B("last_updated_at"), s("last_updated_by", 255), s("display_name", 255),
		},
		PKName: "endpoint_bindings_pk", PK: []string{"endpoint_id", "resource_type", "resource_id"},
		FKs: []ForeignKey{fk("fk_endpoint_bindings_endpoint_id", "endpoint_id", "endpoints", "endpoint_id", "CASCADE")},
	},
	{
		Name:    "endpoint_tags",
		Columns: []Column{S("key", 250), s("value", 5000), S("endpoint_id", 36)},
		PKName:  "endpoint_tag_pk", PK: []string{"key", "endpoint_id"},
		FKs:     []ForeignKey{fk("fk_endpoint_tags_endpoint_id", "endpoint_id", "endpoints", "endpoint_id", "CASCADE")},
		Indexes: []Index{{Name: "index_endpoint_tags_endpoint_id", Columns: []string{"endpoint_id"}}},
	},
	{
		Name:    "trace_metrics",
		Columns: []Column{S("request_id", 50), S("key", 250), dbl("value")},
		PKName:  "trace_metrics_pk", PK: []string{"request_id", "key"},
		FKs:     []ForeignKey{fk("fk_trace_metrics_request_id", "request_id", "trace_info", "request_id", "CASCADE")},
		Indexes: []Index{{Name: "index_trace_metrics_request_id", Columns: []string{"request_id"}}},
	},
	{
		Name: "online_scoring_configs",
		Columns: []Column{
			S("online_scoring_config_id", 36), S("scorer_id", 36), DBL("sample_rate"), I("experiment_id"), txt("filter_string"),
		},
		PKName: "online_scoring_config_pk", PK: []string{"online_scoring_config_id"},
		FKs: []ForeignKey{
			fk("fk_online_scoring_configs_scorer_id", "scorer_id", "scorers", "scorer_id", "CASCADE"),
			fk("fk_online_scoring_configs_experiment_id", "experiment_id", "experiments", "experiment_id", ""),
		},
	},
	{
		Name:    "span_metrics",
		Columns: []Column{S("trace_id", 50), S("span_id", 50), S("key", 250), dbl("value")},
		PKName:  "span_metrics_pk", PK: []string{"trace_id", "span_id", "key"},
		FKs: []ForeignKey{{Name: "fk_span_metrics_span", Columns: []string{"trace_id", "span_id"},
			RefTable: "spans", RefColumns: []string{"trace_id", "span_id"}, OnDelete: "CASCADE"}},
		Indexes: []Index{{Name: "index_span_metrics_trace_id_span_id", Columns: []string{"trace_id", "span_id"}}},
	},
	{
		Name:    "workspaces",
		Columns: []Column{S("name", 63), txt("description"), txt("default_artifact_root")},
		PKName:  "workspaces_pk", PK: []string{"name"},
	},
	{
		Name: "budget_policies",
		Columns: []Column{
			S("budget_policy_id", 36), S("budget_unit", 32), DBL("budget_amount"), S("duration_unit", 32),
			I("duration_value"), S("target_scope", 32), S("budget_action", 32), s("created_by", 255),
			B("created_at"), s("last_updated_by", 255), B("last_updated_at"), ws(),
		},
		PKName: "budget_policies_pk", PK: []string{"budget_policy_id"},
		Indexes: []Index{{Name: "idx_budget_policies_workspace", Columns: []string{"workspace"}}},
	},
	{
		Name: "issues",
		Columns: []Column{
			S("issue_id", 36), I("experiment_id"), S("name", 250), TXT("description"), S("status", 50),
			s("severity", 50), txt("root_causes"), s("source_run_id", 32), txt("categories"),
			B("created_timestamp"), B("last_updated_timestamp"), s("created_by", 255),
		},
		PKName: "issues_pk", PK: []string{"issue_id"},
		FKs: []ForeignKey{
			fk("fk_issues_experiment_id", "experiment_id", "experiments", "experiment_id", "CASCADE"),
			fk("fk_issues_source_run_id", "source_run_id", "runs", "run_uuid", "SET NULL"),
		},
		Indexes: []Index{
			{Name: "index_issues_experiment_id", Columns: []string{"experiment_id"}},
			{Name: "index_issues_source_run_id", Columns: []string{"source_run_id"}},
			{Name: "index_issues_status", Columns: []string{"status"}},
		},
	},
	{
		Name: "guardrails",
		Columns: []Column{
			S("guardrail_id", 36), S("name", 255), S("scorer_id", 255), I("scorer_version"), S("stage", 32),
			S("action", 32), s("action_endpoint_id", 36), s("created_by", 255), B("created_at"),
			s("last_updated_by", 255), B("last_updated_at"), ws(),
		},
		PKName: "guardrails_pk", PK: []string{"guardrail_id"},
		FKs: []ForeignKey{
			{Name: "fk_guardrails_scorer_version", Columns: []string{"scorer_id", "scorer_version"},
				RefTable: "scorer_versions", RefColumns: []string{"scorer_id", "scorer_version"}},
			fk("fk_guardrails_action_endpoint_id", "action_endpoint_id", "endpoints", "endpoint_id", "SET NULL"),
		},
		Indexes: []Index{
			{Name: "idx_guardrails_scorer", Columns: []string{"scorer_id", "scorer_version"}},
			{Name: "idx_guardrails_workspace", Columns: []string{"workspace"}},
		},
	},
	{
		Name: "guardrail_configs",
		Columns: []Column{
			S("endpoint_id", 36), S("guardrail_id", 36), i("execution_order"), s("created_by", 255), B("created_at"), ws(),
		},
		PKName: "guardrail_configs_pk", PK: []string{"endpoint_id", "guardrail_id"},
		FKs: []ForeignKey{
			fk("fk_guardrail_configs_endpoint_id", "endpoint_id", "endpoints", "endpoint_id", "CASCADE"),
			fk("fk_guardrail_configs_guardrail_id", "guardrail_id", "guardrails", "guardrail_id", "CASCADE"),
		},
		Indexes: []Index{
			{Name: "idx_guardrail_configs_endpoint_id", Columns: []string{"endpoint_id"}},
			{Name: "idx_guardrail_configs_guardrail_id", Columns: []string{"guardrail_id"}},
		},
	},
}

// alembicVersion is alembic's bookkeeping table; it is not one of the 47
// model tables but every upstream-compatible database carries it.
var alembicVersion = Table{
	Name:    "alembic_version",
	Columns: []Column{S("version_num", 32)},
	PKName:  "alembic_version_pkc",
	PK:      []string{"version_num"},
}

var lifecycle = []string{"active", "deleted"}

// Column constructors: lower case = nullable, upper case = NOT NULL.
func s(name string, n int) Column { return Column{Name: name, Type: Varchar, Len: n} }
func S(name string, n int) Column { return Column{Name: name, Type: Varchar, Len: n, NotNull: true} }
func i(name string) Column        { return Column{Name: name, Type: Integer} }
func I(name string) Column        { return Column{Name: name, Type: Integer, NotNull: true} }
func b(name string) Column        { return Column{Name: name, Type: BigInt} }
func B(name string) Column        { return Column{Name: name, Type: BigInt, NotNull: true} }
func txt(name string) Column      { return Column{Name: name, Type: Text} }
func TXT(name string) Column      { return Column{Name: name, Type: Text, NotNull: true} }
func dbl(name string) Column      { return Column{Name: name, Type: Double} }
func DBL(name string) Column      { return Column{Name: name, Type: Double, NotNull: true} }
func BOOL(name string) Column     { return Column{Name: name, Type: Boolean, NotNull: true} }
func ws() Column {
	return Column{Name: "workspace", Type: Varchar, Len: 63, NotNull: true, Default: "default"}
}

func fk(name, col, ref, refCol, onDelete string) ForeignKey {
	return ForeignKey{Name: name, Columns: []string{col}, RefTable: ref, RefColumns: []string{refCol}, OnDelete: onDelete}
}
