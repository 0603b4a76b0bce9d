package otlp

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Attribute and tag keys upstream uses (mlflow/tracing/constant.py).
const (
	attrRequestID = "mlflow.traceRequestId"
	attrSpanType  = "mlflow.spanType"
	attrInputs    = "mlflow.spanInputs"
	attrOutputs   = "mlflow.spanOutputs"
	attrService   = "service.name"

	tagSpansLocation   = "mlflow.trace.spansLocation"
	tagArtifactLoc     = "mlflow.artifactLocation"
	tagTraceName       = "mlflow.traceName"
	metaSchemaVersion  = "mlflow.trace_schema.version"
	spansTrackingStore = "TRACKING_STORE"
	traceSchemaVersion = "3"
	traceIDPrefix      = "tr-"
	previewMaxChars    = 1000
)

// knownServiceNames is upstream's allow-list of coding-agent clients whose
// resource service.name is copied onto root spans (otel_api.py
// _KNOWN_SERVICE_NAMES); any other name is free text Ferry does not store.
var knownServiceNames = map[string]bool{
	"claude-code": true, "codex_cli_rs": true, "codex_vscode": true, "gemini-cli": true, "qwen-code": true,
}

// spanRow is one row of the spans table, as upstream's log_spans writes it.
type spanRow struct {
	traceID  string // tr-<32 hex>
	spanID   string // 16 hex
	parentID string // 16 hex, "" for a root span
	name     string
	spanType *string // mlflow.spanType, NULL when absent
	status   string  // OK, ERROR or UNSET
	start    int64
	end      *int64 // NULL when the span has no end time
	content  string // upstream's span dict as JSON
	inputs   string // raw mlflow.spanInputs JSON, for the request preview
	outputs  string
	extras   spanExtras
}

// traceAgg is what one request says about one trace (upstream's per-trace
// aggregate in log_spans): the time range of its spans and, when the
// request holds the root span, the trace's final state.
type traceAgg struct {
	id       string
	minStart int64 // ms
	maxEnd   *int64
	root     *spanRow

	// Upstream 3.11's log_spans extras: the request's spans' token usage
	// and cost summed (added to what the trace has), the user and session
	// they name (root span first), and their mlflow.traceTag.* tags.
	usage     map[string]int64
	cost      map[string]float64
	session   string
	user      string
	tags      []attr
	finalized bool // set by the store: start-trace's values are authoritative
}

// convertError is a span upstream's Span.from_otel_proto would not accept
// (answered 422 "Cannot convert OpenTelemetry span to MLflow span").
type convertError struct{ msg string }

func (e *convertError) Error() string { return e.msg }

// convert turns a parsed export request into span rows and per-trace
// aggregates (sorted by trace id, the order rows are locked in).
func convert(req *collectorpb.ExportTraceServiceRequest) ([]spanRow, []*traceAgg, error) {
	var rows []spanRow
	aggs := map[string]*traceAgg{}
	for _, rs := range req.GetResourceSpans() {
		service := resourceService(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				row, err := convertSpan(sp, service)
				if err != nil {
					return nil, nil, err
				}
				rows = append(rows, row)
			}
		}
	}
	for i := range rows {
		r := &rows[i]
		a := aggs[r.traceID]
		startMs := r.start / 1e6
		if a == nil {
			a = &traceAgg{id: r.traceID, minStart: startMs}
			aggs[r.traceID] = a
		}
		a.minStart = min(a.minStart, startMs)
		if r.end != nil {
			e := *r.end / 1e6
			if a.maxEnd == nil || e > *a.maxEnd {
				a.maxEnd = &e
			}
		}
		if r.parentID == "" {
			a.root = r
		}
		a.addExtras(&r.extras)
	}
	out := make([]*traceAgg, 0, len(aggs))
	for _, a := range aggs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return rows, out, nil
}

// resourceService is the resource's service.name when it is on the
// allow-list (upstream looks at the first service.name attribute only).
func resourceService(attrs []*commonpb.KeyValue) string {
	for _, kv := range attrs {
		if kv.GetKey() != attrService {
			continue
		}
		if s, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue); ok && knownServiceNames[s.StringValue] {
			return s.StringValue
		}
		return ""
	}
	return ""
}

// convertSpan maps one OTLP span as upstream's Span.from_otel_proto and
// Span.to_dict do. Ids must have OpenTelemetry's sizes (16-byte trace,
// 8-byte span and parent ids): upstream would turn other sizes into ids
// longer than the 50-character columns or into the all-zero id.
func convertSpan(sp *tracepb.Span, service string) (spanRow, error) {
	tid, sid, pid := sp.GetTraceId(), sp.GetSpanId(), sp.GetParentSpanId()
	if len(tid) != 16 || allZero(tid) {
		return spanRow{}, &convertError{fmt.Sprintf("trace_id must be 16 bytes, not all zero (got %d bytes)", len(tid))}
	}
	if len(sid) != 8 || allZero(sid) {
		return spanRow{}, &convertError{fmt.Sprintf("span_id must be 8 bytes, not all zero (got %d bytes)", len(sid))}
	}
	if len(pid) != 0 && len(pid) != 8 {
		return spanRow{}, &convertError{fmt.Sprintf("parent_span_id must be empty or 8 bytes (got %d bytes)", len(pid))}
	}
	if sp.GetStartTimeUnixNano() > math.MaxInt64 || sp.GetEndTimeUnixNano() > math.MaxInt64 {
		return spanRow{}, &convertError{"span times must fit a signed 64-bit integer"}
	}
	r := spanRow{
		traceID: traceIDPrefix + hex.EncodeToString(tid),
		spanID:  hex.EncodeToString(sid),
		name:    sp.GetName(),
		start:   int64(sp.GetStartTimeUnixNano()),
	}
	if len(pid) == 8 && !allZero(pid) {
		r.parentID = hex.EncodeToString(pid)
	}
	if e := int64(sp.GetEndTimeUnixNano()); e != 0 {
		r.end = &e
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		r.status = "OK"
	case tracepb.Status_STATUS_CODE_ERROR:
		r.status = "ERROR"
	default:
		r.status = "UNSET"
	}

	// Attributes: each value as the span carried it (decoded, not dumped
	// again: MLflow-made spans carry JSON strings already). The trace id
	// attribute is always the one derived from the OTel trace id, as a
	// JSON-encoded string (upstream lets a client's value win; Ferry keeps
	// column and content in step), and the allow-listed service name goes on
	// root spans JSON-encoded, as upstream's dump_span_attribute_value does.
	attrs := make([]attr, 0, len(sp.GetAttributes())+2)
	attrs = append(attrs, attr{attrRequestID, string(appendPyString(nil, string(appendPyString(nil, r.traceID))))})
	index := map[string]int{attrRequestID: 0}
	put := func(k, v string) {
		if i, ok := index[k]; ok {
			if k != attrRequestID {
				attrs[i].v = v
			}
			return
		}
		index[k] = len(attrs)
		attrs = append(attrs, attr{k, v})
	}
	for _, kv := range sp.GetAttributes() {
		put(kv.GetKey(), string(appendPyJSON(nil, kv.GetValue(), 0)))
	}
	if r.parentID == "" && service != "" {
		put(attrService, string(appendPyString(nil, string(appendPyString(nil, service)))))
	}
	if i, ok := index[attrSpanType]; ok {
		if t, isString := loadsString(attrs[i].v); isString {
			r.spanType = &t
		}
	}
	if i, ok := index[attrInputs]; ok {
		r.inputs = previewText(attrs[i].v)
	}
	if i, ok := index[attrOutputs]; ok {
		r.outputs = previewText(attrs[i].v)
	}
	r.extras = extrasOf(attrs, index)
	r.content = spanContent(sp, r, attrs)
	return r, nil
}

// loadsString reads a string attribute as upstream's attribute registry
// does: the string's JSON value when it holds a JSON string ("\"LLM\""),
// else the string itself ("LLM"); isString is false for other values.
func loadsString(v string) (string, bool) {
	var s string
	if json.Unmarshal([]byte(v), &s) != nil {
		return "", false
	}
	var inner string
	if json.Unmarshal([]byte(s), &inner) == nil {
		return inner, true
	}
	return s, true
}

// previewText is the JSON text of a span's inputs or outputs attribute: a
// string attribute already holds it (MLflow-made spans), any other value is
// its own JSON.
func previewText(v string) string {
	var s string
	if json.Unmarshal([]byte(v), &s) == nil {
		return s
	}
	return v
}

type attr struct{ k, v string }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// spanContent is spans.content: upstream's Span.to_dict() (dict version 4,
// the format metadata/NOTES.md fixes for the tracing readers): MLflow trace
// id, hex span ids, parent null for a root span, nanosecond integers,
// attributes as carried, MLflow's status code names, events with their
// decoded attributes, and the OTel trace id in hex.
func spanContent(sp *tracepb.Span, r spanRow, attrs []attr) string {
	b := make([]byte, 0, 256)
	b = append(b, `{"trace_id": `...)
	b = appendPyString(b, r.traceID)
	b = append(b, `, "span_id": `...)
	b = appendPyString(b, r.spanID)
	b = append(b, `, "parent_span_id": `...)
	if r.parentID != "" {
		b = appendPyString(b, r.parentID)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `, "name": `...)
	b = appendPyString(b, r.name)
	b = append(b, `, "start_time_unix_nano": `...)
	b = appendInt(b, r.start)
	b = append(b, `, "end_time_unix_nano": `...)
	if r.end != nil {
		b = appendInt(b, *r.end)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `, "events": [`...)
	for i, ev := range sp.GetEvents() {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `{"name": `...)
		b = appendPyString(b, ev.GetName())
		b = append(b, `, "time_unix_nano": `...)
		b = appendUint(b, ev.GetTimeUnixNano())
		b = append(b, `, "attributes": `...)
		b = appendPyDict(b, ev.GetAttributes(), 0)
		b = append(b, '}')
	}
	b = append(b, `], "status": {"code": "`...)
	b = append(b, r.status...)
	b = append(b, `", "message": `...)
	b = appendPyString(b, sp.GetStatus().GetMessage())
	b = append(b, `}, "attributes": {`...)
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendPyString(b, a.k)
		b = append(b, ": "...)
		b = append(b, a.v...)
	}
	b = append(b, `}, "_dict_version": 4, "otel_trace_id": `...)
	b = appendPyString(b, r.traceID[len(traceIDPrefix):])
	b = append(b, '}')
	return string(b)
}

func appendInt(b []byte, n int64) []byte { return fmt.Appendf(b, "%d", n) }

func appendUint(b []byte, n uint64) []byte { return fmt.Appendf(b, "%d", n) }

// preview truncates a root span's inputs or outputs JSON to the
// trace_info preview columns (upstream's OSS preview length).
func preview(s string) *string {
	if s == "" {
		return nil
	}
	rs := []rune(s)
	if len(rs) > previewMaxChars {
		s = string(rs[:previewMaxChars])
	}
	return &s
}

// addExtras sums a span's token usage and cost into its trace and takes
// its user, session and trace tags: the root span's user and session win,
// otherwise the first span naming one; for a tag key sent by several spans
// the last one in request order is written.
func (a *traceAgg) addExtras(x *spanExtras) {
	for k, n := range x.usage {
		if a.usage == nil {
			a.usage = map[string]int64{}
		}
		a.usage[k] = addSat(a.usage[k], n)
	}
	for k, f := range x.cost {
		if a.cost == nil {
			a.cost = map[string]float64{}
		}
		a.cost[k] += f
	}
	isRoot := a.root != nil && &a.root.extras == x
	if x.session != "" && (a.session == "" || isRoot) {
		a.session = x.session
	}
	if x.user != "" && (a.user == "" || isRoot) {
		a.user = x.user
	}
	a.tags = append(a.tags, x.tags...)
}
