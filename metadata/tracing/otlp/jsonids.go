package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
)

// idKeys are the OTLP JSON fields holding ids. OTLP's JSON encoding writes
// them as hex (spec: "trace_id and span_id ... MUST be represented as
// case-insensitive hex-encoded strings"), while protobuf's canonical JSON
// mapping, which protojson implements, wants base64 for bytes fields. A hex
// id is often valid base64 as well (32 hex digits decode to 24 bytes), so
// protojson would not even fail: it would store the wrong id. In a trace
// export request these names only occur as span and link fields (attribute
// names are "key" values, never object keys), so rewriting them wherever
// they appear is exact. Both the lowerCamelCase OTLP names and the proto
// names protojson also accepts are covered; upstream converts the span's
// camelCase fields only.
var idKeys = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// errBadJSON is a body that is not OTLP JSON (malformed JSON, or an id
// that is not hex).
var errBadJSON = errors.New("invalid OTLP JSON")

// hexIDsToBase64 rewrites the hex ids of an OTLP JSON body to base64 so
// protojson decodes them, keeping every other token as it is. It walks the
// body token by token: memory stays at the size of the body, with no
// generic map of it built.
func hexIDsToBase64(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	out := bytes.NewBuffer(make([]byte, 0, len(body)+len(body)/8))
	// stack of open containers: '{' or '['; inObject tracks whether the next
	// string in an object is a key.
	type frame struct {
		obj     bool
		n       int  // values (or key-value pairs) written so far
		wantKey bool // in an object: the next token is a key
	}
	var stack []frame
	pendingID := false // the value about to come is an id field's
	beforeValue := func() {
		if len(stack) == 0 {
			return
		}
		top := &stack[len(stack)-1]
		if top.obj {
			top.wantKey = true // after this value, a key comes again
			return
		}
		if top.n > 0 {
			out.WriteByte(',')
		}
		top.n++
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errBadJSON
		}
		// A key of an object?
		if len(stack) > 0 && stack[len(stack)-1].obj && stack[len(stack)-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				out.WriteByte('}')
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return nil, errBadJSON
			}
			top := &stack[len(stack)-1]
			if top.n > 0 {
				out.WriteByte(',')
			}
			top.n++
			top.wantKey = false
			writeJSONString(out, key)
			out.WriteByte(':')
			pendingID = idKeys[key]
			continue
		}
		isID := pendingID
		pendingID = false
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				beforeValue()
				out.WriteByte(byte(t))
				stack = append(stack, frame{obj: t == '{', wantKey: t == '{'})
			case ']':
				stack = stack[:len(stack)-1]
				out.WriteByte(']')
			default: // '}' is handled as a key position above
				return nil, errBadJSON
			}
		case string:
			beforeValue()
			if isID && t != "" {
				raw, err := hex.DecodeString(t)
				if err != nil {
					return nil, errBadJSON
				}
				t = base64.StdEncoding.EncodeToString(raw)
			}
			writeJSONString(out, t)
		case json.Number:
			beforeValue()
			out.WriteString(string(t))
		case bool:
			beforeValue()
			if t {
				out.WriteString("true")
			} else {
				out.WriteString("false")
			}
		case nil:
			beforeValue()
			out.WriteString("null")
		}
	}
	return out.Bytes(), nil
}

// writeJSONString writes s as a JSON string (encoding/json's escaping).
func writeJSONString(w *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	w.Write(b)
}
