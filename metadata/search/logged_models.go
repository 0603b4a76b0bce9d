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
	// For metrics.<key>: the value is the latest one among the metric's
	// rows with this dataset name and/or digest ("" = no condition, as
	// upstream's `ob.dataset_name or None`; a digest alone is allowed).
	DatasetName, DatasetDigest string
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

// LoggedModelDataset is one entry of logged-models/search `datasets`.
// Upstream's handler passes `{"dataset_name": name, "dataset_digest":
// digest or None}` and its store then always compares the digest, so an
// absent (or empty) digest matches only metrics logged without one
// (`dataset_digest IS NULL`).
type LoggedModelDataset struct {
	Name   string // required (non-empty)
	Digest string // "" = dataset_digest IS NULL
}

// LoggedModelsQuery describes one page of logged-models/search.
type LoggedModelsQuery struct {
	Columns       string
	ExperimentIDs []int64
	Filter        []Comparison
	// Datasets restricts every metric comparison of Filter to metrics
	// logged on one of these datasets; without a metric comparison, a
	// model must have some metric logged on one of them.
	Datasets      []LoggedModelDataset
	OrderBy       []LoggedModelOrder
	Limit, Offset int64
}

// datasetsCond writes ((a.dataset_name = ? AND a.dataset_digest = ?) OR
// ...) for ds over the logged_model_metrics alias a.
func (s *sqlb) datasetsCond(a string, ds []LoggedModelDataset) {
	s.w("(")
	for i, d := range ds {
		if i > 0 {
			s.w(" OR ")
		}
		s.w("(")
		s.keyEq(a+".dataset_name", d.Name)
		s.w(" AND ")
		if d.Digest == "" {
			s.w(a, ".dataset_digest IS NULL")
		} else {
			s.keyEq(a+".dataset_digest", d.Digest)
		}
		s.w(")")
	}
	s.w(")")
}

// orderDatasetCond writes the order_by entry's dataset conditions on the
// logged_model_metrics alias a, each preceded by AND.
func (s *sqlb) orderDatasetCond(a string, ob LoggedModelOrder) {
	if ob.DatasetName != "" {
		s.w(" AND ")
		s.keyEq(a+".dataset_name", ob.DatasetName)
	}
	if ob.DatasetDigest != "" {
		s.w(" AND ")
		s.keyEq(a+".dataset_digest", ob.DatasetDigest)
	}
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
			a, x := js.alias("o"), js.alias("o")
			// The latest value per metric name (greatest timestamp, then
			// step) among the rows of the order's dataset, as upstream's
			// rank() = 1 subquery; models without one sort last. Rows tied
			// on (timestamp, step) would join twice (upstream's ORM drops
			// the duplicate model after LIMIT, keeping its first position):
			// the tie goes to the value that sorts first, then the smallest
			// run_id, so each model joins at most one row.
			better := " < "
			if !ob.Asc {
				better = " > "
			}
			js.w(" LEFT JOIN logged_model_metrics ", a, " ON ", a, ".model_id = logged_models.model_id AND ")
			js.keyEq(a+".metric_name", k)
			js.orderDatasetCond(a, ob)
			js.w(" AND NOT EXISTS (SELECT 1 FROM logged_model_metrics ", x, " WHERE ", x, ".model_id = ", a, ".model_id AND ")
			js.keyEq(x+".metric_name", k)
			js.orderDatasetCond(x, ob)
			js.w(" AND (", x, ".metric_timestamp_ms > ", a, ".metric_timestamp_ms OR (",
				x, ".metric_timestamp_ms = ", a, ".metric_timestamp_ms AND (", x, ".metric_step > ", a, ".metric_step OR (",
				x, ".metric_step = ", a, ".metric_step AND (",
				// A value beats no value (metric_value is nullable; another
				// writer may leave it NULL), and NULL = NULL is a tie.
				"(", x, ".metric_value IS NOT NULL AND ", a, ".metric_value IS NULL) OR ",
				x, ".metric_value", better, a, ".metric_value OR (",
				"(", x, ".metric_value = ", a, ".metric_value OR (", x, ".metric_value IS NULL AND ", a, ".metric_value IS NULL)) AND ",
				x, ".run_id < ", a, ".run_id)))))))")
			order = append(order, "CASE WHEN "+a+".metric_value IS NULL THEN 1 ELSE 0 END", a+".metric_value"+dir)
			continue
		}
		col := loggedModelColumn(ob.Field)
		// NULLs last in both directions, as upstream's CASE does (the
		// databases disagree on where NULL sorts by default).
		order = append(order, "CASE WHEN "+col+" IS NULL THEN 1 ELSE 0 END", col+dir)
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
	metricFilter := false
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
			metricFilter = true
			s.exists(false, "logged_model_metrics", "model_id", "logged_models.model_id", func(a string) {
				s.w(" AND ")
				s.keyEq(a+".metric_name", c.Key)
				s.w(" AND ")
				s.numCmp(a+".metric_value", c.Op, c.Value, true)
				if len(q.Datasets) > 0 {
					s.w(" AND ")
					s.datasetsCond(a, q.Datasets)
				}
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
	if len(q.Datasets) > 0 && !metricFilter {
		// Upstream: datasets without a metric comparison keep the models
		// with any metric logged on one of the datasets.
		s.w(" AND ")
		s.exists(false, "logged_model_metrics", "model_id", "logged_models.model_id", func(a string) {
			s.w(" AND ")
			s.datasetsCond(a, q.Datasets)
		})
	}
	s.w(" ORDER BY ", strings.Join(order, ", "))
	s.w(fmt.Sprintf(" LIMIT %d OFFSET %d", q.Limit, q.Offset))
	return s.b.String(), s.args
}
