// Package search parses MLflow's search filter and order_by strings (spec
// tracking-api.md §6) into an AST and renders them as parameterised SQL
// for SQLite, PostgreSQL and MySQL.
//
// Upstream parses filters with sqlparse; this package is a small
// hand-written lexer and parser for the subset upstream accepts, with
// upstream's error messages. User text never becomes SQL text: keys and
// values travel as bind arguments, and identifiers only select among
// fixed column names.
package search

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is a filter or order_by that upstream refuses with 400
// INVALID_PARAMETER_VALUE.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errf(msg string) *Error { return &Error{Msg: msg} }

type tokKind int

const (
	tEOF     tokKind = iota
	tIdent           // a (possibly dotted, possibly quoted) identifier
	tKeyword         // AND OR NOT IN LIKE ILIKE IS NULL ASC DESC TRUE FALSE ...
	tString          // 'single quoted'
	tNumber          // 1, -2.5, 1e3
	tOp              // = != <> < <= > >= ==
	tLParen
	tRParen
	tComma
	tSemicolon
	tBad // anything else (unbalanced quote, stray character)
)

// token is one lexeme. text is the raw source text (quotes included).
type token struct {
	kind tokKind
	text string
	// For tIdent: parts of the dotted name, raw (quotes included).
	parts []string
	pos   int
}

// keywords are the bare words sqlparse treats as keywords in the places
// where a filter could contain them; a keyword is never an identifier.
var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "IN": true, "LIKE": true, "ILIKE": true,
	"IS": true, "NULL": true, "ASC": true, "DESC": true, "TRUE": true, "FALSE": true,
	"BETWEEN": true, "SELECT": true, "FROM": true, "WHERE": true, "EXISTS": true,
}

// lex splits s into tokens. It never fails: text it cannot read becomes a
// tBad token carrying the rest of the input, so the parser can report it
// as an invalid clause.
func lex(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		start := i
		switch {
		case r == '\'':
			end, ok := scanQuoted(s, i, '\'')
			if !ok {
				out = append(out, token{kind: tBad, text: s[i:], pos: i})
				return append(out, token{kind: tEOF, pos: len(s)})
			}
			out = append(out, token{kind: tString, text: s[i:end], pos: i})
			i = end
		case r == '"' || r == '`' || isIdentStart(r):
			end, parts, ok := scanIdent(s, i)
			if !ok {
				out = append(out, token{kind: tBad, text: s[i:], pos: i})
				return append(out, token{kind: tEOF, pos: len(s)})
			}
			text := s[i:end]
			if len(parts) == 1 && isIdentStart(r) && keywords[strings.ToUpper(text)] {
				out = append(out, token{kind: tKeyword, text: text, pos: i})
			} else {
				out = append(out, token{kind: tIdent, text: text, parts: parts, pos: i})
			}
			i = end
		case r >= '0' && r <= '9' || r == '.' || r == '-':
			end := scanNumber(s, i)
			if end == i {
				out = append(out, token{kind: tBad, text: string(r), pos: i})
				i += size
				continue
			}
			out = append(out, token{kind: tNumber, text: s[i:end], pos: i})
			i = end
		case r == '=' || r == '!' || r == '<' || r == '>':
			end := i + 1
			if end < len(s) && (s[end] == '=' || (r == '<' && s[end] == '>')) {
				end++
			}
			if s[start:end] == "!" {
				out = append(out, token{kind: tBad, text: "!", pos: i})
			} else {
				out = append(out, token{kind: tOp, text: s[start:end], pos: i})
			}
			i = end
		case r == '(':
			out = append(out, token{kind: tLParen, text: "(", pos: i})
			i++
		case r == ')':
			out = append(out, token{kind: tRParen, text: ")", pos: i})
			i++
		case r == ',':
			out = append(out, token{kind: tComma, text: ",", pos: i})
			i++
		case r == ';':
			out = append(out, token{kind: tSemicolon, text: ";", pos: i})
			i++
		default:
			out = append(out, token{kind: tBad, text: s[i : i+size], pos: i})
			i += size
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)})
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentChar(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// scanQuoted returns the end of a quoted string starting at s[i] == q.
// As in sqlparse, a doubled quote and a backslash escape stay inside.
func scanQuoted(s string, i int, q byte) (int, bool) {
	j := i + 1
	for j < len(s) {
		switch s[j] {
		case '\\':
			if q != '`' {
				j += 2
				continue
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j += 2
				continue
			}
			return j + 1, true
		}
		j++
	}
	return 0, false
}

// scanIdent reads part('.'part)* where a part is a bare word, a
// "double-quoted" or a `backticked` name. Dots must be adjacent.
func scanIdent(s string, i int) (int, []string, bool) {
	var parts []string
	for {
		if i >= len(s) {
			return 0, nil, false
		}
		start := i
		switch s[i] {
		case '"', '`':
			end, ok := scanQuoted(s, i, s[i])
			if !ok {
				return 0, nil, false
			}
			i = end
		default:
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if !isIdentChar(r) {
					break
				}
				i += size
			}
			if i == start {
				return 0, nil, false
			}
		}
		parts = append(parts, s[start:i])
		if i < len(s) && s[i] == '.' && i+1 < len(s) {
			next, _ := utf8.DecodeRuneInString(s[i+1:])
			if next == '"' || next == '`' || isIdentChar(next) {
				i++
				continue
			}
		}
		return i, parts, true
	}
}

// scanNumber reads -?(digits[.digits]|.digits)([eE][-+]?digits)? and
// returns i when there is no number at i. A number directly followed by
// a letter is not a number (sqlparse: "1abc" is a name).
func scanNumber(s string, i int) int {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	digits := func() int {
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j - k
	}
	n := digits()
	if j < len(s) && s[j] == '.' {
		j++
		n += digits()
	}
	if n == 0 {
		return i
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j
		j++
		if j < len(s) && (s[j] == '-' || s[j] == '+') {
			j++
		}
		if digits() == 0 {
			j = k
		}
	}
	if j < len(s) {
		r, _ := utf8.DecodeRuneInString(s[j:])
		if isIdentStart(r) {
			return i
		}
	}
	return j
}
