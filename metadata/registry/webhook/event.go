package webhook

import (
	"fmt"
	"strconv"
	"strings"
)

// Event is an (entity, action) pair in upstream's lowercase enum values
// ("model_version", "created"): the form stored in webhook_events and
// sent in the delivery envelope. The REST API spells them in upper case
// (the proto enum names): see ProtoName.
type Event struct {
	Entity string
	Action string
}

// Entities and actions (webhooks.proto; BUDGET_POLICY and EXCEEDED are 3.11).
const (
	RegisteredModel   = "registered_model"
	ModelVersion      = "model_version"
	ModelVersionTag   = "model_version_tag"
	ModelVersionAlias = "model_version_alias"
	Prompt            = "prompt"
	PromptVersion     = "prompt_version"
	PromptTag         = "prompt_tag"
	PromptVersionTag  = "prompt_version_tag"
	PromptAlias       = "prompt_alias"
	BudgetPolicy      = "budget_policy"

	Created  = "created"
	Updated  = "updated"
	Deleted  = "deleted"
	Set      = "set"
	Exceeded = "exceeded"
)

// entityNumbers and actionNumbers are the proto enum numbers, in order
// (0 is the *_UNSPECIFIED value, never valid).
var (
	entityNumbers = []string{"", RegisteredModel, ModelVersion, ModelVersionTag, ModelVersionAlias,
		Prompt, PromptVersion, PromptTag, PromptVersionTag, PromptAlias, BudgetPolicy}
	actionNumbers = []string{"", Created, Updated, Deleted, Set, Exceeded}
)

// validActions is upstream's WebhookEvent check: which actions each
// entity has, in upstream's order (used in the error message).
var validActions = map[string][]string{
	RegisteredModel:   {Created},
	ModelVersion:      {Created},
	ModelVersionTag:   {Set, Deleted},
	ModelVersionAlias: {Created, Deleted},
	Prompt:            {Created},
	PromptVersion:     {Created},
	PromptTag:         {Set, Deleted},
	PromptVersionTag:  {Set, Deleted},
	PromptAlias:       {Created, Deleted},
	BudgetPolicy:      {Exceeded},
}

// String is "entity.action", upstream's WebhookEvent string form.
func (e Event) String() string { return e.Entity + "." + e.Action }

// ProtoEntity and ProtoAction are the REST spellings (proto enum names).
func (e Event) ProtoEntity() string { return strings.ToUpper(e.Entity) }

// ProtoAction is the action's proto enum name.
func (e Event) ProtoAction() string { return strings.ToUpper(e.Action) }

// ParseEvent reads one element of a request's events list: entity and
// action as proto enum names (any case) or numbers, as protobuf's JSON
// parser accepts them, and checks the combination.
func ParseEvent(entity, action any) (Event, error) {
	en, err := enumValue("entity", entity, entityNumbers)
	if err != nil {
		return Event{}, err
	}
	ac, err := enumValue("action", action, actionNumbers)
	if err != nil {
		return Event{}, err
	}
	ev := Event{en, ac}
	return ev, ev.Check()
}

// Check reports an action the entity does not have, with upstream's text.
func (e Event) Check() error {
	acts, ok := validActions[e.Entity]
	if !ok {
		return fmt.Errorf("Invalid webhook entity: '%s'", e.Entity)
	}
	for _, a := range acts {
		if a == e.Action {
			return nil
		}
	}
	quoted := make([]string, len(acts))
	for i, a := range acts {
		quoted[i] = "'" + a + "'"
	}
	return fmt.Errorf("Invalid action '%s' for entity '%s'. Valid actions are: [%s]", e.Action, e.Entity, strings.Join(quoted, ", "))
}

func enumValue(field string, v any, byNumber []string) (string, error) {
	switch x := v.(type) {
	case string:
		low := strings.ToLower(x)
		for _, name := range byNumber[1:] {
			if name == low {
				return name, nil
			}
		}
		if n, err := strconv.Atoi(x); err == nil && n > 0 && n < len(byNumber) {
			return byNumber[n], nil
		}
	case float64:
		if n := int(x); float64(n) == x && n > 0 && n < len(byNumber) {
			return byNumber[n], nil
		}
	case nil:
		return "", fmt.Errorf("Missing value for required parameter 'events.%s'.", field)
	}
	return "", fmt.Errorf("Invalid webhook %s: %s", field, show(v))
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	return fmt.Sprint(v)
}
