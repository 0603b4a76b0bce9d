package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata/registry/webhook"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// Webhooks (spec tracking-api.md §2.5): CRUD and /test here, the SQL in
// store_webhooks.go, the delivery machinery in package webhook. Registry
// handlers report their changes with the emit* methods below, after the
// write has committed; an event is looked up and delivered on the pool's
// workers, so neither a slow receiver nor a database error in the lookup
// reaches the registry call.

const (
	maxWebhookURL  = 500  // webhooks.url
	maxWebhookDesc = 1000 // webhooks.description
	// maxSecretToken is webhooks.secret; a Fernet token of n bytes is
	// base64 of 57 + 16*(n/16+1) bytes, so 687 bytes fit.
	maxSecretToken = 1000
	maxSecretBytes = 687
	promptTextTag  = "mlflow.prompt.text"
)

// hooks is the delivery side of the API.
type hooks struct {
	guard  *webhook.Guard
	cipher *webhook.Cipher
	sender *webhook.Sender
	pool   *webhook.Pool
	cache  *webhook.Cache[webhookTarget]
	log    *slog.Logger
	// deliveries counts event deliveries by event and outcome;
	// eventsDropped the events dropped before their webhooks were known.
	deliveries, eventsDropped *prometheus.CounterVec
	// warnEphemeral logs once that secrets will not survive a restart.
	warnEphemeral sync.Once
}

// Outcomes of an event delivery, the outcome label of
// ferry_webhook_deliveries_total: delivered (2xx/3xx answer), refused (the
// receiver's 4xx/5xx after the retries), failed (no answer: connection,
// timeout, SSRF guard), skipped (the webhook's stored secret or URL could
// not be used), dropped (the delivery queue was full or closed).
const (
	outcomeDelivered = "delivered"
	outcomeRefused   = "refused"
	outcomeFailed    = "failed"
	outcomeSkipped   = "skipped"
	outcomeDropped   = "dropped"
)

// Reasons an event is dropped before its webhooks are known, the reason
// label of ferry_webhook_events_dropped_total.
const (
	dropQueueFull  = "queue_full"    // the delivery queue was full or closed
	dropLookupFail = "lookup_failed" // the database could not say which webhooks want it
)

// hookMetrics returns the deliveries and dropped-events counters,
// registered on reg when reg is set (an API built again on the same
// registry shares the first one's counters).
func hookMetrics(reg prometheus.Registerer) (deliveries, eventsDropped *prometheus.CounterVec) {
	deliveries = registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_webhook_deliveries_total",
		Help: "Webhook deliveries (one per subscribed webhook and event, retries included) by event (entity.action) and outcome: delivered, refused (the receiver answered 4xx/5xx after the retries), failed (no answer), skipped (webhook unusable), dropped (queue full).",
	}, []string{"event", "outcome"}))
	eventsDropped = registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_webhook_events_dropped_total",
		Help: "Registry events dropped before their webhooks were looked up (so possibly with none subscribed), by reason: queue_full, lookup_failed.",
	}, []string{"reason"}))
	return deliveries, eventsDropped
}

func registerCounter(reg prometheus.Registerer, cv *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return cv
	}
	if err := reg.Register(cv); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return cv
}

func newHooks(s webhook.Settings, log *slog.Logger, reg prometheus.Registerer) *hooks {
	cipher, err := webhook.NewCipher(s.EncryptionKey)
	if err != nil {
		// SettingsFromEnv already refused a bad key; only a hand-built
		// Settings gets here.
		log.Error("webhook secret key unusable: using a random key for this process", "err", err)
		cipher, _ = webhook.NewCipher("")
	}
	g := &webhook.Guard{Schemes: s.Schemes, AllowPrivate: s.AllowPrivate}
	h := &hooks{
		guard: g, cipher: cipher, sender: webhook.NewSender(g, s, log),
		pool: webhook.NewPool(s.Workers, s.QueueSize, log), cache: webhook.NewCache[webhookTarget](s.CacheTTL), log: log,
	}
	h.deliveries, h.eventsDropped = hookMetrics(reg)
	return h
}

// Close drains the webhook deliveries still queued or running until ctx
// ends, then cancels the rest (wired into the server's graceful shutdown).
func (a *API) Close(ctx context.Context) error {
	if a.hooks == nil {
		return nil
	}
	return a.hooks.pool.Close(ctx)
}

// webhookJSON is the Webhook message (the secret is never returned).
type webhookJSON struct {
	WebhookID            string      `json:"webhook_id"`
	Name                 string      `json:"name"`
	Description          *string     `json:"description,omitempty"`
	URL                  string      `json:"url"`
	Events               []eventJSON `json:"events,omitempty"`
	Status               string      `json:"status"`
	CreationTimestamp    int64       `json:"creation_timestamp"`
	LastUpdatedTimestamp int64       `json:"last_updated_timestamp"`
}

type eventJSON struct {
	Entity string `json:"entity"`
	Action string `json:"action"`
}

func toJSON(w *webhookRow) *webhookJSON {
	if w == nil {
		return nil
	}
	out := &webhookJSON{w.ID, w.Name, w.Description, w.URL, nil, w.Status, w.Created, w.Updated}
	for _, ev := range w.Events {
		out.Events = append(out.Events, eventJSON{ev.ProtoEntity(), ev.ProtoAction()})
	}
	return out
}

func invalid(err error) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue, "%s", err.Error())
}

// webhookFields reads the fields create and update share; nil pointers
// are absent (or empty: upstream treats "" as not given).
func (a *API) webhookFields(c *fiber.Ctx, r *wire.Request) (webhookPatch, *wire.Error) {
	var p webhookPatch
	for _, f := range []struct {
		field string
		dst   **string
	}{{"name", &p.name}, {"description", &p.description}, {"url", &p.url}, {"secret", &p.secret}} {
		s, ok, werr := r.Str(f.field)
		if werr != nil {
			return p, werr
		}
		if ok && s != "" {
			*f.dst = &s
		}
	}
	if p.name != nil {
		if err := webhook.ValidateName(*p.name); err != nil {
			return p, invalid(err)
		}
	}
	if p.url != nil {
		if utf8.RuneCountInString(*p.url) > maxWebhookURL {
			return p, wire.Errorf(wire.InvalidParameterValue, "'url' exceeds the maximum length of %d characters", maxWebhookURL)
		}
		if err := a.hooks.guard.CheckURL(c.UserContext(), *p.url); err != nil {
			return p, invalid(err)
		}
	}
	if p.description != nil && utf8.RuneCountInString(*p.description) > maxWebhookDesc {
		return p, wire.Errorf(wire.InvalidParameterValue, "'description' exceeds the maximum length of %d characters", maxWebhookDesc)
	}
	events, werr := webhookEvents(r)
	if werr != nil {
		return p, werr
	}
	p.events = events
	if v, ok := r.Value("status"); ok {
		st, werr := webhookStatus(v)
		if werr != nil {
			return p, werr
		}
		p.status = &st
	}
	if p.secret != nil {
		if a.hooks.cipher.Ephemeral {
			a.hooks.warnEphemeral.Do(func() {
				a.log.Warn("webhook secrets are encrypted with a random key and cannot be read after a restart; set " + webhook.EnvEncryptionKey)
			})
		}
		tok, err := a.hooks.cipher.Encrypt(*p.secret)
		if err != nil {
			return p, wire.Errorf(wire.InternalError, "cannot encrypt the webhook secret: %v", err)
		}
		if len(tok) > maxSecretToken {
			return p, wire.Errorf(wire.InvalidParameterValue, "'secret' is too long: at most %d bytes can be stored encrypted", maxSecretBytes)
		}
		p.secret = &tok
	}
	return p, nil
}

func webhookEvents(r *wire.Request) ([]webhook.Event, *wire.Error) {
	objs, werr := r.Objects("events")
	if werr != nil {
		return nil, werr
	}
	out := make([]webhook.Event, 0, len(objs))
	for _, obj := range objs {
		ev, err := webhook.ParseEvent(obj["entity"], obj["action"])
		if err != nil {
			return nil, invalid(err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// webhookStatus reads WebhookStatus by name or number.
func webhookStatus(v any) (string, *wire.Error) {
	switch x := v.(type) {
	case string:
		switch strings.ToUpper(x) {
		case "ACTIVE", "1":
			return "ACTIVE", nil
		case "DISABLED", "2":
			return "DISABLED", nil
		}
	case float64:
		switch x {
		case 1:
			return "ACTIVE", nil
		case 2:
			return "DISABLED", nil
		}
	}
	return "", wire.Errorf(wire.InvalidParameterValue, "Invalid webhook status: %s. Valid statuses are: ACTIVE, DISABLED", fmt.Sprint(v))
}

func (a *API) createWebhook(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	for _, f := range []string{"name", "url"} {
		if s, _, werr := r.Str(f); werr != nil || s == "" {
			if werr == nil {
				werr = wire.MissingParam(f)
			}
			return wire.Send(c, werr)
		}
	}
	if events, werr := r.Objects("events"); werr != nil {
		return wire.Send(c, werr)
	} else if len(events) == 0 {
		return wire.Send(c, wire.MissingParam("events"))
	}
	p, werr := a.webhookFields(c, r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	now := a.nowMillis()
	w := &webhookRow{ID: uuid.NewString(), Name: *p.name, Description: p.description, URL: *p.url,
		Status: "ACTIVE", Events: p.events, Created: now, Updated: now, secret: p.secret}
	if p.status != nil {
		w.Status = *p.status
	}
	out, err := a.insertWebhook(c.UserContext(), w)
	a.hooks.cache.Invalidate()
	return a.send(c, fiber.Map{"webhook": toJSON(out)}, err)
}

func (a *API) listWebhooksHandler(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	max, ok, werr := r.Int("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !ok {
		max = 100
	}
	if max < 1 || max > 1000 {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "max_results must be between 1 and 1000, got %d.", max))
	}
	token, _, werr := r.Str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	offset, werr := wire.ParsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	ws, more, err := a.listWebhooks(c.UserContext(), max, offset)
	if err != nil {
		return a.send(c, nil, err)
	}
	body := struct {
		Webhooks      []*webhookJSON `json:"webhooks,omitempty"`
		NextPageToken string         `json:"next_page_token,omitempty"`
	}{}
	for _, w := range ws {
		body.Webhooks = append(body.Webhooks, toJSON(w))
	}
	if more {
		body.NextPageToken = wire.PageToken(offset + max)
	}
	return c.JSON(body)
}

func (a *API) getWebhook(c *fiber.Ctx) error {
	w, err := a.readWebhook(c.UserContext(), c.Params("webhook_id"))
	return a.send(c, fiber.Map{"webhook": toJSON(w)}, err)
}

func (a *API) updateWebhookHandler(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	p, werr := a.webhookFields(c, r)
	if werr != nil {
		return wire.Send(c, werr)
	}
	w, err := a.updateWebhook(c.UserContext(), c.Params("webhook_id"), p)
	a.hooks.cache.Invalidate()
	return a.send(c, fiber.Map{"webhook": toJSON(w)}, err)
}

func (a *API) deleteWebhookHandler(c *fiber.Ctx) error {
	err := a.deleteWebhook(c.UserContext(), c.Params("webhook_id"))
	a.hooks.cache.Invalidate()
	return a.send(c, fiber.Map{}, err)
}

// testResult is WebhookTestResult.
type testResult struct {
	Success        bool   `json:"success"`
	ResponseStatus int    `json:"response_status,omitempty"`
	ResponseBody   string `json:"response_body,omitempty"`
	ErrorMessage   string `json:"error_message,omitempty"`
}

// testWebhook sends the example payload of the requested event (default:
// the webhook's first) to the webhook, synchronously, and reports the
// answer; a failed delivery is a result, not an error.
func (a *API) testWebhook(c *fiber.Ctx) error {
	r, werr := wire.ReadRequest(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	w, err := a.readWebhook(c.UserContext(), c.Params("webhook_id"))
	if err != nil {
		return a.send(c, nil, err)
	}
	var ev webhook.Event
	event, _ := r.Value("event")
	switch e := event.(type) {
	case nil:
		if len(w.Events) > 0 {
			ev = w.Events[0]
		}
	case map[string]any:
		if ev, err = webhook.ParseEvent(e["entity"], e["action"]); err != nil {
			return wire.Send(c, invalid(err))
		}
	default:
		return wire.Send(c, r.TypeError("event"))
	}
	data, ok := webhook.Example(ev)
	if !ok {
		return c.JSON(fiber.Map{"result": testResult{ErrorMessage: fmt.Sprintf("Failed to test webhook: ValueError('Unknown event type: %s')", ev)}})
	}
	t, err := a.hooks.target(webhookTarget{w.ID, w.URL, w.secret})
	if err != nil {
		return c.JSON(fiber.Map{"result": testResult{ErrorMessage: "Failed to test webhook: " + err.Error()}})
	}
	res := a.hooks.sender.Send(c.UserContext(), t, ev, data)
	if res.Err != nil {
		return c.JSON(fiber.Map{"result": testResult{ErrorMessage: "Failed to test webhook: " + res.Err.Error()}})
	}
	return c.JSON(fiber.Map{"result": testResult{Success: res.Status < 400, ResponseStatus: res.Status, ResponseBody: res.Body}})
}

// target decrypts a stored webhook's secret for a delivery.
func (h *hooks) target(w webhookTarget) (webhook.Target, error) {
	t := webhook.Target{URL: w.url}
	if w.secret != nil && *w.secret != "" {
		s, err := h.cipher.Decrypt(*w.secret)
		if err != nil {
			return t, err
		}
		t.Secret = s
	}
	return t, nil
}

// emit queues an event after a registry write that returned err (nothing
// is sent for a failed write). On a worker it finds out whether the model
// is a prompt (known when the request said so, else looked up by name),
// picks the model or the prompt event (a zero event sends nothing), and
// queues one delivery per subscribed active webhook.
func (a *API) emit(err error, name string, known *bool, plain, prompt webhook.Event, data func(isPrompt bool) any) {
	if err != nil || a.hooks == nil {
		return
	}
	h := a.hooks
	queued := h.pool.Submit(func(ctx context.Context) {
		isPrompt := known != nil && *known
		if known == nil {
			p, err := a.modelIsPrompt(ctx, name)
			if err != nil {
				h.log.Error("webhook event dropped: cannot read the model's prompt tag", "model", name, "err", err)
				h.eventsDropped.WithLabelValues(dropLookupFail).Inc()
				return
			}
			isPrompt = p
		}
		ev := plain
		if isPrompt {
			ev = prompt
		}
		if ev == (webhook.Event{}) {
			return
		}
		targets, err := h.cache.Get(ctx, ev, func(ctx context.Context) ([]webhookTarget, error) { return a.webhooksFor(ctx, ev) })
		if err != nil {
			h.log.Error("webhook event dropped: cannot list its webhooks", "event", ev.String(), "err", err)
			h.eventsDropped.WithLabelValues(dropLookupFail).Inc()
			return
		}
		payload := data(isPrompt)
		for _, wt := range targets {
			if !h.pool.Submit(func(ctx context.Context) { h.deliver(ctx, wt, ev, payload) }) {
				h.deliveries.WithLabelValues(ev.String(), outcomeDropped).Inc()
			}
		}
	})
	if !queued {
		h.eventsDropped.WithLabelValues(dropQueueFull).Inc()
	}
}

func (h *hooks) deliver(ctx context.Context, wt webhookTarget, ev webhook.Event, payload any) {
	redacted := wt.url
	if u, err := url.Parse(wt.url); err == nil {
		redacted = u.Redacted()
	}
	t, err := h.target(wt)
	if err != nil {
		h.log.Error("webhook delivery skipped", "webhook_id", wt.id, "url", redacted, "event", ev.String(), "err", err)
		h.deliveries.WithLabelValues(ev.String(), outcomeSkipped).Inc()
		return
	}
	res := h.sender.Send(ctx, t, ev, payload)
	outcome := outcomeDelivered
	switch {
	case res.Err != nil:
		outcome = outcomeFailed
		h.log.Error("webhook delivery failed", "webhook_id", wt.id, "url", redacted, "event", ev.String(), "err", res.Err)
	case res.Status >= 400:
		outcome = outcomeRefused
		h.log.Error("webhook delivery refused", "webhook_id", wt.id, "url", redacted, "event", ev.String(), "status", res.Status)
	default:
		h.log.Debug("webhook delivered", "webhook_id", wt.id, "event", ev.String(), "status", res.Status)
	}
	h.deliveries.WithLabelValues(ev.String(), outcome).Inc()
}

func isPromptTags(tags []keyValue) bool {
	for _, t := range tags {
		if t.Key == search.PromptTag && strings.EqualFold(t.Value, "true") {
			return true
		}
	}
	return false
}

// tagMap is a request's tags as the payloads carry them (last wins, as a
// Python dict built from the list).
func tagMap(tags []keyValue, skipPromptTags bool) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		if skipPromptTags && (t.Key == search.PromptTag || t.Key == promptTextTag) {
			continue
		}
		m[t.Key] = t.Value
	}
	return m
}

func orNil(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

func ver(v int64) string { return strconv.FormatInt(v, 10) }

var (
	evModelCreated      = webhook.Event{Entity: webhook.RegisteredModel, Action: webhook.Created}
	evPromptCreated     = webhook.Event{Entity: webhook.Prompt, Action: webhook.Created}
	evVersionCreated    = webhook.Event{Entity: webhook.ModelVersion, Action: webhook.Created}
	evPromptVerCreated  = webhook.Event{Entity: webhook.PromptVersion, Action: webhook.Created}
	evPromptTagSet      = webhook.Event{Entity: webhook.PromptTag, Action: webhook.Set}
	evPromptTagDeleted  = webhook.Event{Entity: webhook.PromptTag, Action: webhook.Deleted}
	evVersionTagSet     = webhook.Event{Entity: webhook.ModelVersionTag, Action: webhook.Set}
	evVersionTagDeleted = webhook.Event{Entity: webhook.ModelVersionTag, Action: webhook.Deleted}
	evPromptVTagSet     = webhook.Event{Entity: webhook.PromptVersionTag, Action: webhook.Set}
	evPromptVTagDeleted = webhook.Event{Entity: webhook.PromptVersionTag, Action: webhook.Deleted}
	evAliasCreated      = webhook.Event{Entity: webhook.ModelVersionAlias, Action: webhook.Created}
	evAliasDeleted      = webhook.Event{Entity: webhook.ModelVersionAlias, Action: webhook.Deleted}
	evPromptAliasCreate = webhook.Event{Entity: webhook.PromptAlias, Action: webhook.Created}
	evPromptAliasDelete = webhook.Event{Entity: webhook.PromptAlias, Action: webhook.Deleted}
)

// emitModelCreated: REGISTERED_MODEL CREATED, or PROMPT CREATED for a
// model created with mlflow.prompt.is_prompt=true. The description is the
// request's ("" when absent, as upstream passes the proto field).
func (a *API) emitModelCreated(err error, name string, desc *string, tags []keyValue) {
	prompt := isPromptTags(tags)
	d := ""
	if desc != nil {
		d = *desc
	}
	a.emit(err, name, &prompt, evModelCreated, evPromptCreated, func(bool) any {
		return webhook.ModelCreated{Name: name, Tags: tagMap(tags, false), Description: &d}
	})
}

// emitVersionCreated: MODEL_VERSION CREATED, or PROMPT_VERSION CREATED
// (template from mlflow.prompt.text, the prompt's own tags left out of
// tags) for a version created with the prompt tag.
func (a *API) emitVersionCreated(err error, v *modelVersion, in versionInput, prompt bool) {
	if err != nil || v == nil {
		return
	}
	a.emit(err, in.name, &prompt, evVersionCreated, evPromptVerCreated, func(isPrompt bool) any {
		if isPrompt {
			return webhook.PromptVersionCreated{Name: in.name, Version: v.Version, Template: tagMap(in.tags, false)[promptTextTag],
				Tags: tagMap(in.tags, true), Description: orNil(in.description)}
		}
		return webhook.VersionCreated{Name: in.name, Version: v.Version, Source: in.source, RunID: orNil(in.runID),
			Tags: tagMap(in.tags, false), Description: orNil(in.description)}
	})
}

// emitModelTag: PROMPT_TAG SET/DELETED (value nil) for prompts; a
// registered model's tags have no event.
func (a *API) emitModelTag(err error, name, key string, value *string) {
	if value == nil {
		a.emit(err, name, nil, webhook.Event{}, evPromptTagDeleted, func(bool) any { return webhook.TagDeleted{Name: name, Key: key} })
		return
	}
	a.emit(err, name, nil, webhook.Event{}, evPromptTagSet, func(bool) any { return webhook.TagSet{Name: name, Key: key, Value: *value} })
}

// emitVersionTag: MODEL_VERSION_TAG or PROMPT_VERSION_TAG, SET or
// DELETED (value nil).
func (a *API) emitVersionTag(err error, name string, version int64, key string, value *string) {
	if value == nil {
		a.emit(err, name, nil, evVersionTagDeleted, evPromptVTagDeleted, func(bool) any {
			return webhook.VersionTagDeleted{Name: name, Version: ver(version), Key: key}
		})
		return
	}
	a.emit(err, name, nil, evVersionTagSet, evPromptVTagSet, func(bool) any {
		return webhook.VersionTagSet{Name: name, Version: ver(version), Key: key, Value: *value}
	})
}

// emitAlias: MODEL_VERSION_ALIAS or PROMPT_ALIAS, CREATED (version > 0)
// or DELETED.
func (a *API) emitAlias(err error, name, alias string, version int64) {
	if version == 0 {
		a.emit(err, name, nil, evAliasDeleted, evPromptAliasDelete, func(bool) any { return webhook.AliasDeleted{Name: name, Alias: alias} })
		return
	}
	a.emit(err, name, nil, evAliasCreated, evPromptAliasCreate, func(bool) any {
		return webhook.AliasCreated{Name: name, Alias: alias, Version: ver(version)}
	})
}
