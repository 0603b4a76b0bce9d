package tracking

import "github.com/ferryml/ferry/wire"

// The JSON shapes of spec tracking-api.md §3. Fields follow upstream's
// emission rules: unset optional fields and empty lists are omitted,
// int64s are JSON numbers.

// KeyValue is a tag or param.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Experiment is MLflow's Experiment message.
type Experiment struct {
	ExperimentID     string     `json:"experiment_id"`
	Name             string     `json:"name"`
	ArtifactLocation string     `json:"artifact_location,omitempty"`
	LifecycleStage   string     `json:"lifecycle_stage,omitempty"`
	LastUpdateTime   int64      `json:"last_update_time,omitempty"`
	CreationTime     int64      `json:"creation_time,omitempty"`
	Tags             []KeyValue `json:"tags,omitempty"`
}

// RunInfo is MLflow's RunInfo message. run_id and run_uuid are both
// always sent, as are experiment_id, user_id, status, start_time and
// lifecycle_stage; end_time only when non-zero (spec §1.3).
type RunInfo struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	RunName        string `json:"run_name,omitempty"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        int64  `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri,omitempty"`
	LifecycleStage string `json:"lifecycle_stage"`
}

// Metric is MLflow's Metric message; step and timestamp are always sent.
type Metric struct {
	Key       string    `json:"key"`
	Value     jsonFloat `json:"value"`
	Timestamp int64     `json:"timestamp"`
	Step      int64     `json:"step"`
}

// RunData holds the latest metrics, params and tags of a run.
type RunData struct {
	Metrics []Metric   `json:"metrics,omitempty"`
	Params  []KeyValue `json:"params,omitempty"`
	Tags    []KeyValue `json:"tags,omitempty"`
}

// Dataset is MLflow's Dataset message.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset logged as a run input, with its input tags.
type DatasetInput struct {
	Tags    []KeyValue `json:"tags,omitempty"`
	Dataset Dataset    `json:"dataset"`
}

// ModelInput is a logged model used as a run input.
type ModelInput struct {
	ModelID string `json:"model_id"`
}

// ModelOutput is a logged model produced by a run at a step.
type ModelOutput struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step"`
}

// RunInputs is MLflow's RunInputs message.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs,omitempty"`
	ModelInputs   []ModelInput   `json:"model_inputs,omitempty"`
}

// RunOutputs is MLflow's RunOutputs message.
type RunOutputs struct {
	ModelOutputs []ModelOutput `json:"model_outputs,omitempty"`
}

// Run is MLflow's Run message. data is always sent; inputs and outputs
// when the route attaches them (possibly empty), as upstream does.
type Run struct {
	Info    RunInfo     `json:"info"`
	Data    RunData     `json:"data"`
	Inputs  *RunInputs  `json:"inputs,omitempty"`
	Outputs *RunOutputs `json:"outputs,omitempty"`
}

// jsonFloat is a double in upstream's JSON (wire.Double).
type jsonFloat = wire.Double
