package otlp

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
)

// Span attributes and trace metadata keys of upstream 3.11's log_spans
// extras (mlflow/tracing/constant.py).
const (
	attrChatUsage     = "mlflow.chat.tokenUsage" // SpanAttributeKey.CHAT_USAGE
	attrLLMCost       = "mlflow.llm.cost"        // SpanAttributeKey.LLM_COST
	attrModel         = "mlflow.llm.model"       // SpanAttributeKey.MODEL
	attrModelProvider = "mlflow.llm.provider"    // SpanAttributeKey.MODEL_PROVIDER
	attrSessionID     = "session.id"             // SpanAttributeKey.SESSION_ID
	attrUserID        = "user.id"                // SpanAttributeKey.USER_ID
	attrTagPrefix     = "mlflow.traceTag."       // SpanAttributeKey.TRACE_TAG_PREFIX

	metaTokenUsage    = "mlflow.trace.tokenUsage"    // TraceMetadataKey.TOKEN_USAGE
	metaCost          = "mlflow.trace.cost"          // TraceMetadataKey.COST
	metaSession       = "mlflow.trace.session"       // TraceMetadataKey.TRACE_SESSION
	metaUser          = "mlflow.trace.user"          // TraceMetadataKey.TRACE_USER
	metaInfoFinalized = "mlflow.trace.infoFinalized" // TraceMetadataKey.TRACE_INFO_FINALIZED

	// Column limits of trace_tags / trace_request_metadata (VARCHAR(250)
	// keys, VARCHAR(8000) values): longer values are not stored rather
	// than failing the whole request on the strict databases.
	maxKeyChars   = 250
	maxValueChars = 8000
)

// storeOwnedTags are the trace tags the store itself maintains (where the
// spans and artifacts live): a span attribute may not redirect them, as
// upstream's set-trace-tag handler refuses to change them too.
var storeOwnedTags = map[string]bool{
	tagSpansLocation: true, tagArtifactLoc: true, "mlflow.trace.archiveLocation": true,
}

// tokenKeys are TokenUsageKey.all_keys() in upstream's order; the first
// three are always written, the cache counts only once some span had them.
var tokenKeys = []string{"input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}

// costKeys are CostKey (= SpanMetricKey.cost_keys()).
var costKeys = []string{"input_cost", "output_cost", "total_cost"}

// spanExtras is what one span contributes beyond its row: its token usage
// and cost (summed into the trace), its model dimensions, the user and
// session it names and the trace tags it carries.
type spanExtras struct {
	usage   map[string]int64
	cost    map[string]float64
	dims    *string // spans.dimension_attributes JSON, nil when none
	session string
	user    string
	tags    []attr // mlflow.traceTag.<key> → <key>, value
}

// extrasOf reads the extras from a span's attributes (index: key → position
// in attrs, values as Python JSON text).
func extrasOf(attrs []attr, index map[string]int) spanExtras {
	var x spanExtras
	get := func(k string) (string, bool) {
		i, ok := index[k]
		if !ok {
			return "", false
		}
		return attrs[i].v, true
	}
	if v, ok := get(attrChatUsage); ok {
		x.usage = pick(attrObject(v), tokenKeys, json.Number.Int64)
	}
	if v, ok := get(attrLLMCost); ok {
		x.cost = pick(attrObject(v), costKeys, json.Number.Float64)
	}
	var dims []byte
	for _, k := range []string{attrModel, attrModelProvider} {
		v, ok := get(k)
		if !ok {
			continue
		}
		if dims == nil {
			dims = append(dims, '{')
		} else {
			dims = append(dims, ", "...)
		}
		dims = appendPyString(dims, k)
		dims = append(dims, ": "...)
		if s, isString := loadsString(v); isString {
			dims = appendPyString(dims, s)
		} else {
			dims = append(dims, v...)
		}
	}
	if dims != nil {
		s := string(append(dims, '}'))
		x.dims = &s
	}
	if v, ok := get(attrSessionID); ok {
		x.session = attrText(v)
	}
	if v, ok := get(attrUserID); ok {
		x.user = attrText(v)
	}
	for _, a := range attrs {
		if k, ok := strings.CutPrefix(a.k, attrTagPrefix); ok && k != "" && !storeOwnedTags[k] {
			x.tags = append(x.tags, attr{k, attrText(a.v)})
		}
	}
	return x
}

// attrText is an attribute as the text upstream's get_attribute yields for
// a string (the JSON-decoded string), or its JSON for any other value.
func attrText(v string) string {
	if s, ok := loadsString(v); ok {
		return s
	}
	return v
}

// attrObject decodes a dict attribute: a JSON string holding an object
// (MLflow-made spans) or an OTLP key-value list. nil when it is neither.
func attrObject(v string) map[string]any {
	text := previewText(v)
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil {
		return nil
	}
	return obj
}

// fits reports whether a key and value fit the trace tag / metadata
// columns: lengths within the columns and no NUL, which PostgreSQL's text
// refuses (one odd attribute would fail the whole request with a 400).
func fits(k, v string) bool {
	return k != "" && len([]rune(k)) <= maxKeyChars && len([]rune(v)) <= maxValueChars &&
		!strings.ContainsRune(k, 0) && !strings.ContainsRune(v, 0)
}

// usageJSON renders summed token usage as upstream's json.dumps does.
func usageJSON(u map[string]int64) string {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for i, k := range tokenKeys {
		n, ok := u[k]
		if !ok && i >= 3 {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.Write(appendPyString(nil, k))
		b.WriteString(": ")
		b.Write(appendInt(nil, n))
	}
	b.WriteByte('}')
	return b.String()
}

// costJSON renders summed cost as upstream's json.dumps does (floats in
// Python's repr).
func costJSON(c map[string]float64) string {
	b := []byte{'{'}
	first := true
	for _, k := range costKeys {
		f, ok := c[k]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = appendPyString(b, k)
		b = append(b, ": "...)
		b = appendPyFloat(b, f)
	}
	return string(append(b, '}'))
}

// pick takes the keys' numbers from a decoded object with conv (nil when
// none converts): the values upstream would sum, anything else ignored.
func pick[T int64 | float64](obj map[string]any, keys []string, conv func(json.Number) (T, error)) map[string]T {
	var out map[string]T
	for _, k := range keys {
		if n, ok := obj[k].(json.Number); ok {
			if v, err := conv(n); err == nil {
				if out == nil {
					out = map[string]T{}
				}
				out[k] = v
			}
		}
	}
	return out
}

// parseStored reads a stored mlflow.trace.tokenUsage or mlflow.trace.cost
// value into a map to add to (empty when absent or unreadable).
func parseStored[T int64 | float64](s string, keys []string, conv func(json.Number) (T, error)) map[string]T {
	if out := pick(attrObject(s), keys, conv); out != nil {
		return out
	}
	return map[string]T{}
}

// addSat adds token counts, saturating at the int64 range instead of
// wrapping (Python's integers do not overflow; a hostile count must not
// turn a sum negative).
func addSat(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}
