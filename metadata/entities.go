package metadata

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
