package tracking

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// metrics/get-history-bulk-interval and runs/log-model (spec
// tracking-api.md §2.2, §5.3).

const (
	maxRunsBulkInterval        = 100   // MAX_RUNS_GET_METRIC_HISTORY_BULK
	maxResultsPerRunInterval   = 2500  // MAX_RESULTS_PER_RUN
	maxHistoryPerRunInterval   = 25000 // MAX_RESULTS_GET_METRIC_HISTORY
	logModelHistoryTag         = "mlflow.log-model.history"
	apiDocsSuffix              = " See the API docs for more information about request parameters."
	bulkIntervalBothStepsError = "If either start step or end step are specified, both must be specified."
)

// MetricWithRunID is MLflow's MetricWithRunId message.
type MetricWithRunID struct {
	Key       string    `json:"key"`
	Value     jsonFloat `json:"value"`
	Timestamp int64     `json:"timestamp"`
	Step      int64     `json:"step"`
	RunID     string    `json:"run_id"`
}

// getMetricHistoryBulkInterval is GET metrics/get-history-bulk-interval:
// the UI's sampled history of one metric over up to 100 runs. As upstream,
// start_step, end_step and max_results are validated wherever they come
// from but used only from the query string.
func (a *API) getMetricHistoryBulkInterval(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !p.has("run_ids") {
		return wire.Send(c, wire.MissingParam("run_ids"))
	}
	runIDs, werr := p.strs("run_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(runIDs) > maxRunsBulkInterval {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids."+apiDocsSuffix, maxRunsBulkInterval, len(runIDs)))
	}
	key, werr := p.reqStr("metric_key")
	if werr != nil {
		return wire.Send(c, werr)
	}
	start, hasStart, werr := p.int64Field("start_step")
	if werr != nil {
		return wire.Send(c, werr)
	}
	end, hasEnd, werr := p.int64Field("end_step")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxResults, hasMax, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if hasMax && (maxResults < 1 || maxResults > maxResultsPerRunInterval) {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"max_results must be between 1 and %d."+apiDocsSuffix, maxResultsPerRunInterval))
	}
	if p.query == nil { // upstream reads these from request.args only
		hasStart, hasEnd, hasMax = false, false, false
	}
	if !hasMax {
		maxResults = maxResultsPerRunInterval
	}
	switch {
	case hasStart && hasEnd:
		if start > end {
			return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
				"end_step must be greater than start_step. Found start_step=%d and end_step=%d.", start, end))
		}
	case hasStart || hasEnd:
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, bulkIntervalBothStepsError))
	}
	ctx := c.UserContext()
	out, err := a.metricHistoryBulkInterval(ctx, runIDs, key, start, end, hasStart, hasEnd, maxResults)
	body := fiber.Map{}
	if len(out) > 0 {
		body["metrics"] = out
	}
	return a.send(c, body, err)
}

// sampledSteps is upstream's _get_sampled_steps: every run's first and
// last step (within range) plus up to maxResults steps evenly spaced over
// the distinct steps of all runs in [start, end] (default [0, last
// step]), always including the last one in range.
func sampledSteps(runIDs []string, hist map[string][]MetricWithRunID, start, end int64, ranged bool, maxResults int) map[int64]bool {
	distinct := map[int64]bool{}
	var minMax []int64
	for _, id := range runIDs {
		ms := hist[id]
		if len(ms) == 0 {
			continue
		}
		lo, hi := ms[0].Step, ms[0].Step
		for _, m := range ms {
			distinct[m.Step] = true
			lo, hi = min(lo, m.Step), max(hi, m.Step)
		}
		minMax = append(minMax, lo, hi)
	}
	all := make([]int64, 0, len(distinct))
	for s := range distinct {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if !ranged {
		start, end = 0, 0
		if len(all) > 0 {
			end = all[len(all)-1]
		}
	}
	out := map[int64]bool{}
	for _, s := range minMax {
		if start <= s && s <= end {
			out[s] = true
		}
	}
	lo := sort.Search(len(all), func(i int) bool { return all[i] >= start }) // bisect_left
	hi := sort.Search(len(all), func(i int) bool { return all[i] > end })    // bisect_right
	if hi-lo <= maxResults {
		for _, s := range all[lo:hi] {
			out[s] = true
		}
		return out
	}
	n := hi - lo
	interval := float64(n) / float64(maxResults)
	for i := 0; i < maxResults; i++ {
		idx := lo + int(float64(i)*interval)
		if idx < n { // upstream compares with the count, not the end index
			out[all[idx]] = true
		}
	}
	out[all[hi-1]] = true
	return out
}

// logModel is POST runs/log-model: appends the model's MLmodel dict to
// the run's mlflow.log-model.history tag (a JSON list, rendered as
// Python's json.dumps would).
func (a *API) logModel(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.runID(false)
	if werr != nil {
		return wire.Send(c, werr)
	}
	modelJSON, werr := p.reqStr("model_json")
	if werr != nil {
		return wire.Send(c, werr)
	}
	malformed := wire.Errorf(wire.InvalidParameterValue, "Malformed model info. \n %s \n is not a valid JSON.", truncateForMessage(modelJSON))
	var model map[string]json.RawMessage
	if t := bytes.TrimSpace([]byte(modelJSON)); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &model) != nil {
		return wire.Send(c, malformed)
	}
	var missing []string
	for _, f := range []string{"artifact_path", "flavors", "run_id", "utc_time_created"} {
		if _, ok := model[f]; !ok {
			missing = append(missing, wire.PyRepr(f))
		}
	}
	if len(missing) > 0 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Model json is missing mandatory fields: {%s}", strings.Join(missing, ", ")))
	}
	entry, err := pyDumps([]byte(modelJSON))
	if err != nil {
		return wire.Send(c, malformed)
	}
	ctx := c.UserContext()
	err = a.appendLogModelHistory(ctx, id, entry)
	return a.send(c, fiber.Map{}, err)
}

// pyDumps re-renders one JSON value as Python's json.dumps(json.loads(v))
// does: ", " and ": " separators, object keys in their order, non-ASCII
// escaped, floats as repr(), integers kept exact.
func pyDumps(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	if err := pyDumpValue(dec, &b); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errTrailingJSON
	}
	return b.String(), nil
}

type jsonErr string

func (e jsonErr) Error() string { return string(e) }

const errTrailingJSON = jsonErr("trailing data after JSON value")

func pyDumpValue(dec *json.Decoder, b *strings.Builder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		closing := json.Delim('}')
		if t == '[' {
			closing = ']'
		}
		b.WriteRune(rune(t))
		first := true
		for dec.More() {
			if !first {
				b.WriteString(", ")
			}
			first = false
			if t == '{' {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				ks, _ := kt.(string)
				b.WriteString(wire.PyJSON(ks))
				b.WriteString(": ")
			}
			if err := pyDumpValue(dec, b); err != nil {
				return err
			}
		}
		end, err := dec.Token()
		if err != nil || end != closing {
			return jsonErr("unbalanced JSON")
		}
		b.WriteRune(rune(closing))
	case string:
		b.WriteString(wire.PyJSON(t))
	case json.Number:
		s := string(t)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil && !isRangeErr(err) {
				return err
			}
			switch r := wire.PyFloat(f); r {
			case "inf":
				b.WriteString("Infinity")
			case "-inf":
				b.WriteString("-Infinity")
			default:
				b.WriteString(r)
			}
		} else {
			b.WriteString(s)
		}
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	}
	return nil
}
