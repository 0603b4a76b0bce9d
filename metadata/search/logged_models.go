package search

import (
	"fmt"
	"strings"

	"github.com/ferryml/ferry/metadata/schema"
)

// Logged-model search (logged-models/search): attributes, metrics.<k>,
// params.<k> and tags.<k>, comparators pinned as upstream's (no IS NULL).

var loggedModels = grammar{
	loggedModels: true,
	attrKeys: set("model_id", "name", "model_type", "status", "source_run_id",
		"creation_timestamp", "creation_time", "last_updated_timestamp", "last_updated_time"),
	orderKeys: set("model_id", "name", "model_type", "status", "source_run_id",
		"creation_timestamp", "creation_time", "last_updated_timestamp", "last_updated_time"),
	numeric: set("creation_timestamp", "creation_time", "last_updated_timestamp", "last_updated_time"),
}

// ParseLoggedModelsFilter parses a logged-models/search filter.
func ParseLoggedModelsFilter(s string) ([]Comparison, error) { return parseFilter(s, loggedModels) }

// LoggedModelStatuses maps status names to the stored integers.
var LoggedModelStatuses = map[string]int64{
	"LOGGED_MODEL_STATUS_UNSPECIFIED": 0, "LOGGED_MODEL_PENDING": 1, "LOGGED_MODEL_READY": 2, "LOGGED_MODEL_UPLOAD_FAILED": 3,
}

// LoggedModelOrder is one order_by entry of logged-models/search.
type LoggedModelOrder struct {
	Field string // attribute name, or metrics.<key>
	Asc   bool
}

// ParseLoggedModelOrder checks an order_by field name.
func ParseLoggedModelOrder(field string, asc bool) (LoggedModelOrder, error) {
	if k, ok := strings.CutPrefix(field, "metrics."); ok && k != "" {
		return LoggedModelOrder{Field: field, Asc: asc}, nil
	}
	if !loggedModels.orderKeys[field] {
		return LoggedModelOrder{}, errf(fmt.Sprintf("Invalid order by field name: %s", field))
	}
	return LoggedModelOrder{Field: field, Asc: asc}, nil
}

// LoggedModelsQuery describes one page of logged-models/search.
type LoggedModelsQuery struct {
	Columns       string
	ExperimentIDs []int64
	Filter        []Comparison
	OrderBy       []LoggedModelOrder
	Limit, Offset int64
}

func loggedModelColumn(key string) string {
	switch key {
	case "creation_timestamp", "creation_time":
		return "logged_models.creation_timestamp_ms"
	case "last_updated_timestamp", "last_updated_time":
		return "logged_models.last_updated_timestamp_ms"
	case "model_id", "name", "model_type", "status", "source_run_id":
		return "logged_models." + key
	}
	panic("search: unknown logged model attribute " + key)
}

// Render renders the logged-models query (active models only).
func (q LoggedModelsQuery) Render(d schema.Dialect) (string, []any) {
	s := &sqlb{d: d}
	js := &sqlb{d: d, n: 100}
	var order []string
	for _, ob := range q.OrderBy {
		dir := ""
		if !ob.Asc {
			dir = " DESC"
		}
		if k, ok := strings.CutPrefix(ob.Field, "metrics."); ok {
			a := js.alias("o")
			// The latest value per metric name (greatest timestamp, then step).
			js.w(" LEFT JOIN logged_model_metrics ", a, " ON ", a, ".model_id = logged_models.model_id AND ")
			js.keyEq(a+".metric_name", k)
			js.w(" AND NOT EXISTS (SELECT 1 FROM logged_model_metrics ", a, "x WHERE ", a, "x.model_id = ", a, ".model_id AND ",
				a, "x.metric_name = ", a, ".metric_name AND (", a, "x.metric_timestamp_ms > ", a, ".metric_timestamp_ms OR (",
				a, "x.metric_timestamp_ms = ", a, ".metric_timestamp_ms AND ", a, "x.metric_step > ", a, ".metric_step)))")
			order = append(order, "CASE WHEN "+a+".metric_value IS NULL THEN 1 ELSE 0 END", a+".metric_value"+dir)
			continue
		}
		col := loggedModelColumn(ob.Field)
		order = append(order, col+dir)
	}
	order = append(order, "logged_models.creation_timestamp_ms DESC", "logged_models.model_id")
	s.w("SELECT ", q.Columns, " FROM logged_models", js.b.String())
	s.args = append(s.args, js.args...)
	s.w(" WHERE logged_models.experiment_id IN ")
	ids := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		ids[i] = id
	}
	s.inList(ids)
	s.w(" AND logged_models.lifecycle_stage = ")
	s.arg("active")
	k := d.Quote("key")
	_ = k
	for _, c := range q.Filter {
		s.w(" AND ")
		switch c.Type {
		case Attribute:
			col := loggedModelColumn(c.Key)
			switch {
			case loggedModels.numeric[c.Key]:
				s.numCmp(col, c.Op, c.Value, false)
			case c.Key == "status":
				// Stored as an integer; compare against the enum number.
				n, ok := LoggedModelStatuses[c.Value.Str]
				if !ok {
					n = -1
				}
				switch c.Op {
				case "=", "!=":
					s.w(col, " ", c.Op, " ")
					s.arg(n)
				default:
					s.w("1 = 0")
				}
			default:
				s.strCmp(col, c.Op, c.Value)
			}
		case Metric:
			s.exists(false, "logged_model_metrics", "model_id", "logged_models.model_id", func(a string) {
				s.w(" AND ")
				s.keyEq(a+".metric_name", c.Key)
				s.w(" AND ")
				s.numCmp(a+".metric_value", c.Op, c.Value, true)
			})
		case Param, Tag:
			table, kc, vc := "logged_model_params", "param_key", "param_value"
			if c.Type == Tag {
				table, kc, vc = "logged_model_tags", "tag_key", "tag_value"
			}
			s.exists(false, table, "model_id", "logged_models.model_id", func(a string) {
				s.w(" AND ")
				s.keyEq(a+"."+kc, c.Key)
				s.w(" AND ")
				s.strCmp(a+"."+vc, c.Op, c.Value)
			})
		default:
			panic("search: unknown logged model identifier type " + c.Type)
		}
	}
	s.w(" ORDER BY ", strings.Join(order, ", "))
	s.w(fmt.Sprintf(" LIMIT %d OFFSET %d", q.Limit, q.Offset))
	return s.b.String(), s.args
}
