package tracking

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// The run routes of spec tracking-api.md §2.2 and §5.2–§5.6.

const (
	maxParamValueLen   = 6000
	maxTagValueLen     = 8000
	maxMetricsPerBatch = 1000
	maxParamsPerBatch  = 100
	maxTagsPerBatch    = 100
	maxEntitiesInBatch = 1000
)

// runIDPattern is upstream's _RUN_ID_REGEX, ^[a-zA-Z0-9][\w\-]{0,255}$
// (log-batch checks it). The {0,255} bound is checked by counting runes:
// Go's regexp expands a counted repeat of a Unicode class into 255 copies,
// which cost ~10 MB at start-up and 5 MB for the life of the process.
var runIDPattern = runIDMatcher{re: regexp.MustCompile(`^[a-zA-Z0-9][\p{L}\p{N}_\-]*$`)}

// runIDMatcher is a length-bounded regexp match.
type runIDMatcher struct{ re *regexp.Regexp }

// MatchString reports whether s is a valid run id.
func (m runIDMatcher) MatchString(s string) bool {
	return utf8.RuneCountInString(s) <= 256 && m.re.MatchString(s)
}

// truncateLongValues is MLFLOW_TRUNCATE_LONG_VALUES (default true): long
// param and run-tag values are cut to the limit instead of refused.
func truncateLongValues() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("MLFLOW_TRUNCATE_LONG_VALUES")))
	return v != "false" && v != "0"
}

// limitValue applies a param/tag value limit: truncation (logged) or
// upstream's error.
func (a *API) limitValue(name, value string, limit int) (string, *wire.Error) {
	if runeLen(value) <= limit {
		return value, nil
	}
	if !truncateLongValues() {
		return "", exceedsLength(name, limit)
	}
	a.log.Warn(name+" is truncated to meet the length limit", "chars", runeLen(value), "limit", limit)
	return truncateRunes(value, limit), nil
}

// validateParam is upstream's _validate_param: key rules against
// <path>key, lengths as "Param key" and "Param value" (truncated).
func (a *API) validateParam(path string, kv KeyValue) (KeyValue, *wire.Error) {
	if err := validateEntityKey(path+"key", "Param key", kv.Key); err != nil {
		return kv, err
	}
	v, err := a.limitValue("Param value", kv.Value, maxParamValueLen)
	kv.Value = v
	return kv, err
}

// validateTag is upstream's _validate_tag: lengths reported as
// <path>key / <path>value, the value truncated.
func (a *API) validateTag(path string, kv KeyValue) (KeyValue, *wire.Error) {
	if err := validateEntityKey(path+"key", path+"key", kv.Key); err != nil {
		return kv, err
	}
	v, err := a.limitValue(path+"value", kv.Value, maxTagValueLen)
	kv.Value = v
	return kv, err
}

// validateMetric is upstream's _validate_metric (after the handler's
// required/type checks).
func validateMetric(path string, m metricIn) *wire.Error {
	if err := validateEntityKey(path+"name", "Metric name", m.Key); err != nil {
		return err
	}
	if m.ModelID != "" {
		for _, ck := range []struct {
			f, v string
			n    int
		}{{"model_id", m.ModelID, 36}, {"dataset_name", m.DatasetName, 500}, {"dataset_digest", m.DatasetDigest, 36}} {
			if werr := checkLen(path+ck.f, ck.v, ck.n); werr != nil {
				return werr
			}
		}
	}
	if m.Timestamp < 0 {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter '%stimestamp' supplied: metric %s (value=%s). Timestamp must be a nonnegative long (64-bit integer) ",
			m.Timestamp, path, wire.PyRepr(m.Key), wire.PyFloat(m.Value))
	}
	return nil
}

// readMetric reads one metric message (log-metric body or a log-batch
// item): key, value and timestamp required, step defaults to 0.
func readMetric(p *params) (metricIn, *wire.Error) {
	var m metricIn
	var werr *wire.Error
	if m.Key, werr = p.reqStr("key"); werr != nil {
		return m, werr
	}
	if r := p.raw("value"); r == nil || string(r) == `""` {
		return m, wire.MissingParam(p.path("value"))
	}
	if m.Value, _, werr = p.floatField("value"); werr != nil {
		return m, werr
	}
	if r := p.raw("timestamp"); r == nil || string(r) == `""` {
		return m, wire.MissingParam(p.path("timestamp"))
	}
	if m.Timestamp, _, werr = p.int64Field("timestamp"); werr != nil {
		return m, werr
	}
	if m.Step, _, werr = p.int64Field("step"); werr != nil {
		return m, werr
	}
	if m.ModelID, werr = p.str("model_id"); werr != nil {
		return m, werr
	}
	if m.DatasetName, werr = p.str("dataset_name"); werr != nil {
		return m, werr
	}
	if m.DatasetDigest, werr = p.str("dataset_digest"); werr != nil {
		return m, werr
	}
	if _, werr = p.str("run_id"); werr != nil {
		return m, werr
	}
	return m, nil
}

// createRun is POST runs/create.
func (a *API) createRun(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expStr, werr := p.str("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if expStr == "" {
		expStr = "0"
	}
	expID, werr := parseExperimentID("experiment_id", expStr)
	if werr != nil {
		return wire.Send(c, werr)
	}
	userID, werr := p.str("user_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	start, _, werr := p.int64Field("start_time")
	if werr != nil {
		return wire.Send(c, werr)
	}
	runName, werr := p.str("run_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	tags, werr := p.keyValues("tags")
	if werr != nil {
		return wire.Send(c, werr)
	}
	for i := range tags {
		if tags[i], werr = a.validateTag(fieldf("tags[%d].", i), tags[i]); werr != nil {
			return wire.Send(c, werr)
		}
	}
	tags = dedupeTags(tags)
	if werr := checkLen("user_id", userID, 256); werr != nil {
		return wire.Send(c, werr)
	}
	nameTag := ""
	for _, t := range tags {
		if t.Key == runTagName {
			nameTag = t.Value
		}
	}
	if runName != "" && nameTag != "" && runName != nameTag {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='%s', mlflow.runName='%s').", runName, nameTag))
	}
	if runName == "" {
		runName = nameTag
	}
	if werr := checkLen("run_name", runName, 250); werr != nil {
		return wire.Send(c, werr)
	}
	if runName == "" {
		runName = generateRunName()
	}
	if nameTag == "" {
		tags = append(tags, KeyValue{Key: runTagName, Value: runName})
	}
	id, err := newRunID()
	if err != nil {
		return a.send(c, nil, err)
	}
	ctx := c.UserContext()
	run, err := a.insertRun(ctx, expID, id, runName, userID, start, tags)
	return a.send(c, fiber.Map{"run": run}, err)
}

// checkLen refuses a value longer than its column (PostgreSQL and MySQL
// would fail the insert; SQLite would store it).
func checkLen(field, v string, limit int) *wire.Error {
	if runeLen(v) > limit {
		return exceedsLength(field, limit)
	}
	return nil
}

// getRun is GET runs/get.
func (a *API) getRun(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	run, err := a.runByID(ctx, id)
	return a.send(c, fiber.Map{"run": run}, err)
}

// runStatuses are RunStatus names by enum number.
var runStatuses = map[int64]string{1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}

// readStatus reads a RunStatus enum given by name or number.
func readStatus(p *params, name string) (string, bool, *wire.Error) {
	r := p.raw(name)
	if r == nil {
		return "", false, nil
	}
	if r[0] == '"' {
		s, werr := p.str(name)
		if werr != nil {
			return "", false, werr
		}
		for _, v := range runStatuses {
			if v == s {
				return s, true, nil
			}
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && runStatuses[n] != "" {
			return runStatuses[n], true, nil
		}
		return "", false, wire.Errorf(wire.InvalidParameterValue, "Invalid value %s for parameter '%s' supplied.", wire.ShownValue(r), p.path(name))
	}
	n, _, werr := p.int64Field(name)
	if werr != nil {
		return "", false, werr
	}
	if runStatuses[n] == "" {
		return "", false, wire.Errorf(wire.InvalidParameterValue, "Invalid value %s for parameter '%s' supplied.", wire.ShownValue(r), p.path(name))
	}
	return runStatuses[n], true, nil
}

// updateRun is POST runs/update: only the given fields change; a
// non-empty run_name also rewrites the mlflow.runName tag.
func (a *API) updateRun(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	end, hasEnd, werr := p.int64Field("end_time")
	if werr != nil {
		return wire.Send(c, werr)
	}
	status, hasStatus, werr := readStatus(p, "status")
	if werr != nil {
		return wire.Send(c, werr)
	}
	name, werr := p.str("run_name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if werr := checkLen("run_name", name, 250); werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	info, err := a.updateRunRow(ctx, id, status, hasStatus, end, hasEnd, name)
	return a.send(c, fiber.Map{"run_info": info}, err)
}

// deleteRun is POST runs/delete (no state check, as upstream). It also
// deletes the assessments that name the run as their source run.
func (a *API) deleteRun(c *fiber.Ctx) error { return a.setRunStage(c, "deleted") }

// restoreRun is POST runs/restore.
func (a *API) restoreRun(c *fiber.Ctx) error { return a.setRunStage(c, "active") }

func (a *API) setRunStage(c *fiber.Ctx, stage string) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(false)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.moveRun(ctx, id, stage)
	return a.send(c, fiber.Map{}, err)
}

// setTag is POST runs/set-tag.
func (a *API) setTag(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	value, werr := p.str("value")
	if werr != nil {
		return wire.Send(c, werr)
	}
	tag, werr := a.validateTag("", KeyValue{Key: key, Value: value})
	if werr != nil {
		return wire.Send(c, werr)
	}
	if tag.Key == runTagName {
		if werr := checkLen("value", tag.Value, 250); werr != nil {
			return wire.Send(c, werr)
		}
	}
	ctx := c.UserContext()
	err := a.setRunTag(ctx, id, tag)
	return a.send(c, fiber.Map{}, err)
}

// deleteTag is POST runs/delete-tag.
func (a *API) deleteTag(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(false)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.deleteRunTag(ctx, id, key)
	return a.send(c, fiber.Map{}, err)
}

// logParam is POST runs/log-parameter.
func (a *API) logParam(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	value, werr := p.str("value")
	if werr != nil {
		return wire.Send(c, werr)
	}
	param, werr := a.validateParam("", KeyValue{Key: key, Value: value})
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.logRunParam(ctx, id, param)
	return a.send(c, fiber.Map{}, err)
}

// logMetric is POST runs/log-metric.
func (a *API) logMetric(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	m, werr := readMetric(p)
	if werr != nil {
		return wire.Send(c, werr)
	}
	if werr := validateMetric("", m); werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.logRunMetric(ctx, id, m)
	return a.send(c, fiber.Map{}, err)
}

func batchLimit(entity string, limit, n int) *wire.Error {
	if n <= limit {
		return nil
	}
	return wire.Errorf(wire.InvalidParameterValue,
		"A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.",
		limit, entity, n, entity, entity)
}

// logBatch is POST runs/log-batch. Validation runs first (items, then
// counts, then duplicate param keys, spec §5.6); the writes (params,
// metrics, tags) then share one transaction, so a failure leaves nothing
// behind.
func (a *API) logBatch(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(false)
	if werr != nil {
		return wire.Send(c, werr)
	}
	mobjs, werr := p.objects("metrics")
	if werr != nil {
		return wire.Send(c, werr)
	}
	metrics := make([]metricIn, len(mobjs))
	for i, o := range mobjs {
		if metrics[i], werr = readMetric(o); werr != nil {
			return wire.Send(c, werr)
		}
	}
	ps, werr := p.keyValues("params")
	if werr != nil {
		return wire.Send(c, werr)
	}
	tags, werr := p.keyValues("tags")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !runIDPattern.MatchString(id) {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Invalid value %s for parameter 'run_id' supplied.", wire.PyJSON(id)))
	}
	for i, m := range metrics {
		if werr := validateMetric(fieldf("metrics[%d].", i), m); werr != nil {
			return wire.Send(c, werr)
		}
	}
	for i := range ps {
		if ps[i], werr = a.validateParam(fieldf("params[%d].", i), ps[i]); werr != nil {
			return wire.Send(c, werr)
		}
	}
	for i := range tags {
		if tags[i], werr = a.validateTag(fieldf("tags[%d].", i), tags[i]); werr != nil {
			return wire.Send(c, werr)
		}
	}
	for _, l := range []struct {
		entity   string
		limit, n int
	}{
		{"metrics", maxMetricsPerBatch, len(metrics)},
		{"params", maxParamsPerBatch, len(ps)},
		{"tags", maxTagsPerBatch, len(tags)},
		{"metrics, params, and tags", maxEntitiesInBatch, len(metrics) + len(ps) + len(tags)},
	} {
		if werr := batchLimit(l.entity, l.limit, l.n); werr != nil {
			return wire.Send(c, werr)
		}
	}
	seen := map[string]bool{}
	var dupes []string
	for _, kv := range ps {
		if seen[kv.Key] {
			dupes = append(dupes, kv.Key)
		}
		seen[kv.Key] = true
	}
	if len(dupes) > 0 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Duplicate parameter keys have been submitted: %s. Please ensure the request contains only one param value per param key.", pyListRepr(dupes)))
	}
	for i, t := range tags {
		if t.Key == runTagName {
			if werr := checkLen(fieldf("tags[%d].value", i), t.Value, 250); werr != nil {
				return wire.Send(c, werr)
			}
		}
	}
	ctx := c.UserContext()
	err := a.logRunBatch(ctx, id, ps, metrics, tags)
	return a.send(c, fiber.Map{}, err)
}

// getMetricHistory is GET metrics/get-history: every value of one metric
// of a run ordered by timestamp, step, value, paged by max_results and an
// offset page token. Absent or 0 max_results means no limit (upstream
// reads it as 0 and returns nothing; its client always sends 25000).
func (a *API) getMetricHistory(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(true)
	if werr != nil {
		return wire.Send(c, werr)
	}
	key, werr := p.reqStr("metric_key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	limit, _, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if limit < 0 || limit > math.MaxInt32 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter 'max_results' supplied. It must be a non-negative 32-bit integer.", limit))
	}
	token, werr := p.str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	offset, werr := wire.ParsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	metrics, next, err := a.metricHistory(ctx, id, key, limit, offset)
	body := fiber.Map{}
	if len(metrics) > 0 {
		body["metrics"] = metrics
	}
	if next != "" {
		body["next_page_token"] = next
	}
	return a.send(c, body, err)
}
