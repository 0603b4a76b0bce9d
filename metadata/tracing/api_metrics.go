package tracing

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// queryTraceMetrics (MLflow 3.11 QueryTraceMetrics, spec §2.6): the
// experiment overview charts' aggregates. Upstream's
// sql_trace_metrics_utils decides what is valid; the tables below are its
// TRACES / SPANS / ASSESSMENTS configurations.

// Metric view types (proto MetricViewType names).
const (
	viewTraces      = "TRACES"
	viewSpans       = "SPANS"
	viewAssessments = "ASSESSMENTS"
)

// Aggregation types (proto AggregationType names).
const (
	aggCount      = "COUNT"
	aggSum        = "SUM"
	aggAvg        = "AVG"
	aggMin        = "MIN"
	aggMax        = "MAX"
	aggPercentile = "PERCENTILE"
)

var aggTypes = []string{aggCount, aggSum, aggAvg, aggMin, aggMax, aggPercentile}

// metricConfig is one metric of a view: its aggregations and dimensions.
type metricConfig struct {
	aggs []string
	dims []string
}

var (
	numericAggs = []string{aggSum, aggAvg, aggPercentile}
	latencyAggs = []string{aggAvg, aggPercentile}
	modelDims   = []string{"span_model_name", "span_model_provider"}
)

// metricViews lists, per view, the metrics in upstream's order (error
// messages list them so).
var metricViews = map[string][]string{
	viewTraces:      {"trace_count", "latency", "input_tokens", "output_tokens", "total_tokens"},
	viewSpans:       {"span_count", "latency", "input_cost", "output_cost", "total_cost"},
	viewAssessments: {"assessment_count", "assessment_value"},
}

var metricConfigs = map[string]map[string]metricConfig{
	viewTraces: {
		"trace_count":   {[]string{aggCount}, []string{"trace_name", "trace_status"}},
		"latency":       {latencyAggs, []string{"trace_name"}},
		"input_tokens":  {numericAggs, []string{"trace_name"}},
		"output_tokens": {numericAggs, []string{"trace_name"}},
		"total_tokens":  {numericAggs, []string{"trace_name"}},
	},
	viewSpans: {
		"span_count":  {[]string{aggCount}, append([]string{"span_name", "span_type", "span_status"}, modelDims...)},
		"latency":     {latencyAggs, []string{"span_name", "span_status"}},
		"input_cost":  {numericAggs, modelDims},
		"output_cost": {numericAggs, modelDims},
		"total_cost":  {numericAggs, modelDims},
	},
	viewAssessments: {
		"assessment_count": {[]string{aggCount}, []string{"assessment_name", "assessment_value"}},
		"assessment_value": {latencyAggs, []string{"assessment_name"}},
	},
}

// Bounds of a metrics query.
const (
	defaultMetricResults = 1000
	// maxMetricResults bounds one page (data points and the per-group
	// percentile state); upstream sets no maximum.
	maxMetricResults = 10000
	maxMetricFilters = 100
)

// aggregation is one requested aggregation.
type aggregation struct {
	typ string
	pct float64 // PERCENTILE only, 0–100
}

// label is the key of the aggregation in a data point's values, as
// upstream's str(MetricAggregation): the type name, or P<percentile as a
// Python float> ("P50.0", "P99.9").
func (g aggregation) label() string {
	if g.typ != aggPercentile {
		return g.typ
	}
	return "P" + wire.PyFloat(g.pct)
}

// metricQuery is a validated queryTraceMetrics request.
type metricQuery struct {
	exps         []int64
	view, metric string
	aggs         []aggregation
	dims         []string
	filters      []metricFilter
	interval     int64 // seconds; 0 = no time buckets
	start, end   *int64
	max, offset  int64
}

func (a *API) queryTraceMetrics(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	q, werr := readMetricQuery(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	points, next, err := a.runMetricQuery(c.UserContext(), q)
	if err != nil {
		return a.send(c, nil, err)
	}
	body := fiber.Map{}
	if len(points) > 0 {
		body["data_points"] = points
	}
	if next != "" {
		body["next_page_token"] = next
	}
	return a.send(c, body, nil)
}

func readMetricQuery(r *wire.Request) (*metricQuery, *wire.Error) {
	q := &metricQuery{max: defaultMetricResults}
	ids, werr := r.Strs("experiment_ids")
	if werr != nil {
		return nil, werr
	}
	if len(ids) == 0 {
		return nil, wire.MissingParam("experiment_ids")
	}
	if q.exps, werr = experimentIDs(ids); werr != nil {
		return nil, werr
	}
	if q.view, werr = r.ReqStr("view_type"); werr != nil {
		return nil, werr
	}
	if q.metric, werr = r.ReqStr("metric_name"); werr != nil {
		return nil, werr
	}
	if q.aggs, werr = readAggregations(r); werr != nil {
		return nil, werr
	}
	if q.dims, werr = r.Strs("dimensions"); werr != nil {
		return nil, werr
	}
	filters, werr := r.Strs("filters")
	if werr != nil {
		return nil, werr
	}
	if len(filters) > maxMetricFilters {
		return nil, wire.Errorf(wire.InvalidParameterValue, "Too many filters: %d (at most %d).", len(filters), maxMetricFilters)
	}
	for _, f := range filters {
		mf, werr := parseMetricFilter(f)
		if werr != nil {
			return nil, werr
		}
		q.filters = append(q.filters, mf)
	}
	if werr := q.validate(); werr != nil {
		return nil, werr
	}
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"start_time_ms", &q.start}, {"end_time_ms", &q.end}} {
		n, ok, werr := r.Int(p.name)
		if werr != nil {
			return nil, werr
		}
		if ok {
			*p.dst = &n
		}
	}
	n, ok, werr := r.Int("time_interval_seconds")
	if werr != nil {
		return nil, werr
	}
	if ok && n != 0 {
		if n < 0 || n > 1<<40 {
			return nil, wire.Errorf(wire.InvalidParameterValue, "time_interval_seconds must be a positive number of seconds, got %d", n)
		}
		if q.start == nil || q.end == nil {
			return nil, wire.Errorf(wire.InvalidParameterValue, "start_time_ms and end_time_ms are required if time_interval_seconds is set")
		}
		q.interval = n
	}
	if n, ok, werr := r.Int("max_results"); werr != nil {
		return nil, werr
	} else if ok {
		if n < 1 || n > maxMetricResults {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Invalid value %d for parameter 'max_results' supplied. It must be between 1 and %d.", n, maxMetricResults)
		}
		q.max = n
	}
	token, _, werr := r.Str("page_token")
	if werr != nil {
		return nil, werr
	}
	if q.offset, werr = wire.ParsePageToken(token); werr != nil {
		return nil, werr
	}
	return q, nil
}

// readAggregations reads aggregations* [{aggregation_type, percentile_value}].
func readAggregations(r *wire.Request) ([]aggregation, *wire.Error) {
	list, werr := r.Objects("aggregations")
	if werr != nil {
		return nil, werr
	}
	if len(list) == 0 {
		return nil, wire.MissingParam("aggregations")
	}
	if len(list) > len(aggTypes)*10 {
		return nil, wire.Errorf(wire.InvalidParameterValue, "Too many aggregations: %d.", len(list))
	}
	out := make([]aggregation, 0, len(list))
	for i, m := range list {
		path := fmt.Sprintf("aggregations[%d]", i)
		typ, _, werr := strField(m, path, "aggregation_type")
		if werr != nil {
			return nil, werr
		}
		if typ == "" {
			return nil, wire.MissingParam(path + ".aggregation_type")
		}
		if !contains(aggTypes, typ) {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Invalid aggregation_type '%s'. Valid values are %s", typ, pyStrList(aggTypes))
		}
		g := aggregation{typ: typ}
		pv, has := m["percentile_value"]
		if has && pv != nil {
			f, ok := pv.(float64)
			if !ok {
				return nil, wire.InvalidType(path+".percentile_value", pv)
			}
			g.pct = f
		}
		if typ == aggPercentile {
			if !has || pv == nil {
				return nil, wire.Errorf(wire.InvalidParameterValue, "Percentile value is required for PERCENTILE aggregation")
			}
			if g.pct < 0 || g.pct > 100 {
				return nil, wire.Errorf(wire.InvalidParameterValue, "Percentile value must be between 0 and 100, got %s", wire.PyFloat(g.pct))
			}
		} else if has && pv != nil {
			return nil, wire.Errorf(wire.InvalidParameterValue, "Percentile value is only allowed for PERCENTILE aggregation")
		}
		out = append(out, g)
	}
	return out, nil
}

// validate is upstream's validate_query_trace_metrics_params: the view,
// the metric of the view, its aggregations and dimensions.
func (q *metricQuery) validate() *wire.Error {
	metrics, ok := metricViews[q.view]
	if !ok {
		return wire.Errorf(wire.InvalidParameterValue, "view_type must be one of %s, got '%s'", pyStrList([]string{viewTraces, viewSpans, viewAssessments}), q.view)
	}
	cfg, ok := metricConfigs[q.view][q.metric]
	if !ok {
		return wire.Errorf(wire.InvalidParameterValue, "metric_name must be one of %s, got '%s'", pyStrList(metrics), q.metric)
	}
	var badAggs []string
	for _, g := range q.aggs {
		if !contains(cfg.aggs, g.typ) && !contains(badAggs, g.typ) {
			badAggs = append(badAggs, g.typ)
		}
	}
	if len(badAggs) > 0 {
		return wire.Errorf(wire.InvalidParameterValue, "Found invalid aggregation_type(s): %s. Supported aggregation types: %s", pyStrList(sorted(badAggs)), pyStrList(sorted(cfg.aggs)))
	}
	var badDims []string
	for _, d := range q.dims {
		if !contains(cfg.dims, d) && !contains(badDims, d) {
			badDims = append(badDims, d)
		}
	}
	if len(badDims) > 0 {
		return wire.Errorf(wire.InvalidParameterValue, "Found invalid dimension(s): %s. Supported dimensions: %s", pyStrList(sorted(badDims)), pyStrList(sorted(cfg.dims)))
	}
	for _, f := range q.filters {
		if f.view == "span" && q.view != viewSpans {
			return wire.Errorf(wire.InvalidParameterValue, "Filtering by span is only supported for %s view type, got %s", pyEnum(viewSpans), pyEnum(q.view))
		}
		if f.view == "assessment" && q.view != viewAssessments {
			return wire.Errorf(wire.InvalidParameterValue, "Filtering by assessment is only supported for %s view type, got %s", pyEnum(viewAssessments), pyEnum(q.view))
		}
	}
	return nil
}

// pyEnum is how upstream's f-strings show a MetricViewType member.
func pyEnum(v string) string { return "MetricViewType." + v }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sorted(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

// pyStrList is Python's repr of a list of str: ['a', 'b'].
func pyStrList(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = "'" + s + "'"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
