package registry

import (
	"context"
	"log/slog"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/registry/webhook"
	"github.com/ferryml/ferry/proxy/serve"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// Config configures the registry API.
type Config struct {
	// Log receives 5xx errors.
	Log *slog.Logger
	// SourceRegex is MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX
	// (SourceRegexEnv): when set, model-version sources must match it
	// (Python re.search semantics: anywhere in the source).
	SourceRegex *regexp.Regexp
	// Webhooks configure webhook validation and delivery (nil:
	// webhook.DefaultSettings()). The API starts the delivery workers;
	// Close stops them.
	Webhooks *webhook.Settings
	// Artifacts is the --artifacts-destination store, nil when the server
	// does not serve artifacts: /model-versions/get-artifact reads
	// versions stored under a proxied root (mlflow-artifacts:/…,
	// http(s)://…/api/2.0/mlflow-artifacts/artifacts/…) through it.
	Artifacts *stores.Instrumented
	// OpenStore opens the store of any other root (s3://…, a local path)
	// for one request, as tracking's APIConfig.OpenStore (same contract;
	// nil refuses such downloads with NOT_IMPLEMENTED).
	OpenStore func(ctx context.Context, uri string) (s stores.Store, release func(), err error)
	// Metrics, when set, registers ferry_webhook_deliveries_total (see
	// webhookOutcomes) on it; nil counts into an unregistered collector.
	Metrics prometheus.Registerer
}

// API serves the model registry from a DB.
type API struct {
	db          *metadata.DB
	log         *slog.Logger
	now         func() time.Time
	sourceRegex *regexp.Regexp
	hooks       *hooks
	roots       serve.Roots
}

// NewAPI builds the registry API on db.
func NewAPI(db *metadata.DB, cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ws := webhook.DefaultSettings()
	if cfg.Webhooks != nil {
		ws = *cfg.Webhooks
	}
	return &API{db: db, log: cfg.Log, now: time.Now, sourceRegex: cfg.SourceRegex, hooks: newHooks(ws, cfg.Log, cfg.Metrics),
		roots: serve.Roots{Destination: cfg.Artifacts, Open: cfg.OpenStore}}
}

// Handlers returns the registry handlers keyed as the route table
// (package routes) keys them.
func (a *API) Handlers() routes.Handlers {
	return routes.Handlers{
		"POST /2.0/mlflow/registered-models/create":              a.createRegisteredModel,
		"GET /2.0/mlflow/registered-models/get":                  a.getRegisteredModel,
		"POST /2.0/mlflow/registered-models/rename":              a.renameRegisteredModel,
		"PATCH /2.0/mlflow/registered-models/update":             a.updateRegisteredModel,
		"DELETE /2.0/mlflow/registered-models/delete":            a.deleteRegisteredModel,
		"GET /2.0/mlflow/registered-models/search":               a.searchRegisteredModels,
		"GET /2.0/mlflow/model-versions/search":                  a.searchModelVersions,
		"GET /2.0/mlflow/registered-models/get-latest-versions":  a.getLatestVersions,
		"POST /2.0/mlflow/registered-models/get-latest-versions": a.getLatestVersions,
		"POST /2.0/mlflow/registered-models/set-tag":             a.setRegisteredModelTag,
		"DELETE /2.0/mlflow/registered-models/delete-tag":        a.deleteRegisteredModelTag,
		"POST /2.0/mlflow/registered-models/alias":               a.setAlias,
		"DELETE /2.0/mlflow/registered-models/alias":             a.deleteAlias,
		"GET /2.0/mlflow/registered-models/alias":                a.getByAlias,
		"POST /2.0/mlflow/model-versions/create":                 a.createModelVersion,
		"GET /2.0/mlflow/model-versions/get":                     a.getModelVersion,
		"PATCH /2.0/mlflow/model-versions/update":                a.updateModelVersion,
		"DELETE /2.0/mlflow/model-versions/delete":               a.deleteModelVersion,
		"POST /2.0/mlflow/model-versions/transition-stage":       a.transitionStage,
		"GET /2.0/mlflow/model-versions/get-download-uri":        a.getDownloadURI,
		"POST /2.0/mlflow/model-versions/set-tag":                a.setModelVersionTag,
		"DELETE /2.0/mlflow/model-versions/delete-tag":           a.deleteModelVersionTag,
		"POST /2.0/mlflow/webhooks":                              a.createWebhook,
		"GET /2.0/mlflow/webhooks":                               a.listWebhooksHandler,
		"GET /2.0/mlflow/webhooks/<webhook_id>":                  a.getWebhook,
		"PATCH /2.0/mlflow/webhooks/<webhook_id>":                a.updateWebhookHandler,
		"DELETE /2.0/mlflow/webhooks/<webhook_id>":               a.deleteWebhookHandler,
		"POST /2.0/mlflow/webhooks/<webhook_id>/test":            a.testWebhook,
		"GET /model-versions/get-artifact":                       a.getModelVersionArtifact,
	}
}

func (a *API) nowMillis() int64 { return a.now().UnixMilli() }

// send writes a handler result: err as an MLflow error (logged when it is
// a server fault), else body as JSON.
func (a *API) send(c *fiber.Ctx, body any, err error) error {
	if err != nil {
		we := metadata.WireError(err)
		if we.Code.Status() >= 500 {
			a.log.Error("registry request failed", "method", c.Method(), "path", c.Path(), "code", we.Code, "err", we)
		}
		return wire.Send(c, we)
	}
	return c.JSON(body)
}
