package registry

// keyValue is a tag.
type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// modelAlias is a registered model's alias as RegisteredModel carries it.
type modelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// registeredModel is the RegisteredModel message (spec tracking-api.md
// §3): empty lists and unset fields are omitted, as upstream's
// message_to_json does.
type registeredModel struct {
	Name                 string         `json:"name"`
	CreationTimestamp    int64          `json:"creation_timestamp"`
	LastUpdatedTimestamp int64          `json:"last_updated_timestamp"`
	Description          *string        `json:"description,omitempty"`
	LatestVersions       []modelVersion `json:"latest_versions,omitempty"`
	Tags                 []keyValue     `json:"tags,omitempty"`
	Aliases              []modelAlias   `json:"aliases,omitempty"`
}

// modelVersion is the ModelVersion message; version is a string and
// status is always emitted (clients poll until READY).
type modelVersion struct {
	Name                 string     `json:"name"`
	Version              string     `json:"version"`
	CreationTimestamp    int64      `json:"creation_timestamp"`
	LastUpdatedTimestamp int64      `json:"last_updated_timestamp"`
	UserID               *string    `json:"user_id,omitempty"`
	CurrentStage         string     `json:"current_stage"`
	Description          *string    `json:"description,omitempty"`
	Source               *string    `json:"source,omitempty"`
	RunID                *string    `json:"run_id,omitempty"`
	Status               string     `json:"status"`
	StatusMessage        *string    `json:"status_message,omitempty"`
	Tags                 []keyValue `json:"tags,omitempty"`
	RunLink              *string    `json:"run_link,omitempty"`
	Aliases              []string   `json:"aliases,omitempty"`

	// storageLocation is where the version's files are; not on the wire.
	storageLocation *string
}
