package otlp

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// appendPyJSON appends v, decoded as upstream's _decode_otel_proto_anyvalue
// does, in Python's json.dumps(ensure_ascii=False) form (", " and ": "
// separators, floats in Python's repr), the form upstream writes span JSON
// in. NaN and ±Infinity, which Python writes bare and JSON parsers refuse,
// become the strings "NaN", "Infinity" and "-Infinity", so every reader of
// spans.content can parse it.
//
// depth bounds the recursion; protobuf's own recursion limit (100 nested
// messages in protojson, 10,000 in proto.Unmarshal) already stops deeper
// bodies, this only keeps a pathological message from blowing the stack.
func appendPyJSON(b []byte, v *commonpb.AnyValue, depth int) []byte {
	if v == nil || depth > maxValueDepth {
		return append(b, "null"...)
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return appendPyString(b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return appendPyFloat(b, x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		// Python's json.dumps cannot encode bytes; upstream's encoder falls
		// back to a string form. Ferry writes base64, the form OTLP JSON uses.
		return appendPyString(b, base64.StdEncoding.EncodeToString(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		b = append(b, '[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyJSON(b, e, depth+1)
		}
		return append(b, ']')
	case *commonpb.AnyValue_KvlistValue:
		return appendPyDict(b, x.KvlistValue.GetValues(), depth)
	default:
		return append(b, "null"...)
	}
}

// maxValueDepth is the deepest attribute value nesting Ferry renders.
const maxValueDepth = 64

// appendPyDict renders a key-value list as a Python dict built from it
// would dump: a repeated key keeps its first position and its last value.
func appendPyDict(b []byte, kvs []*commonpb.KeyValue, depth int) []byte {
	last := make(map[string]int, len(kvs))
	for i, kv := range kvs {
		last[kv.GetKey()] = i
	}
	b = append(b, '{')
	first := true
	seen := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		k := kv.GetKey()
		if seen[k] {
			continue
		}
		seen[k] = true
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = appendPyString(b, k)
		b = append(b, ": "...)
		b = appendPyJSON(b, kvs[last[k]].GetValue(), depth+1)
	}
	return append(b, '}')
}

// appendPyFloat renders f as Python's float repr inside json.dumps.
func appendPyFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	// repr() uses the shortest round-tripping digits, in positional
	// notation for 1e-4 <= |f| < 1e16 and scientific notation otherwise.
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		b = append(b, s...)
		if !strings.ContainsAny(s, ".") {
			b = append(b, ".0"...)
		}
		return b
	}
	return strconv.AppendFloat(b, f, 'e', -1, 64)
}

// appendPyString renders s as json.dumps(s, ensure_ascii=False).
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b = append(b, `\"`...)
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			default:
				if c < 0x20 {
					b = append(b, `\u00`...)
					b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
				} else {
					b = append(b, c)
				}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			// protobuf rejects invalid UTF-8 in strings before this point;
			// a stray byte is written as U+FFFD so the JSON stays valid.
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
