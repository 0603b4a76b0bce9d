package tracing

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/wire"
)

// pyDumps renders a decoded JSON value as Python's json.dumps does
// (", " and ": " separators, ASCII escapes), the form upstream writes into
// assessments.value / assessment_metadata and the linked-prompts tag.
// Object keys come out sorted (Go maps keep no order). Integral numbers
// print as integers.
func pyDumps(v any) string {
	var b strings.Builder
	writePy(&b, v)
	return b.String()
}

func writePy(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		b.WriteString(wire.PyJSON(x))
	case json.Number:
		b.WriteString(x.String())
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		case x == math.Trunc(x) && math.Abs(x) < 1e17:
			b.WriteString(strconv.FormatInt(int64(x), 10))
		default:
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writePy(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(wire.PyJSON(k))
			b.WriteString(": ")
			writePy(b, x[k])
		}
		b.WriteByte('}')
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		writePy(b, m)
	default:
		raw, _ := json.Marshal(x)
		b.Write(raw)
	}
}

// promptVersion is a linked prompt version ({name, version}).
type promptVersion struct {
	Name    string
	Version string
}

// mergeLinkedPrompts adds pvs to the linked-prompts tag value cur (a JSON
// list of {"name", "version"}), keeping order and dropping repeats.
func mergeLinkedPrompts(cur string, pvs []promptVersion) (string, *wire.Error) {
	var list []any
	if strings.TrimSpace(cur) != "" {
		if err := json.Unmarshal([]byte(cur), &list); err != nil {
			return "", wire.Errorf(wire.InvalidParameterValue, "Invalid JSON format for '%s' tag: %s", linkedPromptTag, cur)
		}
	}
	seen := map[promptVersion]bool{}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			n, _ := m["name"].(string)
			v, _ := m["version"].(string)
			seen[promptVersion{n, v}] = true
		}
	}
	for _, pv := range pvs {
		if seen[pv] {
			continue
		}
		seen[pv] = true
		list = append(list, map[string]any{"name": pv.Name, "version": pv.Version})
	}
	return pyDumps(list), nil
}
