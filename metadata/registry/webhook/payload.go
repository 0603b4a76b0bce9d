package webhook

import (
	"bytes"
	"encoding/json"
	"time"
)

// The data payloads, one per event, with upstream's field names and order
// (mlflow/webhooks/types.py). Optional fields are pointers sent as null.

// ModelCreated is REGISTERED_MODEL CREATED and PROMPT CREATED.
type ModelCreated struct {
	Name        string            `json:"name"`
	Tags        map[string]string `json:"tags"`
	Description *string           `json:"description"`
}

// VersionCreated is MODEL_VERSION CREATED.
type VersionCreated struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Source      string            `json:"source"`
	RunID       *string           `json:"run_id"`
	Tags        map[string]string `json:"tags"`
	Description *string           `json:"description"`
}

// PromptVersionCreated is PROMPT_VERSION CREATED.
type PromptVersionCreated struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Template    string            `json:"template"`
	Tags        map[string]string `json:"tags"`
	Description *string           `json:"description"`
}

// VersionTagSet is MODEL_VERSION_TAG SET and PROMPT_VERSION_TAG SET.
type VersionTagSet struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}

// VersionTagDeleted is MODEL_VERSION_TAG DELETED and PROMPT_VERSION_TAG DELETED.
type VersionTagDeleted struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Key     string `json:"key"`
}

// TagSet is PROMPT_TAG SET.
type TagSet struct {
	Name  string `json:"name"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// TagDeleted is PROMPT_TAG DELETED.
type TagDeleted struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// AliasCreated is MODEL_VERSION_ALIAS CREATED and PROMPT_ALIAS CREATED.
type AliasCreated struct {
	Name    string `json:"name"`
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// AliasDeleted is MODEL_VERSION_ALIAS DELETED and PROMPT_ALIAS DELETED.
type AliasDeleted struct {
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

func strp(s string) *string { return &s }

var exampleTags = map[string]string{"example_key": "example_value"}

// Example is the payload /webhooks/<id>/test sends for ev (upstream's
// example() of the event's payload class); false for an event with none
// (BUDGET_POLICY EXCEEDED is not a registry event).
func Example(ev Event) (any, bool) {
	switch ev {
	case Event{RegisteredModel, Created}:
		return ModelCreated{"example_model", exampleTags, strp("An example registered model")}, true
	case Event{ModelVersion, Created}:
		return VersionCreated{"example_model", "1", "models:/123", strp("abcd1234abcd5678"), exampleTags, strp("An example model version")}, true
	case Event{ModelVersionTag, Set}:
		return VersionTagSet{"example_model", "1", "example_key", "example_value"}, true
	case Event{ModelVersionTag, Deleted}:
		return VersionTagDeleted{"example_model", "1", "example_key"}, true
	case Event{ModelVersionAlias, Created}:
		return AliasCreated{"example_model", "example_alias", "1"}, true
	case Event{ModelVersionAlias, Deleted}:
		return AliasDeleted{"example_model", "example_alias"}, true
	case Event{Prompt, Created}:
		return ModelCreated{"example_prompt", exampleTags, strp("An example prompt")}, true
	case Event{PromptVersion, Created}:
		return PromptVersionCreated{"example_prompt", "1", "Hello {{name}}!", exampleTags, strp("An example prompt version")}, true
	case Event{PromptTag, Set}:
		return TagSet{"example_prompt", "example_key", "example_value"}, true
	case Event{PromptTag, Deleted}:
		return TagDeleted{"example_prompt", "example_key"}, true
	case Event{PromptVersionTag, Set}:
		return VersionTagSet{"example_prompt", "1", "example_key", "example_value"}, true
	case Event{PromptVersionTag, Deleted}:
		return VersionTagDeleted{"example_prompt", "1", "example_key"}, true
	case Event{PromptAlias, Created}:
		return AliasCreated{"example_prompt", "example_alias", "1"}, true
	case Event{PromptAlias, Deleted}:
		return AliasDeleted{"example_prompt", "example_alias"}, true
	}
	return nil, false
}

// envelope is the delivered body: upstream's {"entity", "action",
// "timestamp", "data"} in that order.
type envelope struct {
	Entity    string `json:"entity"`
	Action    string `json:"action"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// Body renders the delivery body of ev with data at time now. The
// timestamp is Python's datetime.now(timezone.utc).isoformat().
func Body(ev Event, data any, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(envelope{ev.Entity, ev.Action, now.UTC().Format("2006-01-02T15:04:05.000000+00:00"), data})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}
