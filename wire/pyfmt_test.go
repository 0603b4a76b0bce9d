package wire

import (
	"encoding/json"
	"testing"
)

func TestPyDumps(t *testing.T) {
	for _, tc := range []struct{ in, want, typ string }{
		{`123`, `123`, "int"},
		{`-0`, `0`, "int"},
		{`12345678901234567890123`, `12345678901234567890123`, "int"},
		{`1.5`, `1.5`, "float"},
		{`1e3`, `1000.0`, "float"},
		{`1E-7`, `1e-07`, "float"},
		{`1e400`, `Infinity`, "float"},
		{`-1e400`, `-Infinity`, "float"},
		{`true`, `true`, "bool"},
		{`null`, `null`, "NoneType"},
		{`"é\n\"x"`, `"\u00e9\n\"x"`, "str"},
		{`"😀"`, `"\ud83d\ude00"`, "str"},
		{`[1,"a",[],{}]`, `[1, "a", [], {}]`, "list"},
		{`{"b":1,"a":{"c":[true,null]}}`, `{"b": 1, "a": {"c": [true, null]}}`, "dict"},
		{`{"b":`, `{"b":`, "dict"}, // not JSON: shown as sent
	} {
		if got := PyDumps(json.RawMessage(tc.in)); got != tc.want {
			t.Errorf("PyDumps(%s) = %s, want %s", tc.in, got, tc.want)
		}
		if got := PyType(json.RawMessage(tc.in)); got != tc.typ {
			t.Errorf("PyType(%s) = %s, want %s", tc.in, got, tc.typ)
		}
	}
	long := make([]byte, 0, 1000)
	long = append(long, '"')
	for i := 0; i < 900; i++ {
		long = append(long, 'x')
	}
	long = append(long, '"')
	if got := TypeError("f", long).Message; len(got) > 400 {
		t.Errorf("a long value is echoed whole: %d chars", len(got))
	}
}
