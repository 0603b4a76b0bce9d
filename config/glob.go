package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// splitList splits a comma-separated flag value, trimming spaces and
// dropping empty items, as upstream's get_allowed_hosts_from_env does
// (it strips each item).
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// CompileGlobs compiles fnmatch patterns (Python's fnmatch, which upstream
// MLflow matches hosts and origins with: '*' any run of characters, '?'
// one character, "[seq]" and "[!seq]" sets, an unclosed '[' literal) into
// one anchored, case-insensitive regular expression that matches when any
// pattern does. Patterns without a wildcard match exactly (case aside).
// Compiling once means a request costs one match, whatever the list size.
func CompileGlobs(patterns []string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?is)^(?:`)
	for i, p := range patterns {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(globToRegexp(p))
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("patterns %q: %w", patterns, err)
	}
	return re, nil
}

// globToRegexp translates one fnmatch pattern, following Python's
// fnmatch.translate.
func globToRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			set := p[i+1 : j]
			b.WriteByte('[')
			if strings.HasPrefix(set, "!") {
				b.WriteByte('^')
				set = set[1:]
			}
			for _, r := range set {
				if r == '-' {
					b.WriteByte('-')
				} else {
					b.WriteString(regexp.QuoteMeta(string(r)))
				}
			}
			b.WriteByte(']')
			i = j
		default:
			_, size := utf8.DecodeRuneInString(p[i:])
			b.WriteString(regexp.QuoteMeta(p[i : i+size]))
			i += size - 1
		}
	}
	return b.String()
}
