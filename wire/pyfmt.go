package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Upstream's messages are built with Python's repr() and json.dumps();
// these helpers render values the same way.

// PyRepr renders s as Python's repr() of a str.
func PyRepr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatInt(int64(r)|0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// PyJSON renders s as Python's json.dumps() (ASCII-escaped) would.
func PyJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r1, r2 := utf16Surrogates(r)
				b.WriteString(`\u` + hex4(r1) + `\u` + hex4(r2))
			} else {
				b.WriteString(`\u` + hex4(r))
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func hex4(r rune) string { return strconv.FormatInt(int64(r)|0x10000, 16)[1:] }

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// PyFloat renders f as Python's repr() of a float.
func PyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs >= 1e16 || abs < 1e-4) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Python writes 1e+16, Go 1e+16; Python pads exponents to 2 digits.
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// PyDumps renders a JSON value as Python's json.dumps(json.loads(raw))
// does: ", " and ": " separators, ASCII-escaped strings, object keys in
// their order, numbers with a fraction or exponent as Python floats
// (1e3 -> 1000.0, overflow -> Infinity). Invalid JSON comes back as is.
func PyDumps(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	if err := pyDumpsValue(dec, &b); err != nil {
		return string(raw)
	}
	return b.String()
}

func pyDumpsValue(dec *json.Decoder, b *strings.Builder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		open, close, sep := t == '{', "]", ", "
		if open {
			close = "}"
		}
		b.WriteString(string(t))
		for i := 0; dec.More(); i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			if open {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				b.WriteString(PyJSON(k.(string)))
				b.WriteString(": ")
			}
			if err := pyDumpsValue(dec, b); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		b.WriteString(close)
	case string:
		b.WriteString(PyJSON(t))
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			if s == "-0" {
				s = "0" // Python's int has no negative zero
			}
			b.WriteString(s)
			break
		}
		f, _ := strconv.ParseFloat(s, 64) // ±Inf on overflow, as Python
		switch {
		case math.IsInf(f, 1):
			b.WriteString("Infinity")
		case math.IsInf(f, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(PyFloat(f))
		}
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case nil:
		b.WriteString("null")
	}
	return nil
}

// PyType names a JSON value's type as Python's type(json.loads(raw)).__name__.
func PyType(raw json.RawMessage) string {
	r := bytes.TrimSpace(raw)
	if len(r) == 0 {
		return "NoneType"
	}
	switch r[0] {
	case '"':
		return "str"
	case '{':
		return "dict"
	case '[':
		return "list"
	case 't', 'f':
		return "bool"
	case 'n':
		return "NoneType"
	}
	if bytes.ContainsAny(r, ".eE") {
		return "float"
	}
	return "int"
}

// maxShownValue bounds how much of a wrong-typed value a message echoes.
const maxShownValue = 250

// TypeError is upstream's message for a request field of the wrong JSON
// type (spec tracking-api.md §1.2): the value as json.dumps shows it
// (cut after 250 characters) and Python's name of its type. Every
// tracking and registry handler reports wrong types through it.
func TypeError(field string, raw json.RawMessage) *Error {
	return Errorf(InvalidParameterValue,
		"Invalid value %s for parameter '%s' supplied: Hint: Value was of type '%s'. See the API docs for more information about request parameters.",
		ShownValue(raw), field, PyType(raw))
}

// ShownValue is PyDumps cut after 250 characters, so that a message
// never echoes a huge value whole.
func ShownValue(raw json.RawMessage) string {
	shown := PyDumps(raw)
	if len(shown) > maxShownValue {
		shown = shown[:maxShownValue] + "..."
	}
	return shown
}
