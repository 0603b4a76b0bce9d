// Package tracing serves MLflow 3's trace REST API (spec tracking-api.md
// §2.6, §6.3a; artifacts-api.md §5.4) from the metadata core's tables
// trace_info, trace_tags, trace_request_metadata, spans, assessments and
// entity_associations: v3 start/get/batch reads, the legacy v2 routes,
// trace tags, deletion, run and prompt links, search and assessments.
//
// api*.go decode, validate and encode and never open a transaction;
// store*.go hold the SQL, one (*API) method per operation in one
// transaction. spans.go turns the stored span dicts (upstream's
// Span.to_dict(), written by this package's readers' counterpart
// tracing/otlp) into OTel proto JSON. It is a metadata domain: it imports
// the core (metadata, schema, search), wire, routes and stores, never
// another domain.
package tracing
