package search

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/metadata/schema"
)

// SQL rendering. Every piece of SQL text below is a constant of this file
// or a number Ferry computed; keys and values from the filter are always
// bind arguments ('?', rebound to $n for PostgreSQL by the caller).

// RunsQuery describes one page of runs/search.
type RunsQuery struct {
	// Columns is the select list (constant text from the caller), with
	// columns of the runs table written as runs.<col>.
	Columns       string
	ExperimentIDs []int64
	Stages        []string // lifecycle stages to include
	Filter        []Comparison
	OrderBy       []OrderBy
	Limit, Offset int64
}

// ExperimentsQuery describes one page of experiments/search.
type ExperimentsQuery struct {
	Columns       string // experiments.<col>, ...
	Stages        []string
	Filter        []Comparison
	OrderBy       []OrderBy // empty: creation_time DESC, experiment_id ASC
	Limit, Offset int64
}

type sqlb struct {
	d    schema.Dialect
	b    strings.Builder
	args []any
	n    int // alias counter
}

func (s *sqlb) w(parts ...string) {
	for _, p := range parts {
		s.b.WriteString(p)
	}
}

func (s *sqlb) arg(v any) {
	s.b.WriteByte('?')
	s.args = append(s.args, v)
}

func (s *sqlb) alias(prefix string) string {
	s.n++
	return prefix + strconv.Itoa(s.n)
}

// inList writes (?, ?, ...) for vs.
func (s *sqlb) inList(vs []any) {
	s.w("(")
	for i, v := range vs {
		if i > 0 {
			s.w(", ")
		}
		s.arg(v)
	}
	s.w(")")
}

// strCmp compares a string column case-sensitively on every dialect, as
// upstream's get_sql_comparison_func does (MySQL: BINARY).
func (s *sqlb) strCmp(col, op string, v Value) {
	my := s.d == schema.MySQL
	switch op {
	case "=", "!=", "LIKE":
		if my {
			join := " AND "
			if op == "!=" {
				join = " OR "
			}
			s.w("(", col, " ", op, " ")
			s.arg(v.Str)
			s.w(join, "BINARY ", col, " ", op, " ")
			s.arg(v.Str)
			s.w(")")
			return
		}
		s.w(col, " ", op, " ")
		s.arg(v.Str)
	case "ILIKE":
		if s.d == schema.Postgres {
			s.w(col, " ILIKE ")
			s.arg(v.Str)
			return
		}
		s.w("LOWER(", col, ") LIKE LOWER(")
		s.arg(v.Str)
		s.w(")")
	case "IN", "NOT IN":
		if len(v.List) == 0 {
			// SQLAlchemy's empty IN: false; empty NOT IN: true.
			if op == "IN" {
				s.w("1 = 0")
			} else {
				s.w("1 = 1")
			}
			return
		}
		s.w(col, " ", op, " (")
		for i, x := range v.List {
			if i > 0 {
				s.w(", ")
			}
			if my {
				// Binary values make the comparison exact while the bare
				// column keeps its index (as metadata.ExactEq).
				s.w("BINARY ")
			}
			s.arg(x)
		}
		s.w(")")
	default:
		panic("search: unchecked comparator " + op)
	}
}

// numArg is a numeric filter value: an int64 when integral (BIGINT
// columns), else a float64.
func numArg(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		return int64(f)
	}
	return f
}

func (s *sqlb) numCmp(col, op string, v Value, float bool) {
	switch op {
	case "=", "!=", "<", "<=", ">", ">=":
	default:
		panic("search: unchecked comparator " + op)
	}
	s.w(col, " ", op, " ")
	if float {
		s.arg(v.Num)
	} else {
		s.arg(numArg(v.Num))
	}
}

// keyEq matches a key column exactly (MySQL's collation ignores case).
func (s *sqlb) keyEq(col, key string) {
	s.strCmp(col, "=", Value{Kind: VString, Str: key})
}

// exists writes [NOT] EXISTS (SELECT 1 FROM <table> a WHERE a.<link> = <outer> AND ...);
// body adds the conditions on alias a.
func (s *sqlb) exists(not bool, table, link, outer string, body func(a string)) {
	a := s.alias("f")
	if not {
		s.w("NOT ")
	}
	s.w("EXISTS (SELECT 1 FROM ", table, " ", a, " WHERE ", a, ".", link, " = ", outer)
	body(a)
	s.w(")")
}

// runAttrColumn maps a (translated) run attribute to its column.
func runAttrColumn(key string) string {
	switch key {
	case "run_id":
		return "runs.run_uuid"
	case "run_name":
		return "runs.name"
	case "user_id", "status", "artifact_uri", "start_time", "end_time":
		return "runs." + key
	}
	panic("search: unknown run attribute " + key)
}

// runCondition writes one runs filter comparison.
func (s *sqlb) runCondition(c Comparison) {
	k := s.d.Quote("key")
	switch c.Type {
	case Attribute:
		key := AttributeAlias(c.Key)
		switch key {
		case "run_name":
			// Upstream compares the mlflow.runName tag (the name column is
			// empty for runs logged by MLflow <= 1.29).
			s.exists(false, "tags", "run_uuid", "runs.run_uuid", func(a string) {
				s.w(" AND ")
				s.keyEq(a+"."+k, "mlflow.runName")
				s.w(" AND ")
				s.strCmp(a+".value", c.Op, c.Value)
			})
		case "start_time", "end_time":
			s.numCmp(runAttrColumn(key), c.Op, c.Value, false)
		default:
			s.strCmp(runAttrColumn(key), c.Op, c.Value)
		}
	case Metric:
		s.exists(false, "latest_metrics", "run_uuid", "runs.run_uuid", func(a string) {
			s.w(" AND ")
			s.keyEq(a+"."+k, c.Key)
			s.w(" AND ")
			s.numCmp(a+".value", c.Op, c.Value, true)
		})
	case Param, Tag:
		table := "params"
		if c.Type == Tag {
			table = "tags"
		}
		s.exists(c.Op == "IS NULL", table, "run_uuid", "runs.run_uuid", func(a string) {
			s.w(" AND ")
			s.keyEq(a+"."+k, c.Key)
			if c.Value.Kind != VNull {
				s.w(" AND ")
				s.strCmp(a+".value", c.Op, c.Value)
			}
		})
	case Dataset:
		s.exists(false, "inputs", "destination_id", "runs.run_uuid", func(a string) {
			d := s.alias("d")
			// The correlated subquery joins datasets (and input_tags for
			// context) through the conditions below.
			s.w(" AND EXISTS (SELECT 1 FROM datasets ", d, " WHERE ", d, ".dataset_uuid = ", a, ".source_id")
			if c.Key == "context" {
				t := s.alias("t")
				s.w(" AND EXISTS (SELECT 1 FROM input_tags ", t, " WHERE ", t, ".input_uuid = ", a, ".input_uuid AND ")
				s.keyEq(t+".name", "mlflow.data.context")
				s.w(" AND ")
				s.strCmp(t+".value", c.Op, c.Value)
				s.w(")")
			} else {
				s.w(" AND ")
				s.strCmp(d+"."+c.Key, c.Op, c.Value)
			}
			s.w(")")
		})
	default:
		panic("search: unknown identifier type " + c.Type)
	}
}

// Render renders the runs query. It returns an *Error for duplicate
// order_by fields.
func (q RunsQuery) Render(d schema.Dialect) (string, []any, error) {
	s := &sqlb{d: d}
	k := d.Quote("key")
	// Ordering joins come first in the text, so their arguments too.
	var joins strings.Builder
	var order []string
	seen := map[[2]string]bool{}
	startSeen := false
	js := &sqlb{d: d, n: 100}
	for _, ob := range q.OrderBy {
		dir := ""
		if !ob.Asc {
			dir = " DESC"
		}
		key := ob.Key
		if ob.Type == Attribute {
			key = AttributeAlias(key)
		}
		id := [2]string{ob.Type, key}
		if seen[id] {
			return "", nil, errf("`order_by` contains duplicate fields")
		}
		seen[id] = true
		switch ob.Type {
		case Attribute:
			if key == "start_time" {
				startSeen = true
			}
			col := runAttrColumn(key)
			order = append(order, "CASE WHEN "+col+" IS NULL THEN 1 ELSE 0 END", col+dir)
		case Metric, Param, Tag:
			table := map[string]string{Metric: "latest_metrics", Param: "params", Tag: "tags"}[ob.Type]
			a := js.alias("o")
			js.w(" LEFT JOIN ", table, " ", a, " ON ", a, ".run_uuid = runs.run_uuid AND ")
			js.keyEq(a+"."+k, key)
			if ob.Type == Metric {
				order = append(order, "CASE WHEN "+a+".is_nan THEN 1 WHEN "+a+".value IS NULL THEN 2 ELSE 0 END")
			} else {
				order = append(order, "CASE WHEN "+a+".value IS NULL THEN 1 ELSE 0 END")
			}
			order = append(order, a+".value"+dir)
		default:
			panic("search: unknown order_by type " + ob.Type)
		}
	}
	joins.WriteString(js.b.String())
	if !startSeen {
		order = append(order, "runs.start_time DESC")
	}
	order = append(order, "runs.run_uuid")

	s.w("SELECT ", q.Columns, " FROM runs", joins.String())
	s.args = append(s.args, js.args...)
	s.w(" WHERE runs.experiment_id IN ")
	ids := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		ids[i] = id
	}
	s.inList(ids)
	s.w(" AND runs.lifecycle_stage IN ")
	s.inList(stringsAny(q.Stages))
	for _, c := range q.Filter {
		s.w(" AND ")
		s.runCondition(c)
	}
	s.w(" ORDER BY ", strings.Join(order, ", "))
	s.w(fmt.Sprintf(" LIMIT %d OFFSET %d", q.Limit, q.Offset))
	return s.b.String(), s.args, nil
}

func stringsAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// Render renders the experiments query.
func (q ExperimentsQuery) Render(d schema.Dialect) (string, []any) {
	s := &sqlb{d: d}
	k := d.Quote("key")
	s.w("SELECT ", q.Columns, " FROM experiments WHERE experiments.workspace = ")
	s.arg("default")
	s.w(" AND experiments.lifecycle_stage IN ")
	s.inList(stringsAny(q.Stages))
	for _, c := range q.Filter {
		s.w(" AND ")
		switch {
		case c.Type == Tag:
			s.exists(c.Op == "IS NULL", "experiment_tags", "experiment_id", "experiments.experiment_id", func(a string) {
				s.w(" AND ")
				s.keyEq(a+"."+k, c.Key)
				if c.Value.Kind != VNull {
					s.w(" AND ")
					s.strCmp(a+".value", c.Op, c.Value)
				}
			})
		case c.Key == "name":
			s.strCmp("experiments.name", c.Op, c.Value)
		case c.Key == "creation_time" || c.Key == "last_update_time":
			s.numCmp("experiments."+c.Key, c.Op, c.Value, false)
		default:
			panic("search: unknown experiment attribute " + c.Key)
		}
	}
	obs := q.OrderBy
	if len(obs) == 0 {
		obs = []OrderBy{{Type: Attribute, Key: "creation_time"}, {Type: Attribute, Key: "experiment_id", Asc: true}}
	}
	var order []string
	idSeen := false
	for _, ob := range obs {
		col := map[string]string{"name": "experiments.name", "experiment_id": "experiments.experiment_id",
			"creation_time": "experiments.creation_time", "last_update_time": "experiments.last_update_time"}[ob.Key]
		if col == "" {
			panic("search: unknown experiment order key " + ob.Key)
		}
		if ob.Key == "experiment_id" {
			idSeen = true
		}
		if ob.Asc {
			order = append(order, col)
		} else {
			order = append(order, col+" DESC")
		}
	}
	if !idSeen {
		order = append(order, "experiments.experiment_id DESC")
	}
	s.w(" ORDER BY ", strings.Join(order, ", "))
	s.w(fmt.Sprintf(" LIMIT %d OFFSET %d", q.Limit, q.Offset))
	return s.b.String(), s.args
}
