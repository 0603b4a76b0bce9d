package search

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Identifier types after upstream's normalisation (_valid_entity_type).
const (
	Attribute = "attribute"
	Metric    = "metric"
	Param     = "parameter"
	Tag       = "tag"
	Dataset   = "dataset"
)

// ValueKind says which field of a Value is set.
type ValueKind int

// The value kinds.
const (
	VString ValueKind = iota + 1
	VNumber
	VList
	VNull // IS NULL / IS NOT NULL
)

// Value is the right-hand side of a comparison.
type Value struct {
	Kind ValueKind
	Str  string   // VString: the text between the quotes, as upstream keeps it
	Num  float64  // VNumber
	List []string // VList
}

// Comparison is one clause of a filter: <Type>.<Key> <Op> <Value>. Op is
// upper case: = != < <= > >= LIKE ILIKE IN, NOT IN, IS NULL, IS NOT NULL.
type Comparison struct {
	Type  string
	Key   string
	Op    string
	Value Value
}

// OrderBy is one order_by entry.
type OrderBy struct {
	Type string
	Key  string
	Asc  bool
}

// rawComparison is a comparison as written, before validation.
type rawComparison struct {
	ident token
	op    string // upper case
	value token  // tString, tNumber, tIdent; tLParen for a list; tEOF for IS [NOT] NULL
	list  []token
	// listText is the list as written, "('a', 'b')".
	listText string
}

// grammar holds what differs between runs and experiments.
type grammar struct {
	experiments  bool
	loggedModels bool
	// registry: registered models / model versions (§6.3), parsed as
	// experiments are (attribute and tag entities) with their own keys and
	// comparator sets, no IS NULL.
	registry  bool
	attrKeys  map[string]bool // searchable attribute keys
	orderKeys map[string]bool // orderable attribute keys
	numeric   map[string]bool
}

var runs = grammar{
	attrKeys: set("run_id", "run_name", "user_id", "status", "start_time", "end_time", "artifact_uri",
		"created", "Created", "run name", "Run name", "Run Name"),
	orderKeys: set("run_id", "run_name", "user_id", "status", "start_time", "end_time", "artifact_uri",
		"created", "Created"),
	numeric: set("start_time", "end_time", "created", "Created"),
}

var experiments = grammar{
	experiments: true,
	attrKeys:    set("name", "creation_time", "last_update_time"),
	orderKeys:   set("name", "experiment_id", "creation_time", "last_update_time"),
	numeric:     set("creation_time", "last_update_time"),
}

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// pySet renders keys as a Python set literal (sorted: Python's own order
// depends on the hash seed).
func pySet(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return pySetOf(keys...)
}

func pySetOf(keys ...string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "{" + strings.Join(q, ", ") + "}"
}

// MaxFilterLength bounds the filter and order_by strings Ferry parses.
// Upstream has no limit; 64 KiB is far above any real filter.
const MaxFilterLength = 64 << 10

// maxClauses bounds the number of AND-ed comparisons (each becomes a
// subquery).
const maxClauses = 100

// ParseRunsFilter parses a runs/search filter (spec §6.1).
func ParseRunsFilter(s string) ([]Comparison, error) { return parseFilter(s, runs) }

// ParseExperimentsFilter parses an experiments/search filter (§6.2).
func ParseExperimentsFilter(s string) ([]Comparison, error) { return parseFilter(s, experiments) }

func parseFilter(s string, g grammar) ([]Comparison, error) {
	raws, err := splitFilter(s, !g.experiments)
	if err != nil || len(raws) == 0 {
		return nil, err
	}
	out := make([]Comparison, 0, len(raws))
	for _, rc := range raws {
		c, err := g.comparison(rc)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	for _, c := range out {
		if err := g.checkComparator(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// splitFilter checks a filter's size and statement count and splits it
// into raw comparisons; quote puts the invalid clauses of its message in
// quotes (runs and the other grammars do, experiments do not).
func splitFilter(s string, quote bool) ([]rawComparison, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > MaxFilterLength {
		return nil, errf(fmt.Sprintf("Filter string is too long: %d characters (at most %d).", len(s), MaxFilterLength))
	}
	toks := lex(s)
	for i, t := range toks {
		if t.kind == tSemicolon && toks[i+1].kind != tEOF {
			return nil, errf(fmt.Sprintf("Search filter contained multiple expression '%s'. Provide AND-ed expression list.", s))
		}
	}
	raws, invalid := structure(toks, s)
	if len(invalid) > 0 {
		if quote {
			for i, x := range invalid {
				invalid[i] = "'" + x + "'"
			}
		}
		return nil, errf("Invalid clause(s) in filter string: " + strings.Join(invalid, ", "))
	}
	if len(raws) > maxClauses {
		return nil, errf(fmt.Sprintf("Filter string has too many clauses: %d (at most %d).", len(raws), maxClauses))
	}
	return raws, nil
}

// structure splits the token stream into comparisons joined by AND. Tokens
// that do not fit are returned as invalid clauses (upstream's sqlparse
// would leave them ungrouped).
func structure(toks []token, src string) ([]rawComparison, []string) {
	var out []rawComparison
	var invalid []string
	toks = padded(toks)
	i := 0
	for toks[i].kind != tEOF {
		t := toks[i]
		if t.kind == tKeyword && strings.EqualFold(t.text, "AND") {
			i++
			continue
		}
		rc, n, ok := comparisonAt(toks, i, src)
		if !ok {
			if len(invalid) < 20 {
				invalid = append(invalid, clauseText(t))
			}
			i++
			continue
		}
		out = append(out, rc)
		i += n
	}
	return out, invalid
}

func clauseText(t token) string {
	if len(t.text) > 100 {
		return t.text[:100] + "..."
	}
	return t.text
}

func isKW(t token, words ...string) bool {
	if t.kind != tKeyword {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			return true
		}
	}
	return false
}

// comparisonAt recognises one comparison at toks[i] and returns how many
// tokens it spans.
// toks must be padded.
func comparisonAt(toks []token, i int, src string) (rawComparison, int, bool) {
	lhs := toks[i]
	next := toks[i+1]
	if lhs.kind == tNumber || lhs.kind == tString {
		// "1=1": a comparison whose left side is not an identifier.
		if next.kind == tOp {
			return rawComparison{ident: lhs, op: next.text}, 3, toks[i+2].kind != tEOF
		}
		return rawComparison{}, 0, false
	}
	if lhs.kind != tIdent {
		return rawComparison{}, 0, false
	}
	rc := rawComparison{ident: lhs}
	j := i + 1
	switch {
	case next.kind == tOp:
		rc.op = next.text
		j++
	case isKW(next, "LIKE", "ILIKE"):
		rc.op = strings.ToUpper(next.text)
		j++
	case isKW(next, "IN"):
		rc.op = "IN"
		j++
		if toks[j].kind != tLParen {
			return rawComparison{}, 0, false
		}
	case isKW(next, "NOT") && isKW(toks[i+2], "IN"):
		rc.op = "NOT IN"
		j += 2
		if toks[j].kind != tLParen {
			return rawComparison{}, 0, false
		}
	case isKW(next, "IS"):
		j++
		rc.op = "IS NULL"
		if isKW(toks[j], "NOT") {
			rc.op = "IS NOT NULL"
			j++
		}
		if !isKW(toks[j], "NULL") {
			return rawComparison{}, 0, false
		}
		rc.value = token{kind: tEOF}
		return rc, j + 1 - i, true
	default:
		return rawComparison{}, 0, false
	}
	v := toks[j]
	switch v.kind {
	case tString, tNumber, tIdent:
		rc.value = v
		return rc, j + 1 - i, true
	case tLParen:
		// A parenthesised list: ( item [, item]... ), items as written.
		k := j + 1
		for toks[k].kind != tRParen {
			if toks[k].kind == tEOF || toks[k].kind == tLParen || toks[k].kind == tSemicolon {
				return rawComparison{}, 0, false
			}
			rc.list = append(rc.list, toks[k])
			k++
		}
		rc.value = v
		end := len(src)
		if toks[k+1].kind != tEOF || toks[k+1].pos < end {
			end = toks[k+1].pos
		}
		rc.listText = strings.TrimSpace(src[v.pos:end])
		return rc, k + 1 - i, true
	}
	return rawComparison{}, 0, false
}

// splitIdent is upstream's identifier.split(".", 1) on the raw text.
func splitIdent(text string) (string, string, bool) {
	return strings.Cut(text, ".")
}

func isQuoted(s string, q string) bool {
	return len(s) >= 2 && strings.HasPrefix(s, q) && strings.HasSuffix(s, q)
}

func trimBackticks(s string) string {
	if isQuoted(s, "`") {
		return s[1 : len(s)-1]
	}
	return s
}

// stripQuotes is _strip_quotes: ' or " quotes are removed; an unquoted
// value is an error when a quoted one was expected.
func stripQuotes(s string, expectQuoted bool) (string, error) {
	if isQuoted(s, "'") || isQuoted(s, `"`) {
		return s[1 : len(s)-1], nil
	}
	if expectQuoted {
		return "", errf(fmt.Sprintf("Parameter value is either not quoted or unidentified quote types used for string value %s. Use either single or double quotes.", s))
	}
	return s, nil
}

var runEntityTypes = map[string]string{
	"metric": Metric, "metrics": Metric,
	"parameter": Param, "parameters": Param, "param": Param, "params": Param,
	"tag": Tag, "tags": Tag,
	"attribute": Attribute, "attr": Attribute, "attributes": Attribute, "run": Attribute,
	"dataset": Dataset, "datasets": Dataset,
}

var datasetKeys = []string{"name", "digest", "context"}

// identifier is _get_identifier for the grammar, against valid attribute
// keys.
func (g grammar) identifier(text string, valid map[string]bool) (string, string, error) {
	entity, key, dotted := splitIdent(text)
	typ := Attribute
	if !dotted {
		key = entity
	} else if g.experiments {
		if entity != "attribute" && entity != "tag" && entity != "tags" {
			return "", "", errf(fmt.Sprintf("Invalid entity type '%s'. Valid entity types are ('attribute', 'tag', 'tags')", entity))
		}
		typ = runEntityTypes[entity]
	} else {
		e := trimBackticks(entity)
		t, ok := runEntityTypes[e]
		if !ok {
			return "", "", errf(fmt.Sprintf("Invalid entity type '%s'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']", e))
		}
		typ = t
		if g.loggedModels && typ == Dataset {
			return "", "", errf(fmt.Sprintf("Invalid entity type '%s'. Valid values are ['metric', 'parameter', 'tag', 'attribute']", e))
		}
	}
	key, _ = stripQuotes(key, false)
	key = trimBackticks(key)
	if typ == Attribute && !valid[key] {
		return "", "", errf(fmt.Sprintf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(valid)))
	}
	if typ == Dataset && !contains(datasetKeys, key) {
		return "", "", errf(fmt.Sprintf("Invalid dataset key '%s' specified. Valid keys are '%s'", key, pySetOf(datasetKeys...)))
	}
	return typ, key, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func (g grammar) comparison(rc rawComparison) (Comparison, error) {
	if rc.ident.kind != tIdent {
		return Comparison{}, errf(fmt.Sprintf("Invalid comparison clause. Expected 'Identifier' found '%s'", rc.ident.text))
	}
	typ, key, err := g.identifier(rc.ident.text, g.attrKeys)
	if err != nil {
		return Comparison{}, err
	}
	c := Comparison{Type: typ, Key: key, Op: strings.ToUpper(rc.op)}
	if rc.value.kind == tEOF {
		switch {
		case g.registry:
			return c, errf(fmt.Sprintf("IS NULL / IS NOT NULL is not supported for '%s'", key))
		case g.experiments && typ != Tag:
			return c, errf(fmt.Sprintf("IS NULL / IS NOT NULL is only supported for tags, not for attribute '%s'", key))
		case g.loggedModels:
			return c, errf("IS NULL / IS NOT NULL is not supported for logged models")
		case !g.experiments && typ != Tag && typ != Param:
			return c, errf(fmt.Sprintf("IS NULL / IS NOT NULL is only supported for tags and params, not for '%s' '%s'", typ, key))
		}
		c.Value = Value{Kind: VNull}
		return c, nil
	}
	c.Value, err = g.value(typ, key, rc)
	return c, err
}

// shown is a value token as upstream's messages print it (token.value).
func (rc rawComparison) shown() string {
	if rc.value.kind == tLParen {
		return rc.listText
	}
	return rc.value.text
}

// value is _get_value.
func (g grammar) value(typ, key string, rc rawComparison) (Value, error) {
	v := rc.value
	isStr := v.kind == tString || v.kind == tIdent
	switch typ {
	case Metric:
		if v.kind != tNumber {
			return Value{}, errf(fmt.Sprintf("Expected numeric value type for metric. Found %s", rc.shown()))
		}
		return number(v.text)
	case Param, Tag:
		if !isStr {
			return Value{}, errf(fmt.Sprintf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", typ, rc.shown()))
		}
		s, err := stripQuotes(v.text, true)
		return Value{Kind: VString, Str: s}, err
	case Attribute:
		switch {
		case g.numeric[key]:
			if v.kind != tNumber {
				return Value{}, errf(fmt.Sprintf("Expected numeric value type for numeric attribute: %s. Found %s", key, rc.shown()))
			}
			return number(v.text)
		case isStr:
			s, err := stripQuotes(v.text, true)
			return Value{Kind: VString, Str: s}, err
		case v.kind == tLParen:
			if key != "run_id" {
				return Value{}, errf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
			}
			list, err := stringList(rc)
			if err != nil {
				return Value{}, err
			}
			// Upstream keeps only lower-case ids (str.islower), as run
			// ids are lower-case hex and MySQL's IN ignores case.
			kept := list[:0]
			for _, id := range list {
				if pyIsLower(id) {
					kept = append(kept, id)
				}
			}
			return Value{Kind: VList, List: kept}, nil
		}
		return Value{}, errf(fmt.Sprintf("Expected a quoted string value for attributes. Got value %s", rc.shown()))
	case Dataset:
		switch {
		case isStr:
			s, err := stripQuotes(v.text, true)
			return Value{Kind: VString, Str: s}, err
		case v.kind == tLParen:
			list, err := stringList(rc)
			return Value{Kind: VList, List: list}, err
		}
		return Value{}, errf(fmt.Sprintf("Expected a quoted string value for dataset attributes. Got value %s", rc.shown()))
	}
	return Value{}, errf("Invalid identifier type. Expected one of ['metric', 'parameter'].")
}

func number(text string) (Value, error) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		// Out of range: upstream's float() would give inf; refuse instead.
		return Value{}, errf(fmt.Sprintf("Invalid numeric value %s.", text))
	}
	return Value{Kind: VNumber, Num: f}, nil
}

// stringList reads ('a', 'b'): single-quoted strings separated by commas.
func stringList(rc rawComparison) ([]string, error) {
	if len(rc.list) == 0 {
		return nil, errf("While parsing a list in the query, expected a non-empty list of string values, but got empty list")
	}
	var out []string
	for i, t := range rc.list {
		wantComma := i%2 == 1
		switch {
		case wantComma && t.kind == tComma:
		case !wantComma && t.kind == tString:
			out = append(out, t.text[1:len(t.text)-1])
		case t.kind == tString || t.kind == tComma:
			return nil, errf("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
		default:
			return nil, errf(fmt.Sprintf("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", rc.listText))
		}
	}
	if rc.list[len(rc.list)-1].kind == tComma && len(rc.list) == 1 {
		return nil, errf("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
	}
	return out, nil
}

// pyIsLower is Python's str.islower: at least one cased character and no
// upper-case one.
func pyIsLower(s string) bool {
	cased := false
	for _, r := range s {
		if strings.ToUpper(string(r)) != string(r) {
			cased = true
		} else if strings.ToLower(string(r)) != string(r) {
			return false
		}
	}
	return cased
}

var (
	metricOps     = []string{">", ">=", "!=", "=", "<", "<="}
	paramOps      = []string{"!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}
	stringAttrOps = []string{"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"}
	datasetOps    = []string{"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"}
)

// checkComparator applies upstream's per-type comparator sets (is_metric,
// is_param, ...), with their messages (missing closing quotes included).
func (g grammar) checkComparator(c Comparison) error {
	op := c.Op
	listOp := op == "IN" || op == "NOT IN"
	if c.Value.Kind == VList && !listOp {
		return errf(fmt.Sprintf("Invalid comparator '%s' for a list of values. Use IN or NOT IN.", op))
	}
	if g.registry {
		return g.checkRegistryComparator(c)
	}
	if g.experiments {
		switch {
		case c.Type == Tag:
			if !contains(paramOps, op) {
				return errf(fmt.Sprintf("Invalid comparator for tag: %s", op))
			}
		case g.numeric[c.Key]:
			if !contains(metricOps, op) {
				return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s", op, pySetOf(stringAttrOps...)))
			}
		default:
			if !contains(stringAttrOps, op) {
				return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s'", op, pySetOf(stringAttrOps...)))
			}
			if listOp {
				return errf(fmt.Sprintf("Invalid comparator for string attribute: %s", op))
			}
		}
		return nil
	}
	switch c.Type {
	case Metric:
		if !contains(metricOps, op) {
			return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s", op, pySetOf(metricOps...)))
		}
	case Param:
		if !contains(paramOps, op) {
			return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s'", op, pySetOf(paramOps[:4]...)))
		}
	case Tag:
		if !contains(paramOps, op) {
			return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s", op, pySetOf(paramOps[:4]...)))
		}
	case Dataset:
		if !contains(datasetOps, op) {
			return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s", op, pySetOf(datasetOps...)))
		}
		if listOp && c.Value.Kind != VList {
			return errf(fmt.Sprintf("Invalid comparator '%s' for a single value.", op))
		}
	case Attribute:
		if g.numeric[c.Key] {
			if !contains(metricOps, op) {
				return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s", op, pySetOf(stringAttrOps...)))
			}
			return nil
		}
		if !contains(stringAttrOps, op) {
			return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s'", op, pySetOf(stringAttrOps...)))
		}
		if g.loggedModels && listOp {
			return errf(fmt.Sprintf("Invalid comparator '%s' not one of '%s'", op, pySetOf(paramOps[:4]...)))
		}
	}
	return nil
}

// ParseRunsOrderBy parses one runs/search order_by entry.
func ParseRunsOrderBy(s string) (OrderBy, error) { return parseOrderBy(s, runs) }

// ParseExperimentsOrderBy parses one experiments/search order_by entry.
func ParseExperimentsOrderBy(s string) (OrderBy, error) { return parseOrderBy(s, experiments) }

// parseOrderBy is _parse_order_by_string plus _get_identifier: one
// identifier, optionally followed by ASC or DESC (any case).
func parseOrderBy(s string, g grammar) (OrderBy, error) {
	bad := errf(fmt.Sprintf("Invalid order_by clause '%s'. Could not be parsed.", s))
	if len(s) > MaxFilterLength {
		return OrderBy{}, bad
	}
	toks := padded(lex(s))
	if toks[0].kind != tIdent {
		return OrderBy{}, bad
	}
	asc := true
	switch toks[1].kind {
	case tEOF:
	case tKeyword, tIdent:
		if toks[2].kind != tEOF {
			return OrderBy{}, bad
		}
		switch strings.ToLower(toks[1].text) {
		case "asc":
		case "desc":
			asc = false
		default:
			return OrderBy{}, errf(fmt.Sprintf("Invalid ordering key in order_by clause '%s'.", s))
		}
	default:
		return OrderBy{}, bad
	}
	typ, key, err := g.identifier(strings.TrimSpace(toks[0].text), g.orderKeys)
	if err != nil {
		return OrderBy{}, err
	}
	if g.experiments && typ != Attribute {
		return OrderBy{}, errf(fmt.Sprintf("Invalid order_by entity: %s", typ))
	}
	if typ == Dataset {
		return OrderBy{}, errf(fmt.Sprintf("Invalid identifier type '%s'", typ))
	}
	return OrderBy{Type: typ, Key: key, Asc: asc}, nil
}

// AttributeAlias is upstream's translate_key_alias.
func AttributeAlias(key string) string {
	switch key {
	case "created", "Created":
		return "start_time"
	case "run name", "Run name", "Run Name":
		return "run_name"
	}
	return key
}

// ParseRunsOrderByList parses runs/search's order_by entries and refuses
// a field named twice (after alias translation), with upstream's message.
func ParseRunsOrderByList(raw []string) ([]OrderBy, error) {
	out := make([]OrderBy, 0, len(raw))
	seen := map[[2]string]bool{}
	for _, r := range raw {
		ob, err := ParseRunsOrderBy(r)
		if err != nil {
			return nil, err
		}
		key := ob.Key
		if ob.Type == Attribute {
			key = AttributeAlias(key)
		}
		id := [2]string{ob.Type, key}
		if seen[id] {
			return nil, errf(fmt.Sprintf("`order_by` contains duplicate fields: %s", pyList(raw)))
		}
		seen[id] = true
		out = append(out, ob)
	}
	return out, nil
}

// ParseExperimentsOrderByList parses experiments/search's order_by entries.
func ParseExperimentsOrderByList(raw []string) ([]OrderBy, error) {
	out := make([]OrderBy, 0, len(raw))
	for _, r := range raw {
		ob, err := ParseExperimentsOrderBy(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ob)
	}
	return out, nil
}

// pyList renders strings as a Python list repr (simple quoting).
func pyList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		if strings.Contains(x, "'") && !strings.Contains(x, `"`) {
			q[i] = `"` + x + `"`
		} else {
			q[i] = "'" + strings.ReplaceAll(strings.ReplaceAll(x, `\`, `\\`), "'", `\'`) + "'"
		}
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// padded appends EOF tokens so lookahead never runs off the end.
func padded(toks []token) []token {
	eof := toks[len(toks)-1]
	return append(toks[:len(toks):len(toks)], eof, eof, eof, eof)
}
