package tracing

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// traceStates are TraceInfoV3.State's names by number.
var traceStates = []string{"STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"}

// parseState reads a State (name or number); v2 adds the TraceStatus
// names (TRACE_STATUS_UNSPECIFIED = STATE_UNSPECIFIED).
func parseState(field string, v any) (string, *wire.Error) {
	switch x := v.(type) {
	case string:
		if x == "TRACE_STATUS_UNSPECIFIED" {
			return "STATE_UNSPECIFIED", nil
		}
		for _, s := range traceStates {
			if s == x {
				return s, nil
			}
		}
		if n, err := strconv.Atoi(x); err == nil && n >= 0 && n < len(traceStates) {
			return traceStates[n], nil
		}
	case float64:
		if x >= 0 && int(x) < len(traceStates) && x == float64(int(x)) {
			return traceStates[int(x)], nil
		}
	}
	return "", wire.InvalidType(field, v)
}

// checkTraceID refuses ids no trace can have: invalid text, or longer
// than the request_id column.
func checkTraceID(field, id string) *wire.Error {
	if werr := wire.CheckText(field, id); werr != nil {
		return werr
	}
	if id == "" {
		return wire.MissingParam(field)
	}
	if len(id) > maxTraceID {
		return wire.Errorf(wire.InvalidParameterValue, "Invalid value for parameter '%s': longer than %d characters.", field, maxTraceID)
	}
	return nil
}

// checkPairs validates tag / metadata keys (≤ 250 characters, non-empty)
// and truncates values to 8000 characters, as upstream does for trace
// tags.
func checkPairs(field string, m map[string]string) *wire.Error {
	for k, v := range m {
		if k == "" {
			return wire.Errorf(wire.InvalidParameterValue, "Invalid value for parameter '%s': empty key.", field)
		}
		if utf8.RuneCountInString(k) > maxKey {
			return wire.Errorf(wire.InvalidParameterValue, "'%s' key exceeds the maximum length of %d characters", field, maxKey)
		}
		m[k] = truncate(v, maxValue)
	}
	return nil
}

func optStr(m map[string]any, path, name string, max int) (*string, *wire.Error) {
	s, ok, werr := strField(m, path, name)
	if werr != nil || !ok {
		return nil, werr
	}
	if utf8.RuneCountInString(s) > max {
		if name == "request_preview" || name == "response_preview" {
			s = truncate(s, max)
		} else {
			return nil, wire.Errorf(wire.InvalidParameterValue, "'%s.%s' exceeds the maximum length of %d characters", path, name, max)
		}
	}
	return &s, nil
}

// readTraceInfoV3 reads StartTraceV3's trace.trace_info.
func readTraceInfoV3(r *wire.Request) (*traceRow, string, *wire.Error) {
	trace, ok, werr := r.Object("trace")
	if werr != nil {
		return nil, "", werr
	}
	if !ok {
		return nil, "", wire.MissingParam("trace")
	}
	infoRaw, ok := trace["trace_info"]
	if !ok || infoRaw == nil {
		return nil, "", wire.MissingParam("trace.trace_info")
	}
	info, werr := wire.AsObject("trace.trace_info", infoRaw)
	if werr != nil {
		return nil, "", werr
	}
	const p = "trace.trace_info"
	t := &traceRow{Status: "STATE_UNSPECIFIED"}
	id, _, werr := strField(info, p, "trace_id")
	if werr != nil {
		return nil, "", werr
	}
	if werr := checkTraceID(p+".trace_id", id); werr != nil {
		return nil, "", werr
	}
	t.ID = id
	var expID string
	if locRaw, ok := info["trace_location"]; ok && locRaw != nil {
		loc, werr := wire.AsObject(p+".trace_location", locRaw)
		if werr != nil {
			return nil, "", werr
		}
		if expRaw, ok := loc["mlflow_experiment"]; ok && expRaw != nil {
			exp, werr := wire.AsObject(p+".trace_location.mlflow_experiment", expRaw)
			if werr != nil {
				return nil, "", werr
			}
			if expID, _, werr = strField(exp, p+".trace_location.mlflow_experiment", "experiment_id"); werr != nil {
				return nil, "", werr
			}
		}
	}
	if expID == "" {
		return nil, "", wire.MissingParam(p + ".trace_location.mlflow_experiment.experiment_id")
	}
	if t.ClientRequestID, werr = optStr(info, p, "client_request_id", maxClientReqID); werr != nil {
		return nil, "", werr
	}
	if t.RequestPreview, werr = optStr(info, p, "request_preview", maxPreview); werr != nil {
		return nil, "", werr
	}
	if t.ResponsePreview, werr = optStr(info, p, "response_preview", maxPreview); werr != nil {
		return nil, "", werr
	}
	if s, ok, werr := strField(info, p, "request_time"); werr != nil {
		return nil, "", werr
	} else if ok {
		ms, good := parseProtoTimestamp(s)
		if !good {
			return nil, "", wire.InvalidType(p+".request_time", s)
		}
		t.TimestampMs = ms
	}
	if s, ok, werr := strField(info, p, "execution_duration"); werr != nil {
		return nil, "", werr
	} else if ok {
		ms, good := parseProtoDuration(s)
		if !good {
			return nil, "", wire.InvalidType(p+".execution_duration", s)
		}
		t.ExecutionTimeMs = &ms
	}
	if v, ok := info["state"]; ok && v != nil {
		if t.Status, werr = parseState(p+".state", v); werr != nil {
			return nil, "", werr
		}
	}
	if t.Metadata, werr = stringMap(info, p, "trace_metadata"); werr != nil {
		return nil, "", werr
	}
	if t.Tags, werr = stringMap(info, p, "tags"); werr != nil {
		return nil, "", werr
	}
	if werr := checkPairs(p+".trace_metadata", t.Metadata); werr != nil {
		return nil, "", werr
	}
	if werr := checkPairs(p+".tags", t.Tags); werr != nil {
		return nil, "", werr
	}
	return t, expID, nil
}

// startTraceV3 is POST /api/3.0/mlflow/traces.
func (a *API) startTraceV3(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	t, expID, werr := readTraceInfoV3(r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	// Upstream 3.11's start_trace marks the info final (the v2 start does
	// not): later /v1/traces batches then leave its time range, usage,
	// cost, session and user alone.
	if t.Metadata == nil {
		t.Metadata = map[string]string{}
	}
	t.Metadata[infoFinalizedKey] = "true"
	out, err := a.startTrace(c.UserContext(), t, expID)
	if err != nil {
		return a.send(c, nil, err)
	}
	return a.send(c, fiber.Map{"trace": fiber.Map{"trace_info": out.v3()}}, nil)
}

// getTraceInfoV3 is GET /api/3.0/mlflow/traces/<trace_id>.
func (a *API) getTraceInfoV3(c *fiber.Ctx) error {
	return a.sendTraceInfo(c, func(t *traceRow) any { return fiber.Map{"trace": fiber.Map{"trace_info": t.v3()}} })
}

// getTraceInfoV2 is the legacy GET /api/2.0/mlflow/traces/<request_id>/info.
func (a *API) getTraceInfoV2(c *fiber.Ctx) error {
	return a.sendTraceInfo(c, func(t *traceRow) any { return fiber.Map{"trace_info": t.v2()} })
}

// sendTraceInfo reads the URL's trace and answers shape(trace).
func (a *API) sendTraceInfo(c *fiber.Ctx, shape func(*traceRow) any) error {
	id, werr := traceIDParam(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	t, err := a.readTrace(c.UserContext(), id)
	if err != nil {
		return a.send(c, nil, err)
	}
	return a.send(c, shape(t), nil)
}

// sizeStatsKey is the trace metadata the client writes with the number of
// spans a complete trace has.
const sizeStatsKey = "mlflow.trace.sizeStats"

// incomplete reports whether fewer spans are stored than the trace's
// size statistics announce (the async export is still running).
func incomplete(t *traceRow, stored int) bool {
	raw, ok := t.Metadata[sizeStatsKey]
	if !ok {
		return false
	}
	var st struct {
		NumSpans *int64 `json:"num_spans"`
	}
	if decodeUseNumber([]byte(raw), &st) != nil || st.NumSpans == nil {
		return false
	}
	return int64(stored) < *st.NumSpans
}

// getTrace is GET /api/3.0/mlflow/traces/get: info and spans.
func (a *API) getTrace(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := traceID(r, "trace_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	partial, werr := r.Bool("allow_partial")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ts, spans, err := a.readFullTraces(c.UserContext(), []string{id})
	if err != nil {
		return a.send(c, nil, err)
	}
	if len(ts) == 0 {
		return a.send(c, nil, traceNotFound(id))
	}
	if !partial && incomplete(ts[0], len(spans[id])) {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist,
			"Trace with ID %s is not fully exported yet: %d spans stored. Set allow_partial to read it anyway.", id, len(spans[id])))
	}
	return a.send(c, fiber.Map{"trace": a.fullTrace(ts[0], spans[id])}, nil)
}

// traceID reads a required trace id parameter.
func traceID(r *wire.Request, field string) (string, *wire.Error) {
	id, werr := r.ReqStr(field)
	if werr == nil {
		werr = checkTraceID(field, id)
	}
	return id, werr
}

// readIDs reads a required list of trace ids, bounded.
func readIDs(r *wire.Request, field string) ([]string, *wire.Error) {
	ids, werr := r.Strs(field)
	if werr != nil {
		return nil, werr
	}
	if len(ids) == 0 {
		return nil, wire.MissingParam(field)
	}
	if len(ids) > maxBatchIDs {
		return nil, wire.Errorf(wire.InvalidParameterValue, "Too many trace ids in '%s': %d (at most %d).", field, len(ids), maxBatchIDs)
	}
	for i, id := range ids {
		if werr := checkTraceID(fmt.Sprintf("%s[%d]", field, i), id); werr != nil {
			return nil, werr
		}
	}
	return ids, nil
}

// batchGetTraces is GET /api/3.0/mlflow/traces/batchGet.
func (a *API) batchGetTraces(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ids, werr := readIDs(r, "trace_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ts, spans, err := a.readFullTraces(c.UserContext(), ids)
	if err != nil {
		return a.send(c, nil, err)
	}
	out := make([]traceWithSpans, len(ts))
	for i, t := range ts {
		out[i] = a.fullTrace(t, spans[t.ID])
	}
	body := fiber.Map{}
	if len(out) > 0 {
		body["traces"] = out
	}
	return a.send(c, body, nil)
}

// batchGetTraceInfos is POST /api/3.0/mlflow/traces/batchGetInfos.
func (a *API) batchGetTraceInfos(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ids, werr := readIDs(r, "trace_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ts, err := a.readTraces(c.UserContext(), ids)
	if err != nil {
		return a.send(c, nil, err)
	}
	body := fiber.Map{}
	if len(ts) > 0 {
		infos := make([]traceInfoV3, len(ts))
		for i, t := range ts {
			infos[i] = t.v3()
		}
		body["trace_infos"] = infos
	}
	return a.send(c, body, nil)
}

// tagRequest reads a tag route's trace id (from the URL: v2 and v3, the
// body's request_id/trace_id are ignored), its body and the required key.
func tagRequest(c *fiber.Ctx) (id string, r *wire.Request, key string, werr *wire.Error) {
	if id, werr = traceIDParam(c); werr != nil {
		return
	}
	if r, werr = wire.ReadRequest(c); werr != nil {
		return
	}
	key, werr = r.ReqStr("key")
	return
}

// setTraceTag is PATCH …/traces/<id>/tags (v2 and v3).
func (a *API) setTraceTag(c *fiber.Ctx) error {
	id, r, key, werr := tagRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	value, _, werr := r.Str("value")
	if werr != nil {
		return wire.Send(c, werr)
	}
	m := map[string]string{key: value}
	if werr := checkPairs("key", m); werr != nil {
		return wire.Send(c, werr)
	}
	return a.send(c, fiber.Map{}, a.setTag(c.UserContext(), id, key, m[key]))
}

// deleteTraceTag is DELETE …/traces/<id>/tags (v2 and v3).
func (a *API) deleteTraceTag(c *fiber.Ctx) error {
	id, _, key, werr := tagRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	return a.send(c, fiber.Map{}, a.deleteTag(c.UserContext(), id, key))
}

// deleteTracesRoute is POST …/traces/delete-traces (v2 and v3).
func (a *API) deleteTracesRoute(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expStr, werr := r.ReqStr("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxTs, hasTs, werr := r.Int("max_timestamp_millis")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxTraces, hasMax, werr := r.Int("max_traces")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ids, werr := r.Strs("request_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	// Upstream's store deletes the whole experiment when neither is
	// given; its clients refuse that, and so does Ferry.
	switch {
	case !hasTs && len(ids) == 0:
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Either `max_timestamp_millis` or `request_ids` must be specified."))
	case hasTs && len(ids) > 0:
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Only one of `max_timestamp_millis` and `request_ids` can be specified."))
	case len(ids) > 0 && hasMax:
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "`max_traces` can't be specified if `request_ids` is specified."))
	case hasMax && maxTraces <= 0:
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "`max_traces` must be a positive integer, received %d.", maxTraces))
	}
	if len(ids) > maxBatchIDs*10 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Too many trace ids in 'request_ids': %d (at most %d).", len(ids), maxBatchIDs*10))
	}
	expID, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "No Experiment with id=%s exists", expStr))
	}
	var ts *int64
	if hasTs {
		ts = &maxTs
	}
	deleted, err := a.deleteTraces(c.UserContext(), expID, ids, ts, maxTraces)
	if err != nil {
		return a.send(c, nil, err)
	}
	a.deleteTraceArtifacts(c.UserContext(), deleted)
	return a.send(c, fiber.Map{"traces_deleted": len(deleted)}, nil)
}

// linkTracesToRun is POST /api/2.0/mlflow/traces/link-to-run.
func (a *API) linkTracesToRun(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ids, werr := r.Strs("trace_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(ids) == 0 {
		return wire.Send(c, wire.MissingParam("trace_ids"))
	}
	runID, werr := r.ReqStr("run_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(ids) > 100 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Cannot link more than 100 traces to a run in a single request. Provided %d traces.", len(ids)))
	}
	for i, id := range ids {
		if werr := checkTraceID(fmt.Sprintf("trace_ids[%d]", i), id); werr != nil {
			return wire.Send(c, werr)
		}
	}
	if len(runID) > 36 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Invalid value for parameter 'run_id': longer than 36 characters."))
	}
	return a.send(c, fiber.Map{}, a.linkToRun(c.UserContext(), ids, runID))
}

// linkPromptsToTrace is POST /api/2.0/mlflow/traces/link-prompts.
func (a *API) linkPromptsToTrace(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := traceID(r, "trace_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	list, werr := r.Objects("prompt_versions")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(list) == 0 {
		return wire.Send(c, wire.MissingParam("prompt_versions"))
	}
	if len(list) > 100 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Too many prompt versions: %d (at most 100).", len(list)))
	}
	pvs := make([]promptVersion, 0, len(list))
	for i, m := range list {
		path := fmt.Sprintf("prompt_versions[%d]", i)
		name, _, werr := strField(m, path, "name")
		if werr != nil {
			return wire.Send(c, werr)
		}
		version, _, werr := strField(m, path, "version")
		if werr != nil {
			return wire.Send(c, werr)
		}
		if name == "" || version == "" {
			return wire.Send(c, wire.MissingParam(path+".name/version"))
		}
		pvs = append(pvs, promptVersion{Name: name, Version: version})
	}
	return a.send(c, fiber.Map{}, a.linkPrompts(c.UserContext(), id, pvs))
}
