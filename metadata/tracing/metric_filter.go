package tracing

import (
	"strings"

	"github.com/ferryml/ferry/wire"
)

// metricFilter is one queryTraceMetrics filter: an exact match
// <view>.<entity>[.<key>] = '<value>' (upstream's
// SearchTraceMetricsUtils). Views and entities:
//
//	trace.status, trace.tag.<key>, trace.metadata.<key>
//	span.name, span.status, span.type          (SPANS view only)
//	assessment.name, assessment.type           (ASSESSMENTS view only)
type metricFilter struct {
	view, entity, key, value string
}

var metricFilterEntities = map[string][]string{
	"trace":      {"status", "tag", "metadata"},
	"span":       {"name", "status", "type"},
	"assessment": {"name", "type"},
}

// parseMetricFilter parses one filter string. Upstream's wording of these
// errors is not in the stored sources; Ferry's says what is wrong.
func parseMetricFilter(s string) (metricFilter, *wire.Error) {
	bad := func(why string) (metricFilter, *wire.Error) {
		return metricFilter{}, wire.Errorf(wire.InvalidParameterValue, "Invalid filter '%s': %s", s, why)
	}
	if len(s) > 1000 {
		return bad("longer than 1000 characters")
	}
	ident, value, ok := strings.Cut(s, "=")
	if !ok {
		return bad("expected <view>.<field> = '<value>' (only '=' is supported)")
	}
	ident = strings.TrimSpace(ident)
	if strings.ContainsAny(ident, "!<>") || strings.HasSuffix(ident, " LIKE") {
		return bad("only '=' is supported")
	}
	value = strings.TrimSpace(value)
	if len(value) < 2 || (value[0] != '\'' && value[0] != '"') || value[len(value)-1] != value[0] ||
		strings.ContainsRune(value[1:len(value)-1], rune(value[0])) {
		return bad("the value must be one quoted string")
	}
	f := metricFilter{value: value[1 : len(value)-1]}
	view, rest, ok := strings.Cut(ident, ".")
	entities, known := metricFilterEntities[view]
	if !ok || !known {
		return bad("the field must start with 'trace.', 'span.' or 'assessment.'")
	}
	f.view = view
	f.entity, f.key, _ = strings.Cut(rest, ".")
	if !contains(entities, f.entity) {
		return bad("unknown field '" + f.entity + "' for '" + view + "'; valid fields are " + pyStrList(entities))
	}
	keyed := view == "trace" && (f.entity == "tag" || f.entity == "metadata")
	f.key = strings.Trim(f.key, "`")
	if keyed && f.key == "" {
		return bad("'" + view + "." + f.entity + "' needs a key: " + view + "." + f.entity + ".<key>")
	}
	if !keyed && f.key != "" {
		return bad("'" + view + "." + f.entity + "' takes no key")
	}
	return f, nil
}
