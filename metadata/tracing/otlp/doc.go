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
//   - name; type = the JSON-decoded mlflow.spanType attribute, NULL when the
//     span has none; status "OK", "ERROR" or "UNSET" (the OTel status code);
//   - start_time_unix_nano; end_time_unix_nano, NULL when the span has no end
//     time; duration_ns is generated; dimension_attributes is not written;
//   - content: the span as MLflow 3's span dict (the form of a span in
//     traces.json, read by every 3.x client's Span.from_dict):
//     {"trace_id": <base64 16 bytes>, "span_id": <base64 8 bytes>,
//     "trace_state": "", "parent_span_id": <base64 or "">, "name",
//     "start_time_unix_nano": <int>, "end_time_unix_nano": <int or null>,
//     "attributes": {key: <value as a JSON string>},
//     "status": {"message", "code": "STATUS_CODE_OK|ERROR|UNSET"},
//     "events": [{"time_unix_nano", "name", "attributes": {key: value}}]}.
//     Attribute values are json.dumps of the decoded OTLP AnyValue, as
//     upstream's dump_span_attribute_value writes them; the attributes always
//     hold mlflow.traceRequestId = the JSON string of trace_id, and root spans
//     of an allow-listed coding agent (claude-code, codex_cli_rs,
//     codex_vscode, gemini-cli, qwen-code) get its resource service.name.
//
// trace_info, one row per trace, created by the first request that names
// it and merged by later ones: experiment_id = the x-mlflow-experiment-id
// header; timestamp_ms = the earliest span start (ms, floor);
// execution_time_ms = the latest span end − timestamp_ms (NULL while no span
// has ended); status IN_PROGRESS until the root span arrives, then ERROR if
// the root span's status is ERROR and OK otherwise (a status other than
// IN_PROGRESS/STATE_UNSPECIFIED, e.g. set by start-trace, is kept);
// request_preview/response_preview, when empty, from the root span's
// mlflow.spanInputs/mlflow.spanOutputs JSON, cut to 1000 characters.
//
// trace_tags: mlflow.trace.spansLocation = TRACKING_STORE on every trace
// the request touches; mlflow.artifactLocation =
// <experiment artifact_location>/traces/<trace id>/artifacts and
// mlflow.traceName = the root span's name, only when absent.
// trace_request_metadata: mlflow.trace_schema.version = 3, only when absent.
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
