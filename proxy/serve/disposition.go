package serve

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Attachment is the Content-Disposition value werkzeug's
// send_file(as_attachment=True) gives a download named name, which
// upstream's /get-artifact and /model-versions/get-artifact send (spec
// artifacts-api.md §5.4):
//   - an ASCII name: "attachment; filename=<name>", the name bare when it
//     is an HTTP token and quoted (with \ and " escaped) otherwise;
//   - a non-ASCII name: filename is its NFKD form with the non-ASCII
//     left out, and an RFC 5987 filename* (charset UTF-8, no language;
//     the name percent-encoded as Python's quote(name, safe="!#$&+-.^_`|~")
//     does) carries the real one.
func Attachment(name string) string {
	if isASCII(name) {
		return "attachment; filename=" + quoteHeader(name)
	}
	var simple strings.Builder
	for _, r := range norm.NFKD.String(name) {
		if r < utf8.RuneSelf {
			simple.WriteRune(r)
		}
	}
	return "attachment; filename=" + quoteHeader(simple.String()) + "; filename*=UTF-8''" + quoteRFC5987(name)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// tokenChars are werkzeug's header token characters: a value made only of
// them goes out unquoted.
const tokenChars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// quoteHeader is werkzeug's quote_header_value.
func quoteHeader(v string) string {
	if v == "" {
		return `""`
	}
	token := true
	for i := 0; i < len(v); i++ {
		if !strings.ContainsRune(tokenChars, rune(v[i])) {
			token = false
			break
		}
	}
	if token {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}

// rfc5987Safe are the bytes Python's quote leaves alone with
// safe="!#$&+-.^_`|~" (letters, digits and _.-~ always are).
const rfc5987Safe = "!#$&+-.^_`|~"

func quoteRFC5987(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte(rfc5987Safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
