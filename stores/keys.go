package stores

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxDecodeRounds bounds repeated percent-decoding, as upstream MLflow's
// validate_path_is_safe does (it gives up after 10 rounds).
const maxDecodeRounds = 10

// MaxKeyLength caps a key's length in bytes. S3 and GCS allow 1024-byte
// keys; the local store's limit comes from the filesystem (255 per name).
const MaxKeyLength = 1024

// SafePath validates a client-supplied artifact path the way upstream
// MLflow's validate_path_is_safe does and returns it as a clean key.
//
// raw may still be percent-encoded (once, twice, ...): it is decoded until
// it stops changing. The result is refused with an error wrapping
// ErrInvalidKey if, after decoding, it
//   - contains '#' or '?' (a URL fragment or query smuggled into a path),
//   - contains a NUL byte or a backslash,
//   - is absolute (POSIX "/x", Windows "C:\x", "C:/x", UNC "\\h\s"),
//   - starts with a "file:" scheme,
//   - has a ".." segment,
//   - is longer than MaxKeyLength,
//   - is not valid UTF-8 (no store could list it back by its name).
//
// Other ASCII control characters are kept escaped as %xx (lower-case hex),
// as upstream does, so names such as "dog%step%100.png" survive. Empty and
// "." segments are dropped ("a//./b" → "a/b"); the empty string means the
// root and is returned as "".
//
// Ferry is stricter than upstream on POSIX in three places, on purpose:
// backslashes, NUL, '?' and a leading "file:" are refused rather than
// stored.
func SafePath(raw string) (string, error) {
	decoded := raw
	for i := 0; ; i++ {
		if i == maxDecodeRounds {
			return "", invalidKey(raw, "too many levels of percent-encoding")
		}
		// A malformed escape such as "%st" stays literal text, as in
		// Python's unquote.
		next := unquoteLenient(decoded)
		if next == decoded {
			break
		}
		decoded = next
	}
	// Escaping only makes the key longer: refuse an overlong one before
	// spending time on it.
	if len(decoded) > MaxKeyLength {
		return "", invalidKey(decoded, "longer than 1024 bytes")
	}
	return CleanKey(escapeControls(decoded))
}

// CleanKey validates an already-decoded key (see SafePath for the rules)
// and returns its canonical form. Drivers and the instrumented wrapper call
// it on every key, so no store ever sees an unsafe one.
func CleanKey(key string) (string, error) {
	if len(key) > MaxKeyLength {
		return "", invalidKey(key, "longer than 1024 bytes")
	}
	if !utf8.ValidString(key) {
		return "", invalidKey(key, "not valid UTF-8")
	}
	if strings.ContainsAny(key, "#?") {
		return "", invalidKey(key, "contains a URL fragment or query")
	}
	if strings.ContainsAny(key, "\x00\\") {
		return "", invalidKey(key, "contains a NUL byte or a backslash")
	}
	if strings.HasPrefix(key, "/") {
		return "", invalidKey(key, "absolute path")
	}
	if why := badPrefix(key); why != "" {
		return "", invalidKey(key, why)
	}
	segments := strings.Split(key, "/")
	kept := segments[:0]
	for _, s := range segments {
		switch s {
		case "..":
			return "", invalidKey(key, "'..' segment")
		case "", ".":
			continue
		}
		kept = append(kept, s)
	}
	clean := strings.Join(kept, "/")
	// Dropping "." and empty segments can bring a forbidden prefix to the
	// front ("./file:x" → "file:x", ".//C:/x" → "C:/x"): check the result
	// too, so CleanKey is idempotent and never returns a key it would refuse.
	if why := badPrefix(clean); why != "" {
		return "", invalidKey(key, why)
	}
	return clean, nil
}

// badPrefix says why a key may not start the way it does (a file: URI or a
// Windows absolute path), or returns "".
func badPrefix(key string) string {
	switch {
	case len(key) >= 5 && strings.EqualFold(key[:5], "file:"):
		return "a file: URI is not an artifact path"
	case isWindowsAbs(key):
		return "absolute path"
	}
	return ""
}

// JoinKey joins clean key parts with '/', skipping empty parts.
func JoinKey(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		p = strings.Trim(p, "/")
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.String()
}

// BaseName returns the last segment of a clean key.
func BaseName(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}

func invalidKey(key, why string) error {
	if len(key) > 120 {
		key = key[:120] + "..."
	}
	return fmt.Errorf("%w: %q: %s", ErrInvalidKey, key, why)
}

// isWindowsAbs reports drive-absolute ("C:/", "C:\") and UNC ("\\", "//")
// forms, which upstream refuses on every OS.
func isWindowsAbs(s string) bool {
	if len(s) >= 3 && isLetter(s[0]) && s[1] == ':' && (s[2] == '/' || s[2] == '\\') {
		return true
	}
	return strings.HasPrefix(s, `\\`) || strings.HasPrefix(s, "//")
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// unquoteLenient decodes valid %XX escapes and leaves malformed ones as
// literal text, like Python's urllib.parse.unquote.
func unquoteLenient(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escapeControls replaces ASCII control characters other than NUL with
// %xx, as upstream does (NUL is refused later by CleanKey).
func escapeControls(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != 0) || c == 0x7f {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != 0) || c == 0x7f {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	default:
		return c | 0x20 - 'a' + 10
	}
}
