package tracing

import (
	"context"
	"database/sql"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/schema"
	"github.com/ferryml/ferry/wire"
)

// The queryTraceMetrics store: one GROUP BY statement for COUNT / SUM /
// AVG per group (dimensions, time bucket first), over trace_info t joined
// to the view's rows as upstream's query_metrics does. Percentiles are
// linear interpolation (numpy's default, = PostgreSQL percentile_cont),
// the same on all three databases: window functions number each group's
// values and the statement returns only the two values around each
// percentile's rank, which Go interpolates (metricStatement).

// traceNameTag is the trace tag holding the trace's name (upstream's
// TraceTagKey.TRACE_NAME), the trace_name dimension.
const traceNameTag = "mlflow.traceName"

// metricDataPoint is one MetricDataPoint of the answer.
type metricDataPoint struct {
	MetricName string             `json:"metric_name"`
	Dimensions map[string]string  `json:"dimensions,omitempty"`
	Values     map[string]float64 `json:"values,omitempty"`
}

// metricSQL is the FROM … WHERE part of a metrics query, its bind
// arguments in text order, and the expressions the SELECTs use.
type metricSQL struct {
	from  string
	args  []any
	dims  []string // expressions, time bucket first
	names []string // dimension names, parallel to dims
	value string   // the expression aggregated
}

// intDiv is integer division (MySQL's / is decimal).
func intDiv(d schema.Dialect, a, b string) string {
	if d == schema.MySQL {
		return "(" + a + " DIV " + b + ")"
	}
	return "(" + a + " / " + b + ")"
}

// jsonText extracts a top-level string member of a JSON column as text.
func jsonText(d schema.Dialect, col, key string) string {
	switch d {
	case schema.Postgres:
		return "(" + col + "::json ->> '" + key + "')"
	case schema.MySQL:
		return "JSON_UNQUOTE(JSON_EXTRACT(" + col + ", '$.\"" + key + "\"'))"
	}
	return "json_extract(" + col + ", '$.\"" + key + "\"')"
}

// buildMetricSQL renders the shared part of both statements. Every SQL
// word is a constant here; names, keys and values are bind arguments, the
// bucket size is a validated integer.
func buildMetricSQL(d schema.Dialect, q *metricQuery) metricSQL {
	var m metricSQL
	var b strings.Builder
	k := d.Quote("key")
	arg := func(v any) { b.WriteString("?"); m.args = append(m.args, v) }
	b.WriteString("trace_info t")
	var ts string
	switch q.view {
	case viewTraces:
		ts = "t.timestamp_ms"
	case viewSpans:
		b.WriteString(" JOIN spans s ON s.trace_id = t.request_id")
		ts = intDiv(d, "s.start_time_unix_nano", "1000000")
	case viewAssessments:
		b.WriteString(" JOIN assessments a ON a.trace_id = t.request_id")
		ts = "a.created_timestamp"
	}
	switch {
	case q.view == viewTraces && strings.HasSuffix(q.metric, "_tokens"):
		b.WriteString(" JOIN trace_metrics m ON m.request_id = t.request_id AND m." + k + " = ")
		arg(q.metric)
	case q.view == viewSpans && strings.HasSuffix(q.metric, "_cost"):
		b.WriteString(" JOIN span_metrics sm ON sm.trace_id = s.trace_id AND sm.span_id = s.span_id AND sm." + k + " = ")
		arg(q.metric)
	}
	if q.interval > 0 {
		size := strconv.FormatInt(q.interval*1000, 10)
		// floor(ts / size) * size for negative times too (SQL's % keeps
		// the dividend's sign).
		m.dims = append(m.dims, "("+ts+" - (("+ts+" % "+size+") + "+size+") % "+size+")")
		m.names = append(m.names, "time_bucket")
	}
	for _, dim := range q.dims {
		var e string
		switch dim {
		case "trace_name":
			b.WriteString(" JOIN trace_tags tn ON tn.request_id = t.request_id AND tn." + k + " = ")
			arg(traceNameTag)
			e = "tn.value"
		case "trace_status":
			e = "t.status"
		case "span_name":
			e = "s.name"
		case "span_type":
			e = "s.type"
		case "span_status":
			e = "s.status"
		case "span_model_name":
			e = jsonText(d, "s.dimension_attributes", "mlflow.llm.model")
		case "span_model_provider":
			e = jsonText(d, "s.dimension_attributes", "mlflow.llm.provider")
		case "assessment_name":
			e = "a.name"
		case "assessment_value":
			e = "a.value"
		default:
			panic("tracing: unchecked metric dimension " + dim)
		}
		m.dims = append(m.dims, e)
		m.names = append(m.names, dim)
	}
	b.WriteString(" WHERE t.experiment_id IN " + placeholders(len(q.exps)))
	for _, id := range q.exps {
		m.args = append(m.args, id)
	}
	if q.start != nil {
		b.WriteString(" AND " + ts + " >= ")
		arg(*q.start)
	}
	if q.end != nil {
		b.WriteString(" AND " + ts + " <= ")
		arg(*q.end)
	}
	for _, f := range q.filters {
		b.WriteString(" AND ")
		switch f.view + "." + f.entity {
		case "trace.status":
			b.WriteString("t.status = ")
			arg(f.value)
		case "trace.tag", "trace.metadata":
			table := "trace_tags"
			if f.entity == "metadata" {
				table = "trace_request_metadata"
			}
			b.WriteString("EXISTS (SELECT 1 FROM " + table + " f WHERE f.request_id = t.request_id AND f." + k + " = ")
			arg(f.key)
			b.WriteString(" AND f.value = ")
			arg(f.value)
			b.WriteString(")")
		case "span.name", "span.status", "span.type":
			b.WriteString("s." + f.entity + " = ")
			arg(f.value)
		case "assessment.name":
			b.WriteString("a.name = ")
			arg(f.value)
		case "assessment.type":
			b.WriteString("a.assessment_type = ")
			arg(f.value)
		default:
			panic("tracing: unchecked metric filter " + f.view + "." + f.entity)
		}
	}
	m.from = b.String()
	m.value = metricValue(d, q)
	return m
}

// metricValue is the aggregated expression of the query's metric.
func metricValue(d schema.Dialect, q *metricQuery) string {
	switch q.view + "/" + q.metric {
	case viewTraces + "/trace_count":
		return "t.request_id"
	case viewTraces + "/latency":
		return "t.execution_time_ms"
	case viewSpans + "/span_count":
		return "s.span_id"
	case viewSpans + "/latency":
		return intDiv(d, "(s.end_time_unix_nano - s.start_time_unix_nano)", "1000000")
	case viewAssessments + "/assessment_count":
		return "a.assessment_id"
	case viewAssessments + "/assessment_value":
		// JSON true / "yes" → 1, false / "no" → 0, numbers as numbers,
		// anything else (null, strings, lists, objects) NULL — upstream's
		// _get_assessment_numeric_value_column.
		num := "CAST(a.value AS REAL)"
		switch d {
		case schema.Postgres:
			num = "CAST(a.value AS DOUBLE PRECISION)"
		case schema.MySQL:
			num = "CAST(a.value AS DOUBLE)"
		}
		return "(CASE WHEN a.value IN ('true', '\"yes\"') THEN 1.0 WHEN a.value IN ('false', '\"no\"') THEN 0.0 " +
			"WHEN a.value = 'null' THEN NULL WHEN SUBSTR(a.value, 1, 1) IN ('\"', '[', '{') THEN NULL ELSE " + num + " END)"
	}
	if q.view == viewTraces {
		return "m.value" // token usage
	}
	return "sm.value" // span cost
}

// metricGroup is one group (data point) of the answer.
type metricGroup struct {
	dims   []sql.NullString
	values map[string]float64
}

// metricStatement renders the aggregate statement of one page.
//
// Without a percentile: SELECT dims, COUNT|SUM|AVG(value) … GROUP BY dims
// ORDER BY dims LIMIT max+1 OFFSET offset.
//
// With percentiles, the rows (non-NULL values only: a group without one
// has no value to show) are numbered inside their group by ROW_NUMBER()
// OVER (PARTITION BY dims ORDER BY value) next to the group's COUNT; the
// outer GROUP BY picks, per percentile p, the values at 0-based ranks
// j = floor(p·(n-1)/100) and j+1 (the CASE conditions are that floor
// without a FLOOR function, which SQLite may lack), and Go interpolates.
// The database partitions exactly as it groups (its collation decides
// what is one group), so a group's ranks and its COUNT agree.
// Percentiles are inlined as numeric literals (validated floats): a
// PostgreSQL placeholder there would be typed bigint.
func metricStatement(q *metricQuery, m metricSQL) (string, []any, bool) {
	hasPct := false
	for _, g := range q.aggs {
		hasPct = hasPct || g.typ == aggPercentile
	}
	page := " LIMIT " + strconv.FormatInt(q.max+1, 10) + " OFFSET " + strconv.FormatInt(q.offset, 10)
	if !hasPct {
		sel := append([]string{}, m.dims...)
		for _, g := range q.aggs {
			sel = append(sel, g.typ+"("+m.value+")")
		}
		stmt := "SELECT " + strings.Join(sel, ", ") + " FROM " + m.from
		if len(m.dims) > 0 {
			dims := strings.Join(m.dims, ", ")
			stmt += " GROUP BY " + dims + " ORDER BY " + dims
		}
		return stmt + page, m.args, false
	}
	inner := make([]string, 0, len(m.dims)+3)
	outer := make([]string, 0, len(m.dims)+2*len(q.aggs)+1)
	aliases := make([]string, 0, len(m.dims))
	for i, d := range m.dims {
		a := "x.d" + strconv.Itoa(i)
		inner = append(inner, d+" AS d"+strconv.Itoa(i))
		aliases = append(aliases, a)
	}
	over := "OVER (ORDER BY " + m.value + ")"
	count := "COUNT(" + m.value + ") OVER ()"
	if len(m.dims) > 0 {
		part := "PARTITION BY " + strings.Join(m.dims, ", ")
		over = "OVER (" + part + " ORDER BY " + m.value + ")"
		count = "COUNT(" + m.value + ") OVER (" + part + ")"
	}
	inner = append(inner, m.value+" AS v", "ROW_NUMBER() "+over+" AS rn", count+" AS cnt")
	outer = append(outer, aliases...)
	for _, g := range q.aggs {
		if g.typ != aggPercentile {
			outer = append(outer, g.typ+"(x.v)")
			continue
		}
		p := strconv.FormatFloat(g.pct, 'f', -1, 64)
		pos := p + " * (x.cnt - 1)"
		outer = append(outer,
			"MAX(CASE WHEN (x.rn - 1) * 100 <= "+pos+" AND "+pos+" < x.rn * 100 THEN x.v END)",
			"MAX(CASE WHEN (x.rn - 2) * 100 <= "+pos+" AND "+pos+" < (x.rn - 1) * 100 THEN x.v END)")
	}
	outer = append(outer, "MAX(x.cnt)")
	stmt := "SELECT " + strings.Join(outer, ", ") + " FROM (SELECT " + strings.Join(inner, ", ") +
		" FROM " + m.from + " AND " + m.value + " IS NOT NULL) x"
	if len(aliases) > 0 {
		dims := strings.Join(aliases, ", ")
		stmt += " GROUP BY " + dims + " ORDER BY " + dims
	}
	return stmt + page, m.args, true
}

// runMetricQuery answers one page of data points in one read transaction.
func (a *API) runMetricQuery(ctx context.Context, q *metricQuery) ([]metricDataPoint, string, error) {
	var groups []*metricGroup
	next := ""
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		m := buildMetricSQL(tx.Dialect(), q)
		stmt, args, hasPct := metricStatement(q, m)
		err := tx.Each(ctx, stmt, args, func(rows *sql.Rows) error {
			g := &metricGroup{dims: make([]sql.NullString, len(m.dims)), values: map[string]float64{}}
			dst := make([]any, 0, len(m.dims)+2*len(q.aggs)+1)
			for i := range g.dims {
				dst = append(dst, &g.dims[i])
			}
			type pctCols struct{ lo, hi sql.NullFloat64 }
			nums := make([]sql.NullFloat64, len(q.aggs))
			pcts := make([]pctCols, len(q.aggs))
			for i, agg := range q.aggs {
				if agg.typ == aggPercentile {
					dst = append(dst, &pcts[i].lo, &pcts[i].hi)
				} else {
					dst = append(dst, &nums[i])
				}
			}
			var n sql.NullInt64
			if hasPct {
				dst = append(dst, &n)
			}
			if err := rows.Scan(dst...); err != nil {
				return err
			}
			for i, agg := range q.aggs {
				switch {
				case agg.typ != aggPercentile:
					if nums[i].Valid {
						g.values[agg.label()] = nums[i].Float64
					}
				case pcts[i].lo.Valid && n.Valid && n.Int64 > 0:
					// numpy's linear interpolation: y[j] + frac·(y[j+1] - y[j]).
					pos := agg.pct * float64(n.Int64-1) / 100
					v := pcts[i].lo.Float64
					if frac := pos - math.Floor(pos); frac > 0 && pcts[i].hi.Valid {
						v += frac * (pcts[i].hi.Float64 - v)
					}
					g.values[agg.label()] = v
				}
			}
			groups = append(groups, g)
			return nil
		})
		if err != nil {
			return err
		}
		if int64(len(groups)) > q.max {
			groups = groups[:q.max]
			next = wire.PageToken(q.offset + q.max)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	names := buildNames(q)
	out := make([]metricDataPoint, 0, len(groups))
	for _, g := range groups {
		// Upstream skips a point whose aggregations are all NULL.
		if len(g.values) == 0 {
			continue
		}
		p := metricDataPoint{MetricName: q.metric, Values: g.values}
		for i, dv := range g.dims {
			if !dv.Valid {
				continue // a NULL dimension value (a span without type) is left out
			}
			if p.Dimensions == nil {
				p.Dimensions = map[string]string{}
			}
			v := dv.String
			if names[i] == "time_bucket" {
				v = bucketLabel(v)
			}
			p.Dimensions[names[i]] = v
		}
		out = append(out, p)
	}
	return out, next, nil
}

func buildNames(q *metricQuery) []string {
	var names []string
	if q.interval > 0 {
		names = append(names, "time_bucket")
	}
	return append(names, q.dims...)
}

// bucketLabel renders a bucket start (ms) as upstream's
// datetime.fromtimestamp(ms/1000, tz=utc).isoformat().
func bucketLabel(ms string) string {
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		if f, ferr := strconv.ParseFloat(ms, 64); ferr == nil {
			n = int64(f)
		}
	}
	t := time.UnixMilli(n).UTC()
	if t.Nanosecond() != 0 {
		return t.Format("2006-01-02T15:04:05.000000") + "+00:00"
	}
	return t.Format("2006-01-02T15:04:05") + "+00:00"
}
