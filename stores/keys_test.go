package stores_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// encodeSlash returns "a/b" with its slash percent-encoded levels times
// ("%2F", "%252F", "%25252F", ...), so decoding it takes that many rounds.
func encodeSlash(levels int) string {
	return "a%" + strings.Repeat("25", levels-1) + "2Fb"
}

// TestSafePath covers every example of artifacts-api.md §3 plus the forms
// an attacker would try next. want is the returned key; a want of "!"
// means the path must be refused with ErrInvalidKey.
func TestSafePath(t *testing.T) {
	const refused = "!"
	long1024 := strings.Repeat("a", 1024)
	tests := []struct {
		name, in, want string
	}{
		// artifacts-api.md §3: rejected by upstream's tests.
		{"spec: absolute", "/path", refused},
		{"spec: dotdot in the middle", "path/../to/file", refused},
		{"spec: /etc/passwd", "/etc/passwd", refused},
		{"spec: NUL-truncated extension", "/etc/passwd%00.jpg", refused},
		{"spec: file URI behind a slash", "/file://etc/passwd", refused},
		{"spec: encoded traversal", "%2E%2E%2F%2E%2E%2Fpath", refused},
		{"spec: leading dotdot", "../path", refused},
		{"spec: leading dotdot file", "../test.txt", refused},
		// artifacts-api.md §3: accepted.
		{"spec: plain file", "a.txt", "a.txt"},
		{"spec: nested file", "dir/b.txt", "dir/b.txt"},
		{"spec: dots inside a name", "a..b", "a..b"},
		{"spec: hidden file", ".hidden", ".hidden"},
		{"spec: dot segment dropped", "dir/./x", "dir/x"},

		// Traversal in every encoding.
		{"bare dotdot", "..", refused},
		{"trailing dotdot", "a/..", refused},
		{"double dotdot", "a/../../b", refused},
		{"lower-case escapes", "%2e%2e/x", refused},
		{"mixed-case escapes", "%2E%2e%2f%2E%2e%2Fx", refused},
		{"half-encoded dotdot", ".%2E/x", refused},
		{"double encoding", "%252E%252E%252F", refused},
		{"double encoding then name", "%252E%252E%252Fetc%252Fpasswd", refused},
		{"triple encoding", "%25252E%25252E%25252Fx", refused},
		{"encoded leading slash", "%2Fetc%2Fpasswd", refused},
		{"double-encoded leading slash", "%252Fetc", refused},
		{"nine levels of encoding decode", encodeSlash(9), "a/b"},
		{"ten levels of encoding are refused", encodeSlash(10), refused},

		// Backslashes: upstream accepts them on POSIX; Ferry refuses them
		// everywhere (see SafePath's doc comment).
		{"backslash traversal", `..\x`, refused},
		{"backslash in a name", `a\b`, refused},
		{"encoded backslash", "%5C", refused},
		{"encoded backslash traversal", "..%5cx", refused},
		{"double-encoded backslash", "a%255Cb", refused},

		// NUL, fragments, queries.
		{"raw NUL", "a\x00b", refused},
		{"encoded NUL", "a%00b", refused},
		{"double-encoded NUL", "a%2500b", refused},
		{"fragment", "a#b", refused},
		{"encoded fragment", "a%23b", refused},
		{"double-encoded fragment", "a%2523b", refused},
		{"query", "a?b", refused},
		{"encoded query", "a%3Fb", refused},
		{"encoded query lower case", "a%3fb=1", refused},

		// Windows forms, refused on every OS.
		{"drive with slash", "C:/x", refused},
		{"lower-case drive", "c:/windows", refused},
		{"drive with backslash", `C:\x`, refused},
		{"encoded drive", "C%3A%2Fx", refused},
		{"bare drive root", "Z:/", refused},
		{"UNC with backslashes", `\\host\share`, refused},
		{"UNC with slashes", "//host/share", refused},
		{"encoded UNC", "%2F%2Fhost%2Fshare", refused},
		{"drive revealed by cleaning", "./C:/x", refused},
		{"drive revealed by cleaning twice", ".//./C:/x", refused},
		{"drive-relative name is a plain name on POSIX", "C:x", "C:x"},
		{"colon later in a name", "a/C:/x", "a/C:/x"},

		// file: URIs.
		{"file URI", "file:///etc/passwd", refused},
		{"relative file URI", "file:x", refused},
		{"upper-case scheme", "FILE:x", refused},
		{"encoded scheme letter", "%66ile:x", refused},
		{"file URI revealed by cleaning", "./file:x", refused},
		{"file: deeper in the key is a name", "a/file:x", "a/file:x"},
		{"name starting with file", "files/x", "files/x"},

		// Length.
		{"exactly MaxKeyLength", long1024, long1024},
		{"one byte too long", long1024 + "b", refused},
		{"long only before decoding", strings.Repeat("%41", 400), strings.Repeat("A", 400)},
		{"too long after control escaping", strings.Repeat("\x01", 400), refused},
		{"too long before control escaping", strings.Repeat("\x01", 10<<20), refused},
		{"too long after decoding", strings.Repeat("%41", 1025), refused},

		// Decoding quirks kept from upstream.
		{"upstream dog%step example", "dog%step%100%timestamp%100.png", "dog%step%100%timestamp%100.png"},
		{"escape in a name is decoded", "a%41.txt", "aA.txt"},
		{"double-encoded letter", "%2541", "A"},
		{"encoded slash splits", "a%2Fb", "a/b"},
		{"encoded space", "a%20b", "a b"},
		{"encoded utf-8", "%C3%BC.txt", "ü.txt"},
		{"encoded invalid utf-8", "%FF.txt", refused},
		{"encoded truncated utf-8", "a/%C3/b", refused},
		{"raw invalid utf-8", "a\xff", refused},
		{"encoded surrogate", "%ED%A0%80", refused},
		{"lone percent", "100%", "100%"},
		{"percent percent", "%%", "%%"},
		{"malformed escape", "%zz", "%zz"},
		{"truncated escape", "a%2", "a%2"},
		{"encoded percent", "%25", "%"},

		// Control characters are escaped as lower-case %xx, not refused.
		{"tab", "a\tb", "a%09b"},
		{"newline", "a\nb", "a%0ab"},
		{"encoded newline", "a%0Ab", "a%0ab"},
		{"unit separator", "\x1f", "%1f"},
		{"DEL", "\x7f", "%7f"},
		{"encoded DEL", "%7F", "%7f"},
		{"double-encoded control", "%2501", "%01"},

		// Canonical forms.
		{"empty is the root", "", ""},
		{"dot is the root", ".", ""},
		{"dot slash is the root", "./", ""},
		{"slash alone", "/", refused},
		{"duplicate slashes", "a//b", "a/b"},
		{"trailing slash", "dir/", "dir"},
		{"three dots is a name", "...", "..."},
		{"dots around a name", "a/.../b", "a/.../b"},
		{"dotdot prefix of a name", "..a/b..", "..a/b.."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stores.SafePath(tt.in)
			if tt.want == refused {
				if !errors.Is(err, stores.ErrInvalidKey) {
					t.Fatalf("SafePath(%q) = %q, %v; want ErrInvalidKey", tt.in, got, err)
				}
				if got != "" {
					t.Fatalf("SafePath(%q) returned %q along with its error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SafePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := stores.CleanKey(got); err != nil || again != got {
				t.Fatalf("CleanKey(SafePath(%q)) = %q, %v; want it unchanged", tt.in, again, err)
			}
		})
	}
}

// TestCleanKey covers the already-decoded form: no percent-decoding, the
// same refusals, and canonicalisation.
func TestCleanKey(t *testing.T) {
	const refused = "!"
	tests := []struct {
		name, in, want string
	}{
		{"plain", "a/b.txt", "a/b.txt"},
		{"escapes stay literal", "a%41", "a%41"},
		{"encoded dotdot stays literal", "%2E%2E/x", "%2E%2E/x"},
		{"encoded slash stays literal", "x%2Fy", "x%2Fy"},
		{"empty and dot segments dropped", "a//b/./c/", "a/b/c"},
		{"empty", "", ""},
		{"dot", ".", ""},
		{"dots and slashes only", "././/.", ""},
		{"dotdot", "..", refused},
		{"dotdot segment", "x/../y", refused},
		{"absolute", "/x", refused},
		{"backslash", `a\b`, refused},
		{"NUL", "a\x00", refused},
		{"fragment", "a#b", refused},
		{"query", "a?b", refused},
		{"drive", "C:/x", refused},
		{"UNC", "//h/s", refused},
		{"file URI", "file:x", refused},
		{"file URI behind a dot segment", "./file:x", refused},
		{"drive behind a dot segment", "./C:/x", refused},
		{"invalid utf-8", "a/\xc3/b", refused},
		{"utf-8", "a/ü/b", "a/ü/b"},
		{"too long", strings.Repeat("a", stores.MaxKeyLength+1), refused},
		{"longest", strings.Repeat("a", stores.MaxKeyLength), strings.Repeat("a", stores.MaxKeyLength)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stores.CleanKey(tt.in)
			if tt.want == refused {
				if !errors.Is(err, stores.ErrInvalidKey) {
					t.Fatalf("CleanKey(%q) = %q, %v; want ErrInvalidKey", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CleanKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := stores.CleanKey(got); err != nil || again != got {
				t.Fatalf("CleanKey is not idempotent on %q: %q, %v", got, again, err)
			}
		})
	}
}

// TestInvalidKeyErrorIsBounded checks that an error for a huge key does
// not echo the whole key back (it ends up in logs and responses).
func TestInvalidKeyErrorIsBounded(t *testing.T) {
	_, err := stores.CleanKey(strings.Repeat("x", 100_000))
	if !errors.Is(err, stores.ErrInvalidKey) {
		t.Fatalf("err = %v; want ErrInvalidKey", err)
	}
	if n := len(err.Error()); n > 300 {
		t.Fatalf("error message is %d bytes long", n)
	}
}

// TestJoinKeyAndBaseName pins the two small key helpers.
func TestJoinKeyAndBaseName(t *testing.T) {
	joins := []struct {
		parts []string
		want  string
	}{
		{nil, ""},
		{[]string{"", "a", ""}, "a"},
		{[]string{"a", "b/c"}, "a/b/c"},
		{[]string{"a/", "/b/"}, "a/b"},
		{[]string{"", ""}, ""},
	}
	for _, tt := range joins {
		if got := stores.JoinKey(tt.parts...); got != tt.want {
			t.Errorf("JoinKey(%q) = %q; want %q", tt.parts, got, tt.want)
		}
	}
	bases := map[string]string{"": "", "a": "a", "a/b": "b", "a/b/c.txt": "c.txt"}
	for in, want := range bases {
		if got := stores.BaseName(in); got != want {
			t.Errorf("BaseName(%q) = %q; want %q", in, got, want)
		}
	}
}
