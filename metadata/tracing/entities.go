package tracing

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// traceRow is one trace_info row with its tags and request metadata.
type traceRow struct {
	ID              string
	ExperimentID    int64
	TimestampMs     int64
	ExecutionTimeMs *int64
	Status          string // trace_info.status: OK, ERROR, IN_PROGRESS, STATE_UNSPECIFIED
	ClientRequestID *string
	RequestPreview  *string
	ResponsePreview *string
	Tags            map[string]string
	Metadata        map[string]string
	Assessments     []assessment
}

// traceLocation is TraceLocation for an experiment (the only kind OSS
// servers store).
type traceLocation struct {
	Type             string            `json:"type"`
	MlflowExperiment *experimentLocRef `json:"mlflow_experiment,omitempty"`
}

type experimentLocRef struct {
	ExperimentID string `json:"experiment_id"`
}

// traceInfoV3 is TraceInfoV3 in proto JSON (spec §2.6): request_time a
// google.protobuf.Timestamp (RFC 3339), execution_duration a Duration
// ("1.500s"), maps as objects, empty maps and lists omitted.
type traceInfoV3 struct {
	TraceID           string            `json:"trace_id"`
	ClientRequestID   *string           `json:"client_request_id,omitempty"`
	TraceLocation     traceLocation     `json:"trace_location"`
	RequestPreview    *string           `json:"request_preview,omitempty"`
	ResponsePreview   *string           `json:"response_preview,omitempty"`
	RequestTime       string            `json:"request_time"`
	ExecutionDuration string            `json:"execution_duration,omitempty"`
	State             string            `json:"state"`
	TraceMetadata     map[string]string `json:"trace_metadata,omitempty"`
	Assessments       []assessmentJSON  `json:"assessments,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
}

func (t *traceRow) v3() traceInfoV3 {
	out := traceInfoV3{
		TraceID:         t.ID,
		ClientRequestID: t.ClientRequestID,
		TraceLocation: traceLocation{Type: "MLFLOW_EXPERIMENT",
			MlflowExperiment: &experimentLocRef{ExperimentID: strconv.FormatInt(t.ExperimentID, 10)}},
		RequestPreview:  t.RequestPreview,
		ResponsePreview: t.ResponsePreview,
		RequestTime:     protoTimestamp(t.TimestampMs),
		State:           t.Status,
		TraceMetadata:   t.Metadata,
		Tags:            t.Tags,
	}
	if t.ExecutionTimeMs != nil {
		out.ExecutionDuration = protoDuration(*t.ExecutionTimeMs)
	}
	for i := range t.Assessments {
		out.Assessments = append(out.Assessments, t.Assessments[i].json())
	}
	return out
}

// keyValue is the {key, value} pair of v2 messages.
type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// traceInfoV2 is the legacy TraceInfo (v2 routes): status names are
// TraceStatus's (TRACE_STATUS_UNSPECIFIED, OK, ERROR, IN_PROGRESS).
type traceInfoV2 struct {
	RequestID       string     `json:"request_id"`
	ExperimentID    string     `json:"experiment_id"`
	TimestampMs     int64      `json:"timestamp_ms"`
	ExecutionTimeMs *int64     `json:"execution_time_ms,omitempty"`
	Status          string     `json:"status"`
	RequestMetadata []keyValue `json:"request_metadata,omitempty"`
	Tags            []keyValue `json:"tags,omitempty"`
}

func (t *traceRow) v2() traceInfoV2 {
	status := t.Status
	if status == "STATE_UNSPECIFIED" {
		status = "TRACE_STATUS_UNSPECIFIED"
	}
	return traceInfoV2{
		RequestID:       t.ID,
		ExperimentID:    strconv.FormatInt(t.ExperimentID, 10),
		TimestampMs:     t.TimestampMs,
		ExecutionTimeMs: t.ExecutionTimeMs,
		Status:          status,
		RequestMetadata: sortedPairs(t.Metadata),
		Tags:            sortedPairs(t.Tags),
	}
}

func sortedPairs(m map[string]string) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		out = append(out, keyValue{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// protoTimestamp renders epoch milliseconds as protobuf's JSON Timestamp:
// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits (Python's
// Timestamp.ToJsonString).
func protoTimestamp(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	s := t.Format("2006-01-02T15:04:05")
	if frac := ms % 1000; frac != 0 {
		if frac < 0 {
			frac += 1000
		}
		s += fmt.Sprintf(".%03d", frac)
	}
	return s + "Z"
}

// protoDuration renders milliseconds as protobuf's JSON Duration
// ("1s", "1.500s", "-0.250s").
func protoDuration(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	if ms%1000 == 0 {
		return fmt.Sprintf("%s%ds", sign, ms/1000)
	}
	return fmt.Sprintf("%s%d.%03ds", sign, ms/1000, ms%1000)
}

// parseProtoTimestamp reads a JSON Timestamp (RFC 3339, any fraction,
// any offset) as epoch milliseconds.
func parseProtoTimestamp(s string) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// parseProtoDuration reads a JSON Duration ("1.5s", "-2s") as
// milliseconds.
func parseProtoDuration(s string) (int64, bool) {
	if len(s) < 2 || s[len(s)-1] != 's' {
		return 0, false
	}
	num := s[:len(s)-1]
	if num == "" || num[0] == '+' {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f > 315576000000 || f < -315576000000 {
		return 0, false
	}
	d := time.Duration(f * float64(time.Second))
	return d.Milliseconds(), true
}
