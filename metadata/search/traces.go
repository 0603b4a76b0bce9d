package search

import (
	"fmt"
	"strings"

	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// Trace search (spec tracking-api.md §6.3a): the traces/search filter
// grammar parsed into Comparisons and rendered into parameterised SQL over
// trace_info t. Every SQL word is a constant of this file; keys, values
// and even the constant tag keys are bind arguments.

// Trace identifier types besides Attribute and Tag.
const (
	TraceMetadata    = "metadata"
	TraceFeedback    = "feedback"
	TraceExpectation = "expectation"
	TracePrompt      = "prompt"
	TraceIssue       = "issue"
	TraceSpan        = "span"
)

var traceEntityTypes = map[string]string{
	"attribute": Attribute, "attributes": Attribute, "attr": Attribute, "trace": Attribute,
	"tag": Tag, "tags": Tag,
	"metadata": TraceMetadata, "request_metadata": TraceMetadata,
	"feedback": TraceFeedback, "expectation": TraceExpectation,
	"issue": TraceIssue, "span": TraceSpan,
}

// traceAttrs maps the searchable trace attributes (and aliases) to their
// canonical key.
var traceAttrs = map[string]string{
	"request_id": "request_id", "trace_id": "request_id",
	"status": "status", "state": "status",
	"name": "name", "client_request_id": "client_request_id", "run_id": "run_id",
	"timestamp": "timestamp_ms", "timestamp_ms": "timestamp_ms",
	"execution_time": "execution_time_ms", "execution_time_ms": "execution_time_ms",
}

var traceNumeric = set("timestamp_ms", "execution_time_ms")

var spanKeys = set("name", "type", "status")

var (
	traceStrOps  = []string{"=", "!=", "LIKE", "ILIKE"}
	traceListOps = []string{"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}
	traceKVOps   = []string{"=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}
)

func traceKeys() map[string]bool {
	m := map[string]bool{}
	for k := range traceAttrs {
		m[k] = true
	}
	return m
}

// ParseTracesFilter parses a traces/search filter.
func ParseTracesFilter(s string) ([]Comparison, error) {
	raws, err := splitFilter(s, true)
	if err != nil || len(raws) == 0 {
		return nil, err
	}
	out := make([]Comparison, 0, len(raws))
	for _, rc := range raws {
		c, err := traceComparison(rc)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// traceIdentifier splits <type>.<key>; a bare word is an attribute, or
// the prompt identifier.
func traceIdentifier(text string, orderBy bool) (string, string, error) {
	entity, key, dotted := splitIdent(text)
	if !dotted {
		k, _ := stripQuotes(trimBackticks(entity), false)
		if k == "prompt" && !orderBy {
			return TracePrompt, "", nil
		}
		return traceAttr(k)
	}
	typ, ok := traceEntityTypes[trimBackticks(entity)]
	if !ok {
		return "", "", errf(fmt.Sprintf("Invalid entity type '%s'. Valid values are ['attribute', 'tag', 'metadata', 'feedback', 'expectation', 'span', 'issue', 'prompt']", trimBackticks(entity)))
	}
	key, _ = stripQuotes(key, false)
	key = trimBackticks(key)
	switch typ {
	case Attribute:
		return traceAttr(key)
	case TraceSpan:
		if !spanKeys[key] {
			return "", "", errf(fmt.Sprintf("Invalid span key '%s' specified. Valid keys are '%s'", key, pySet(spanKeys)))
		}
	case TraceIssue:
		if key != "id" {
			return "", "", errf(fmt.Sprintf("Invalid issue key '%s' specified. Only 'issue.id' is supported.", key))
		}
	}
	if key == "" {
		return "", "", errf(fmt.Sprintf("Invalid identifier '%s': a key is required.", text))
	}
	return typ, key, nil
}

func traceAttr(key string) (string, string, error) {
	k, ok := traceAttrs[key]
	if !ok {
		return "", "", errf(fmt.Sprintf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(traceKeys())))
	}
	return Attribute, k, nil
}

func traceComparison(rc rawComparison) (Comparison, error) {
	if rc.ident.kind != tIdent {
		return Comparison{}, errf(fmt.Sprintf("Invalid comparison clause. Expected 'Identifier' found '%s'", rc.ident.text))
	}
	typ, key, err := traceIdentifier(rc.ident.text, false)
	if err != nil {
		return Comparison{}, err
	}
	c := Comparison{Type: typ, Key: key, Op: strings.ToUpper(rc.op)}
	var ops []string
	switch {
	case typ == Tag || typ == TraceMetadata || typ == TraceFeedback || typ == TraceExpectation:
		ops = traceKVOps
	case typ == TracePrompt || typ == TraceIssue || (typ == Attribute && key == "run_id"):
		ops = []string{"="}
	case typ == TraceSpan || (typ == Attribute && key == "name"):
		ops = traceStrOps
	case typ == Attribute && traceNumeric[key]:
		ops = metricOps
	default:
		ops = traceListOps
	}
	if !contains(ops, c.Op) {
		return c, errf(fmt.Sprintf("Invalid comparator '%s' for '%s'. Valid comparators are %s", c.Op, rc.ident.text, pyList(ops)))
	}
	if rc.value.kind == tEOF {
		c.Value = Value{Kind: VNull}
		return c, nil
	}
	v := rc.value
	switch {
	case typ == Attribute && traceNumeric[key]:
		if v.kind != tNumber {
			return c, errf(fmt.Sprintf("Expected numeric value type for numeric attribute: %s. Found %s", key, rc.shown()))
		}
		c.Value, err = number(v.text)
		return c, err
	case v.kind == tLParen:
		list, err := stringList(rc)
		c.Value = Value{Kind: VList, List: list}
		if err == nil && c.Op != "IN" && c.Op != "NOT IN" {
			err = errf(fmt.Sprintf("Invalid comparator '%s' for a list of values. Use IN or NOT IN.", c.Op))
		}
		return c, err
	case c.Op == "IN" || c.Op == "NOT IN":
		return c, errf(fmt.Sprintf("Invalid comparator '%s' for a single value.", c.Op))
	case (typ == TraceFeedback || typ == TraceExpectation) && v.kind == tNumber:
		// Assessment values are JSON: 5 compares with the stored 5.
		c.Value = Value{Kind: VString, Str: v.text}
		return c, nil
	case v.kind == tString || v.kind == tIdent:
		s, err := stripQuotes(v.text, true)
		c.Value = Value{Kind: VString, Str: s}
		if err == nil && typ == TracePrompt && !strings.Contains(s, "/") {
			err = errf(fmt.Sprintf("Invalid prompt filter value '%s'. Expected the format 'name/version'.", s))
		}
		return c, err
	}
	return c, errf(fmt.Sprintf("Expected a quoted string value for '%s'. Got value %s", rc.ident.text, rc.shown()))
}

// traceOrderColumns are the order_by attributes and their columns.
var traceOrderColumns = map[string]string{
	"timestamp_ms": "t.timestamp_ms", "execution_time_ms": "t.execution_time_ms",
	"status": "t.status", "request_id": "t.request_id",
}

// ParseTracesOrderBy parses traces/search order_by entries: attributes
// timestamp(_ms), execution_time(_ms), status, request_id / trace_id,
// each with ASC or DESC.
func ParseTracesOrderBy(raw []string) ([]OrderBy, error) {
	out := make([]OrderBy, 0, len(raw))
	seen := map[string]bool{}
	for _, r := range raw {
		bad := errf(fmt.Sprintf("Invalid order_by clause '%s'. Could not be parsed.", r))
		if len(r) > MaxFilterLength {
			return nil, bad
		}
		toks := padded(lex(r))
		if toks[0].kind != tIdent {
			return nil, bad
		}
		asc := true
		switch toks[1].kind {
		case tEOF:
		case tKeyword, tIdent:
			if toks[2].kind != tEOF {
				return nil, bad
			}
			switch strings.ToLower(toks[1].text) {
			case "asc":
			case "desc":
				asc = false
			default:
				return nil, errf(fmt.Sprintf("Invalid ordering key in order_by clause '%s'.", r))
			}
		default:
			return nil, bad
		}
		typ, key, err := traceIdentifier(strings.TrimSpace(toks[0].text), true)
		if err != nil {
			return nil, err
		}
		if _, ok := traceOrderColumns[key]; typ != Attribute || !ok {
			return nil, errf(fmt.Sprintf("Invalid order_by key '%s'. Traces can be ordered by timestamp_ms, execution_time_ms, status and request_id.", toks[0].text))
		}
		if seen[key] {
			return nil, errf(fmt.Sprintf("`order_by` contains duplicate fields: %s", pyList(raw)))
		}
		seen[key] = true
		out = append(out, OrderBy{Type: typ, Key: key, Asc: asc})
	}
	return out, nil
}

// TracesQuery describes one page of traces/search.
type TracesQuery struct {
	// Columns is the select list (constant text from the caller) over
	// trace_info t.
	Columns       string
	ExperimentIDs []int64
	Filter        []Comparison
	OrderBy       []OrderBy // empty: timestamp_ms DESC; always then request_id ASC
	// TimeOnly (with OrderBy empty) orders by t.timestamp_ms DESC alone,
	// without the request_id tie-break, so that MySQL can read the
	// (experiment_id, timestamp_ms) index backwards and stop early instead
	// of sorting every match (its index is ascending; the mixed directions
	// force a filesort). Only for a query whose order among equal
	// timestamps does not matter (the page floor of tracing's search).
	TimeOnly      bool
	Limit, Offset int64
}

// Trace tag and metadata keys the grammar refers to.
const (
	traceNameTag     = "mlflow.traceName"
	linkedPromptsTag = "mlflow.linkedPrompts"
	sourceRunKey     = "mlflow.sourceRun"
)

// likeEscape escapes LIKE wildcards with '!' (the ESCAPE character bound
// next to the pattern).
func likeEscape(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(s)
}

// kvCond is a condition on trace_tags / trace_request_metadata.
func (s *sqlb) kvCond(table string, c Comparison) {
	k := s.d.Quote("key")
	switch c.Op {
	case "IS NULL", "IS NOT NULL":
		s.exists(c.Op == "IS NULL", table, "request_id", "t.request_id", func(a string) {
			s.w(" AND ")
			s.keyEq(a+"."+k, c.Key)
		})
	default:
		s.exists(false, table, "request_id", "t.request_id", func(a string) {
			s.w(" AND ")
			s.keyEq(a+"."+k, c.Key)
			s.w(" AND ")
			s.strCmp(a+".value", c.Op, c.Value)
		})
	}
}

// assessmentCond is a condition on a trace's feedback / expectation
// assessments: = and != compare the stored JSON with the value as written
// and as a JSON string ('yes' matches "yes", '5' matches 5 and "5").
func (s *sqlb) assessmentCond(c Comparison) {
	named := func(a string) {
		s.w(" AND ", a, ".assessment_type = ")
		s.arg(c.Type)
		s.w(" AND ")
		s.keyEq(a+".name", c.Key)
	}
	switch c.Op {
	case "IS NULL", "IS NOT NULL":
		s.exists(c.Op == "IS NULL", "assessments", "trace_id", "t.request_id", named)
		return
	}
	s.exists(false, "assessments", "trace_id", "t.request_id", func(a string) {
		named(a)
		s.w(" AND ")
		switch c.Op {
		case "=", "!=":
			op := "IN"
			if c.Op == "!=" {
				op = "NOT IN"
			}
			s.strCmp(a+".value", op, Value{Kind: VList, List: []string{c.Value.Str, wire.PyJSON(c.Value.Str)}})
		default:
			s.strCmp(a+".value", c.Op, c.Value)
		}
	})
}

func (s *sqlb) traceCondition(c Comparison) {
	k := s.d.Quote("key")
	switch c.Type {
	case Tag:
		s.kvCond("trace_tags", c)
	case TraceMetadata:
		s.kvCond("trace_request_metadata", c)
	case TraceFeedback, TraceExpectation:
		s.assessmentCond(c)
	case TracePrompt:
		name, version, _ := strings.Cut(c.Value.Str, "/")
		pattern := "%" + likeEscape("{"+wire.PyJSON("name")+": "+wire.PyJSON(name)+", "+wire.PyJSON("version")+": "+wire.PyJSON(version)+"}") + "%"
		s.exists(false, "trace_tags", "request_id", "t.request_id", func(a string) {
			s.w(" AND ")
			s.keyEq(a+"."+k, linkedPromptsTag)
			s.w(" AND ", a, ".value LIKE ")
			s.arg(pattern)
			s.w(" ESCAPE ")
			s.arg("!")
		})
	case TraceIssue:
		s.exists(false, "assessments", "trace_id", "t.request_id", func(a string) {
			s.w(" AND ", a, ".assessment_type = ")
			s.arg("issue")
			s.w(" AND ")
			s.keyEq(a+".name", c.Value.Str)
		})
	case TraceSpan:
		col := map[string]string{"name": "name", "type": "type", "status": "status"}[c.Key]
		s.exists(false, "spans", "trace_id", "t.request_id", func(a string) {
			s.w(" AND ")
			s.strCmp(a+"."+col, c.Op, c.Value)
		})
	case Attribute:
		switch c.Key {
		case "timestamp_ms", "execution_time_ms":
			s.numCmp("t."+c.Key, c.Op, c.Value, false)
		case "name":
			s.exists(false, "trace_tags", "request_id", "t.request_id", func(a string) {
				s.w(" AND ")
				s.keyEq(a+"."+k, traceNameTag)
				s.w(" AND ")
				s.strCmp(a+".value", c.Op, c.Value)
			})
		case "run_id":
			s.w("(")
			s.exists(false, "trace_request_metadata", "request_id", "t.request_id", func(a string) {
				s.w(" AND ")
				s.keyEq(a+"."+k, sourceRunKey)
				s.w(" AND ")
				s.keyEq(a+".value", c.Value.Str)
			})
			s.w(" OR ")
			s.exists(false, "entity_associations", "source_id", "t.request_id", func(a string) {
				s.w(" AND ", a, ".source_type = ")
				s.arg("trace")
				s.w(" AND ", a, ".destination_type = ")
				s.arg("run")
				s.w(" AND ")
				s.keyEq(a+".destination_id", c.Value.Str)
			})
			s.w(")")
		default: // request_id, status, client_request_id
			s.strCmp("t."+c.Key, c.Op, c.Value)
		}
	default:
		panic("search: unchecked trace identifier type " + c.Type)
	}
}

// Render renders the query.
func (q TracesQuery) Render(d schema.Dialect) (string, []any) {
	s := &sqlb{d: d}
	s.w("SELECT ", q.Columns, " FROM trace_info t WHERE t.experiment_id IN ")
	ids := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		ids[i] = id
	}
	if len(ids) == 0 {
		s.w("(NULL)")
	} else {
		s.inList(ids)
	}
	for _, c := range q.Filter {
		s.w(" AND ")
		s.traceCondition(c)
	}
	var order []string
	if len(q.OrderBy) == 0 {
		order = append(order, "t.timestamp_ms DESC")
	}
	byID := false
	for _, ob := range q.OrderBy {
		col := traceOrderColumns[ob.Key]
		if col == "" {
			panic("search: unchecked trace order key " + ob.Key)
		}
		if !ob.Asc {
			col += " DESC"
		}
		order = append(order, col)
		byID = byID || ob.Key == "request_id"
	}
	if !byID && !(q.TimeOnly && len(q.OrderBy) == 0) {
		order = append(order, "t.request_id")
	}
	s.w(" ORDER BY ", strings.Join(order, ", "))
	s.w(" LIMIT ")
	s.arg(q.Limit)
	s.w(" OFFSET ")
	s.arg(q.Offset)
	return s.b.String(), s.args
}

// TracesWhere renders the conditions of filter over trace_info t as one
// parenthesised boolean expression ("(1 = 1)" when filter is empty) with
// its bind arguments in order, for callers that build their own SELECT
// (counts, aggregates) around the traces/search grammar.
func TracesWhere(d schema.Dialect, filter []Comparison) (string, []any) {
	s := &sqlb{d: d}
	s.w("(")
	if len(filter) == 0 {
		s.w("1 = 1")
	}
	for i, c := range filter {
		if i > 0 {
			s.w(" AND ")
		}
		s.traceCondition(c)
	}
	s.w(")")
	return s.b.String(), s.args
}
