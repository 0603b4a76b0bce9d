package serve

import "testing"

// TestParseRange pins the single-range parser: which headers are honoured,
// which are ignored (answer 200 with everything) and which are
// unsatisfiable (416).
func TestParseRange(t *testing.T) {
	cases := []struct {
		h               string
		size            int64
		start, length   int64
		ok, satisfiable bool
	}{
		{"bytes=0-9", 100, 0, 10, true, true},
		{"bytes=10-", 100, 10, 90, true, true},
		{"bytes=-10", 100, 90, 10, true, true},
		{"bytes=-1000", 100, 0, 100, true, true},
		{"bytes=50-5000", 100, 50, 50, true, true},
		{"bytes=99-99", 100, 99, 1, true, true},
		{" bytes=1-2 ", 100, 1, 2, true, true},
		{"bytes=100-", 100, 0, 0, false, false},
		{"bytes=100-200", 100, 0, 0, false, false},
		{"bytes=-0", 100, 0, 0, false, false},
		{"bytes=0-", 0, 0, 0, false, false},
		{"bytes=-5", 0, 0, 0, false, false},
		{"bytes=0-1,3-4", 100, 0, 0, false, true},
		{"items=0-1", 100, 0, 0, false, true},
		{"bytes=5-1", 100, 0, 0, false, true},
		{"bytes=a-b", 100, 0, 0, false, true},
		{"bytes=-x", 100, 0, 0, false, true},
		{"bytes=--1", 100, 0, 0, false, true},
		{"bytes=-1-2", 100, 0, 0, false, true},
		{"bytes=5", 100, 0, 0, false, true},
		{"bytes=+1-2", 100, 0, 0, false, true},
		{"bytes=1-+2", 100, 0, 0, false, true},
		{"bytes=-+5", 100, 0, 0, false, true},
		{"bytes=0x1-2", 100, 0, 0, false, true},
		{"bytes=1 -2", 100, 0, 0, false, true},
		{"bytes=99999999999999999999-", 100, 0, 0, false, true},
		{"bytes=", 100, 0, 0, false, true},
		{"", 100, 0, 0, false, true},
	}
	for _, c := range cases {
		start, length, ok, sat := parseRange(c.h, c.size)
		if start != c.start || length != c.length || ok != c.ok || sat != c.satisfiable {
			t.Errorf("parseRange(%q, %d) = (%d, %d, %v, %v), want (%d, %d, %v, %v)",
				c.h, c.size, start, length, ok, sat, c.start, c.length, c.ok, c.satisfiable)
		}
	}
}

// TestParseOpenRange: the size-free fast path takes only plain digits.
func TestParseOpenRange(t *testing.T) {
	for h, want := range map[string][3]int64{
		"bytes=1-2": {1, 2, 1}, "bytes=7-": {7, -1, 1}, "bytes=+1-2": {0, 0, 0}, "bytes=1-+2": {0, 0, 0},
		"bytes=-1": {0, 0, 0}, "bytes=2-1": {0, 0, 0}, "bytes=1-2,3-4": {0, 0, 0},
	} {
		a, b, ok := parseOpenRange(h)
		okN := int64(0)
		if ok {
			okN = 1
		}
		if got := [3]int64{a, b, okN}; got != want {
			t.Errorf("parseOpenRange(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestGuessMimeType pins spec artifacts-api.md §6.
func TestGuessMimeType(t *testing.T) {
	cases := map[string]string{
		"a.txt": "text/plain", "MLmodel": "text/plain", "mlproject": "text/plain",
		"dir/sub/MLmodel": "text/plain", "conda.yaml": "text/plain", "x.json": "text/plain",
		"x.csv": "text/plain", "x.py": "text/plain", "x.md": "text/plain", "x.log": "text/plain",
		"b.pkl": "application/octet-stream", "c.png": "image/png", "d.pdf": "application/pdf",
		"m.tar.gz": "application/x-tar", "m.tgz": "application/x-tar", "x.gz": "application/octet-stream",
		"x.html": "text/html", "x.svg": "image/svg+xml", "x.gif": "image/gif", "x.jpg": "image/jpeg",
		"x.webp": "image/webp", "x.zip": "application/zip", "x.mp4": "video/mp4", "x.css": "text/css",
		"x.h5": "application/x-hdf5", "x.bin": "application/octet-stream", "x.parquet": "application/octet-stream",
		"x.onnx": "application/octet-stream", "x.ipynb": "application/octet-stream", "noext": "application/octet-stream",
		"x.PNG": "image/png", "MLMODEL": "application/octet-stream", "x.TXT": "text/plain",
		".bashrc": "application/octet-stream",
	}
	for name, want := range cases {
		if got := GuessMimeType(name); got != want {
			t.Errorf("GuessMimeType(%q) = %q, want %q", name, got, want)
		}
	}
}
