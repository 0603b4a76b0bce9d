package tracing

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"github.com/ferryml/ferry/metadata"
)

// Spans are stored one row per span with content = upstream's
// Span.to_dict() JSON (metadata/NOTES.md, tracing). Reads turn them into
// OTel proto JSON spans, as upstream's Span.to_otel_proto() followed by
// message_to_json.

// otelSpan is opentelemetry.proto.trace.v1.Span in proto JSON with
// MLflow's int64-as-number rule.
type otelSpan struct {
	TraceID           string      `json:"trace_id"`
	SpanID            string      `json:"span_id"`
	ParentSpanID      string      `json:"parent_span_id,omitempty"`
	Name              string      `json:"name"`
	StartTimeUnixNano json.Number `json:"start_time_unix_nano"`
	EndTimeUnixNano   json.Number `json:"end_time_unix_nano,omitempty"`
	Attributes        []otelKV    `json:"attributes,omitempty"`
	Events            []otelEvent `json:"events,omitempty"`
	Status            otelStatus  `json:"status"`
}

type otelKV struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"`
}

type otelEvent struct {
	TimeUnixNano json.Number `json:"time_unix_nano,omitempty"`
	Name         string      `json:"name"`
	Attributes   []otelKV    `json:"attributes,omitempty"`
}

type otelStatus struct {
	Message string `json:"message,omitempty"`
	Code    string `json:"code,omitempty"`
}

// spanDict is the stored span dict (version 4, and the older proto-shaped
// dicts whose ids are base64).
type spanDict struct {
	TraceID      string          `json:"trace_id"`
	SpanID       string          `json:"span_id"`
	ParentSpanID *string         `json:"parent_span_id"`
	Name         string          `json:"name"`
	Start        json.Number     `json:"start_time_unix_nano"`
	End          json.Number     `json:"end_time_unix_nano"`
	Events       []eventDict     `json:"events"`
	Status       json.RawMessage `json:"status"`
	Attributes   map[string]any  `json:"attributes"`
	OtelTraceID  string          `json:"otel_trace_id"`
}

type eventDict struct {
	Name       string         `json:"name"`
	Time       json.Number    `json:"time_unix_nano"`
	Attributes map[string]any `json:"attributes"`
}

func decodeUseNumber(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// idBytes reads a span/trace id as stored: hex (version 4, with or
// without 0x) or base64 (older dicts), as base64 for proto JSON.
func idBase64(s string, size int) string {
	h := strings.TrimPrefix(strings.ToLower(s), "0x")
	if len(h) == 2*size {
		if b, err := hex.DecodeString(h); err == nil {
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == size {
		return s
	}
	return ""
}

// statusCode maps a stored status code to the proto enum name.
func statusCode(code string) string {
	switch strings.TrimPrefix(strings.ToUpper(code), "STATUS_CODE_") {
	case "OK":
		return "STATUS_CODE_OK"
	case "ERROR":
		return "STATUS_CODE_ERROR"
	}
	return "" // UNSET: proto3 default, omitted
}

// toOtel converts one stored span dict; traceID is the MLflow trace id
// (tr-<32 hex>) used when the dict lacks otel_trace_id.
func toOtel(content []byte, traceID string) (otelSpan, error) {
	var d spanDict
	if err := decodeUseNumber(content, &d); err != nil {
		return otelSpan{}, err
	}
	otelTrace := d.OtelTraceID
	if otelTrace == "" {
		otelTrace = strings.TrimPrefix(traceID, "tr-")
	}
	s := otelSpan{
		TraceID:           idBase64(otelTrace, 16),
		SpanID:            idBase64(d.SpanID, 8),
		Name:              d.Name,
		StartTimeUnixNano: d.Start,
	}
	if s.TraceID == "" {
		s.TraceID = idBase64(d.TraceID, 16)
	}
	if d.ParentSpanID != nil && *d.ParentSpanID != "" {
		s.ParentSpanID = idBase64(*d.ParentSpanID, 8)
	}
	if d.End != "" && d.End != "0" {
		s.EndTimeUnixNano = d.End
	}
	if s.StartTimeUnixNano == "" {
		s.StartTimeUnixNano = "0"
	}
	var st struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	if len(d.Status) > 0 && json.Unmarshal(d.Status, &st) == nil {
		code, _ := st.Code.(string)
		s.Status = otelStatus{Code: statusCode(code), Message: st.Message}
	}
	// Attribute values: MLflow's are JSON-encoded strings, decoded here
	// as upstream's attribute registry does; others are kept as they are.
	keys := sortedKeys(d.Attributes)
	for _, k := range keys {
		v := d.Attributes[k]
		if str, ok := v.(string); ok {
			var dec any
			if decodeUseNumber([]byte(str), &dec) == nil {
				v = dec
			}
		}
		s.Attributes = append(s.Attributes, otelKV{Key: k, Value: anyValue(v)})
	}
	for _, e := range d.Events {
		ev := otelEvent{Name: e.Name, TimeUnixNano: e.Time}
		for _, k := range sortedKeys(e.Attributes) {
			ev.Attributes = append(ev.Attributes, otelKV{Key: k, Value: anyValue(e.Attributes[k])})
		}
		s.Events = append(s.Events, ev)
	}
	return s, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// anyValue is OTel's AnyValue in proto JSON (upstream's
// _set_otel_proto_anyvalue): None leaves it empty.
func anyValue(v any) map[string]any {
	switch x := v.(type) {
	case nil:
		return map[string]any{}
	case bool:
		return map[string]any{"bool_value": x}
	case string:
		return map[string]any{"string_value": x}
	case json.Number:
		if !strings.ContainsAny(x.String(), ".eE") {
			if _, err := x.Int64(); err == nil {
				return map[string]any{"int_value": x}
			}
		}
		f, _ := x.Float64()
		return map[string]any{"double_value": f}
	case float64:
		return map[string]any{"double_value": x}
	case []any:
		vals := make([]map[string]any, len(x))
		for i, e := range x {
			vals[i] = anyValue(e)
		}
		return map[string]any{"array_value": map[string]any{"values": vals}}
	case map[string]any:
		vals := make([]otelKV, 0, len(x))
		for _, k := range sortedKeys(x) {
			vals = append(vals, otelKV{Key: k, Value: anyValue(x[k])})
		}
		return map[string]any{"kvlist_value": map[string]any{"values": vals}}
	}
	return map[string]any{"string_value": ""}
}

// loadSpanContents returns the stored span dicts per trace id, ordered
// by start time, then span id.
func loadSpanContents(ctx context.Context, tx *metadata.Tx, ids []string) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	for _, part := range chunks(ids) {
		err := tx.Each(ctx, "SELECT trace_id, content FROM spans WHERE trace_id IN ("+metadata.Placeholders(len(part))+") ORDER BY trace_id, start_time_unix_nano, span_id", part, func(rows *sql.Rows) error {
			var id string
			var content []byte
			if err := rows.Scan(&id, &content); err != nil {
				return err
			}
			out[id] = append(out[id], content)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// traceWithSpans is the Trace message: info and OTel spans.
type traceWithSpans struct {
	TraceInfo traceInfoV3 `json:"trace_info"`
	Spans     []otelSpan  `json:"spans,omitempty"`
}

// readFullTraces reads traces with their spans (in the order of ids,
// missing ones left out), in one read transaction.
func (a *API) readFullTraces(ctx context.Context, ids []string) ([]*traceRow, map[string][][]byte, error) {
	var ts []*traceRow
	var spans map[string][][]byte
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		if ts, err = loadTraces(ctx, tx, ids, true); err != nil {
			return err
		}
		found := make([]string, len(ts))
		for i, t := range ts {
			found[i] = t.ID
		}
		spans, err = loadSpanContents(ctx, tx, found)
		return err
	})
	return ts, spans, err
}

// fullTrace converts a trace and its stored spans; a span whose content
// cannot be read is logged and left out.
func (a *API) fullTrace(t *traceRow, contents [][]byte) traceWithSpans {
	out := traceWithSpans{TraceInfo: t.v3()}
	for _, c := range contents {
		s, err := toOtel(c, t.ID)
		if err != nil {
			a.log.Warn("unreadable span content", "trace_id", t.ID, "err", err)
			continue
		}
		out.Spans = append(out.Spans, s)
	}
	return out
}
