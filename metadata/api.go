package metadata

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
)

// APIConfig configures the tracking API.
type APIConfig struct {
	// DefaultArtifactRoot is the server's --default-artifact-root
	// (mlflow-artifacts:/ when artifacts are served). New experiments get
	// <root>/<experiment id>.
	DefaultArtifactRoot string
	// ServeArtifacts is --serve-artifacts; with it run artifact URIs are
	// mlflow-artifacts:/<experiment>/<run>/artifacts.
	ServeArtifacts bool
	// Log receives 5xx errors and start-up notes.
	Log *slog.Logger
	// Artifacts is the --artifacts-destination store, nil when the server
	// does not serve artifacts. artifacts/list reads proxied run roots
	// (mlflow-artifacts:/…, http(s)://…/api/2.0/mlflow-artifacts/artifacts/…)
	// through it.
	Artifacts *stores.Instrumented
	// OpenStore opens the store of a non-proxied artifact root (s3://…, a
	// local path) for one request; the API calls release when done with
	// it. It must not create anything (listing a root that does not exist
	// finds nothing). nil refuses such listings with NOT_IMPLEMENTED.
	// stores.Opener.Acquire is the production implementation.
	OpenStore func(ctx context.Context, uri string) (s stores.Store, release func(), err error)
}

// API serves MLflow's tracking REST API from a DB.
type API struct {
	db  *DB
	cfg APIConfig
	log *slog.Logger
	now func() time.Time
}

// NewAPI builds the API and makes sure experiment 0 ("Default") exists,
// as upstream does on every store start. A failure to create it is
// logged, not fatal: the database may be momentarily unavailable, and the
// next start retries (call EnsureDefaultExperiment to fail hard instead).
func NewAPI(db *DB, cfg APIConfig) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &API{db: db, cfg: cfg, log: cfg.Log, now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.EnsureDefaultExperiment(ctx); err != nil {
		a.log.Error("could not create the Default experiment (id 0)", "err", err)
	}
	return a
}

// Register adds the tracking routes under r (the router below the static
// prefix), each under /api/2.0/mlflow and /ajax-api/2.0/mlflow.
func (a *API) Register(r fiber.Router) {
	for _, prefix := range []string{"/api/2.0/mlflow", "/ajax-api/2.0/mlflow"} {
		g := r.Group(prefix)
		g.Post("/experiments/create", a.createExperiment)
		g.Get("/experiments/get", a.getExperiment)
		g.Get("/experiments/get-by-name", a.getExperimentByName)
		g.Post("/experiments/update", a.updateExperiment)
		g.Post("/experiments/delete", a.deleteExperiment)
		g.Post("/experiments/restore", a.restoreExperiment)
		g.Post("/experiments/set-experiment-tag", a.setExperimentTag)
		g.Post("/experiments/delete-experiment-tag", a.deleteExperimentTag)
		g.Post("/runs/create", a.createRun)
		g.Get("/runs/get", a.getRun)
		g.Post("/runs/update", a.updateRun)
		g.Post("/runs/delete", a.deleteRun)
		g.Post("/runs/restore", a.restoreRun)
		g.Post("/runs/set-tag", a.setTag)
		g.Post("/runs/delete-tag", a.deleteTag)
		g.Post("/runs/log-parameter", a.logParam)
		g.Post("/runs/log-metric", a.logMetric)
		g.Post("/runs/log-batch", a.logBatch)
		g.Get("/metrics/get-history", a.getMetricHistory)
		g.Get("/experiments/search", a.searchExperiments)
		g.Post("/experiments/search", a.searchExperiments)
		g.Post("/runs/search", a.searchRuns)
		g.Post("/runs/log-inputs", a.logInputs)
		g.Post("/runs/outputs", a.logOutputs)
		// Static before dynamic: logged-models/search over {model_id}.
		g.Post("/logged-models/search", a.searchLoggedModels)
		g.Post("/logged-models", a.createLoggedModel)
		g.Get("/logged-models/:model_id", a.getLoggedModel)
		g.Patch("/logged-models/:model_id", a.finalizeLoggedModel)
		g.Delete("/logged-models/:model_id", a.deleteLoggedModel)
		g.Patch("/logged-models/:model_id/tags", a.setLoggedModelTags)
		g.Delete("/logged-models/:model_id/tags/:tag_key", a.deleteLoggedModelTag)
		g.Post("/logged-models/:model_id/params", a.logLoggedModelParams)
		g.Get("/logged-models/:model_id/artifacts/directories", a.listLoggedModelArtifacts)
		g.Get("/artifacts/list", a.listArtifacts)
		g.Get("/metrics/get-history-bulk-interval", a.getMetricHistoryBulkInterval)
		g.Post("/runs/log-model", a.logModel)
	}
}

// nowMillis is the current time in epoch milliseconds.
func (a *API) nowMillis() int64 { return a.now().UnixMilli() }
