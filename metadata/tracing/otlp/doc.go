// Package otlp serves POST /v1/traces, upstream MLflow's OTLP/HTTP span
// ingest (otel_api.export_traces, tracking-api.md §2.6), on the metadata
// core: it decodes an OpenTelemetry ExportTraceServiceRequest (protobuf or
// OTLP JSON with hex ids, gzip or deflate) with the OpenTelemetry project's
// Go types and writes every span of the request, with its trace's info,
// tags and metadata, in one transaction.
//
// # Rows written (what metadata/tracing reads back)
//
// spans, one row per span, replaced when the same (trace_id, span_id) comes
// again:
//   - trace_id "tr-" + the 32 lower-case hex digits of the OTel trace id;
//     span_id and parent_span_id 16 hex digits (parent NULL for a root span);
//   - name; type = the mlflow.spanType attribute (JSON-decoded when it holds
//     a JSON string), NULL when the span has none or it is not a string; status "OK", "ERROR" or "UNSET" (the OTel status code);
//   - start_time_unix_nano; end_time_unix_nano, NULL when the span has no end
//     time; duration_ns is generated; dimension_attributes is
//     {"mlflow.llm.model": …, "mlflow.llm.provider": …} (the keys the span
//     has), NULL without either;
//   - content: upstream's Span.to_dict() (dict version 4), the format
//     metadata/NOTES.md ("The spans row format") fixes for the readers in
//     metadata/tracing: {"trace_id": "tr-…", "span_id": <hex>,
//     "parent_span_id": <hex> or null, "name", "start_time_unix_nano",
//     "end_time_unix_nano" (null when 0), "events": [{"name",
//     "time_unix_nano", "attributes"}], "status": {"code": "OK|ERROR|UNSET",
//     "message"}, "attributes": {…}, "_dict_version": 4, "otel_trace_id":
//     <32 hex>}. Attribute values are the decoded OTLP values as the span
//     carried them (MLflow-made spans carry JSON strings, plain OTel spans
//     raw values), rendered as Python's json.dumps would; NaN and ±Infinity
//     become the strings "NaN"/"Infinity"/"-Infinity" so Go's JSON parser
//     reads the row. mlflow.traceRequestId is always the JSON-encoded
//     trace_id (a client's own value is replaced), and root spans of an
//     allow-listed coding agent (claude-code, codex_cli_rs, codex_vscode,
//     gemini-cli, qwen-code) get its resource service.name, JSON-encoded as
//     upstream's dump_span_attribute_value writes it.
//
// trace_info, one row per trace, created by the first request that names
// it and merged by later ones: experiment_id = the x-mlflow-experiment-id
// header; timestamp_ms = the earliest span start (ms, floor);
// execution_time_ms = the latest span end − timestamp_ms (NULL while no span
// has ended); status IN_PROGRESS until the root span arrives, then ERROR if
// the root span's status is ERROR and OK otherwise (a status other than
// IN_PROGRESS/STATE_UNSPECIFIED, e.g. set by start-trace, is kept);
// request_preview/response_preview, when empty, from the root span's
// mlflow.spanInputs/mlflow.spanOutputs (the JSON text a string attribute
// holds, or the JSON of a structured one), cut to 1000 characters.
//
// trace_tags: mlflow.trace.spansLocation = TRACKING_STORE on every trace
// the request touches; mlflow.artifactLocation =
// <experiment artifact_location>/traces/<trace id>/artifacts and
// mlflow.traceName = the root span's name, only when absent.
// trace_request_metadata: mlflow.trace_schema.version = 3, only when absent.
//
// # Derived from span attributes (upstream 3.11's log_spans extras)
//
// span_metrics: each span's mlflow.llm.cost (input_cost, output_cost,
// total_cost). trace_request_metadata mlflow.trace.tokenUsage and
// mlflow.trace.cost: the stored sums plus the request's spans'
// mlflow.chat.tokenUsage / mlflow.llm.cost, as json.dumps renders them, with
// trace_metrics rows holding the token totals; mlflow.trace.session /
// mlflow.trace.user from session.id / user.id when the trace has none. A
// trace carrying mlflow.trace.infoFinalized (set by start-trace) keeps its
// time range, usage, cost, user and session. trace_tags from
// mlflow.traceTag.<key> attributes (not the store-owned location tags). With
// the x-mlflow-run-id header, entity_associations link each trace whose
// root span is in the request to that run.
//
// # Bounds and answers
//
// Bodies are capped at MaxBodyBytes as sent (Content-Length checked before
// any byte is read) and again after decompression (413), a request at
// MaxSpans spans (413), and at most ingestSlots requests decode and write at
// once. Errors keep upstream's two shapes: FastAPI's {"detail": …} for the
// checks of the route itself, MLflow's {"error_code", "message"} for store
// errors (unknown or deleted experiment, a trace id of another experiment).
package otlp
