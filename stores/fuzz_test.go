package stores_test

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferryml/ferry/stores"
)

// fuzzSeeds are the spec §3 examples and the encodings around them; the
// committed corpus under testdata/fuzz/FuzzSafePath adds more.
var fuzzSeeds = []string{
	"/path", "path/../to/file", "/etc/passwd", "/etc/passwd%00.jpg", "/file://etc/passwd",
	"%2E%2E%2F%2E%2E%2Fpath", "../path", "../test.txt",
	"a.txt", "dir/b.txt", "a..b", ".hidden", "dir/./x",
	"%252E%252E%252F", "%25252E%25252E%25252F", "%2e%2E/x", `..\x`, `a\b`, "%5C",
	"a\x00b", "a#b", "a%23b", "a?b", "a%3Fb", "C:/x", `C:\x`, `\\h\s`, "//h/s",
	"./C:/x", "./file:x", "dog%step%100%timestamp%100.png", "a\x01b", "%7F", "%%", "%2",
	"", ".", "a//b/", "%C3%BC", "%FF", "a/%C3/b", "\xff",
}

// FuzzSafePath checks SafePath's promises on arbitrary input: it never
// panics, and every key it returns is clean, canonical and stays under a
// root when joined to it. CleanKey gets the same checks on the raw input.
func FuzzSafePath(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	root := filepath.Join(string(filepath.Separator), "srv", "artifacts")
	f.Fuzz(func(t *testing.T, raw string) {
		if key, err := stores.SafePath(raw); err == nil {
			checkCleanKey(t, root, "SafePath", raw, key)
			// A key SafePath returned names the same object when a client
			// sends it back (list results are used as paths).
			if again, err := stores.SafePath(key); err != nil || again != key {
				t.Fatalf("SafePath(SafePath(%q)) = %q, %v; want %q", raw, again, err, key)
			}
			for i := 0; i < len(key); i++ {
				if c := key[i]; c < 0x20 || c == 0x7f {
					t.Fatalf("SafePath(%q) = %q keeps control byte %#x unescaped", raw, key, c)
				}
			}
		}
		if key, err := stores.CleanKey(raw); err == nil {
			checkCleanKey(t, root, "CleanKey", raw, key)
		}
	})
}

// checkCleanKey asserts the invariants of a key fn accepted.
func checkCleanKey(t *testing.T, root, fn, raw, key string) {
	t.Helper()
	fail := func(why string) {
		t.Helper()
		t.Fatalf("%s(%q) = %q: %s", fn, raw, key, why)
	}
	if len(key) > stores.MaxKeyLength {
		fail("longer than MaxKeyLength")
	}
	if !utf8.ValidString(key) {
		fail("not valid UTF-8")
	}
	if strings.HasPrefix(key, "/") {
		fail("leading slash")
	}
	if strings.ContainsAny(key, "\\\x00#?") {
		fail("backslash, NUL, '#' or '?'")
	}
	if len(key) >= 5 && strings.EqualFold(key[:5], "file:") {
		fail("file: prefix")
	}
	if len(key) >= 3 && (key[0]|0x20 >= 'a' && key[0]|0x20 <= 'z') && key[1] == ':' && key[2] == '/' {
		fail("Windows drive prefix") // only letters name drives ("0:/x" is a plain name, as in pathlib)
	}
	if key != "" {
		for _, seg := range strings.Split(key, "/") {
			switch seg {
			case "":
				fail("empty segment")
			case ".":
				fail("'.' segment")
			case "..":
				fail("'..' segment")
			}
		}
	}
	if again, err := stores.CleanKey(key); err != nil || again != key {
		t.Fatalf("%s(%q) = %q, but CleanKey of that = %q, %v", fn, raw, key, again, err)
	}
	joined := filepath.Join(root, filepath.FromSlash(key))
	if joined != root && !strings.HasPrefix(joined, root+string(filepath.Separator)) {
		fail("joined under " + root + " it becomes " + joined)
	}
	// Joining must not clean anything away: the key is already canonical.
	if key != "" && joined != root+string(filepath.Separator)+filepath.FromSlash(key) {
		fail("filepath.Join rewrites it to " + joined)
	}
}
