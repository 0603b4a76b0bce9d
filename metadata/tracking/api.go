package tracking

import (
	"context"
	"log/slog"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/proxy/serve"
	"github.com/ferryml/ferry/routes"
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
	db    *metadata.DB
	cfg   APIConfig
	roots serve.Roots
	log   *slog.Logger
	now   func() time.Time
}

// NewAPI builds the API and makes sure experiment 0 ("Default") exists,
// as upstream does on every store start. A failure to create it is
// logged, not fatal: the database may be momentarily unavailable, and the
// next start retries (call EnsureDefaultExperiment to fail hard instead).
func NewAPI(db *metadata.DB, cfg APIConfig) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &API{db: db, cfg: cfg, log: cfg.Log, now: time.Now,
		roots: serve.Roots{Destination: cfg.Artifacts, Open: cfg.OpenStore}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.EnsureDefaultExperiment(ctx); err != nil {
		a.log.Error("could not create the Default experiment (id 0)", "err", err)
	}
	return a
}

// Handlers returns the tracking handlers keyed as the route table
// (package routes) keys them; the server mounts each under
// /api/2.0/mlflow and /ajax-api/2.0/mlflow.
func (a *API) Handlers() routes.Handlers {
	return routes.Handlers{
		"POST /2.0/mlflow/experiments/create":                            a.createExperiment,
		"GET /2.0/mlflow/experiments/get":                                a.getExperiment,
		"GET /2.0/mlflow/experiments/get-by-name":                        a.getExperimentByName,
		"POST /2.0/mlflow/experiments/update":                            a.updateExperiment,
		"POST /2.0/mlflow/experiments/delete":                            a.deleteExperiment,
		"POST /2.0/mlflow/experiments/restore":                           a.restoreExperiment,
		"POST /2.0/mlflow/experiments/set-experiment-tag":                a.setExperimentTag,
		"POST /2.0/mlflow/experiments/delete-experiment-tag":             a.deleteExperimentTag,
		"POST /2.0/mlflow/runs/create":                                   a.createRun,
		"GET /2.0/mlflow/runs/get":                                       a.getRun,
		"POST /2.0/mlflow/runs/update":                                   a.updateRun,
		"POST /2.0/mlflow/runs/delete":                                   a.deleteRun,
		"POST /2.0/mlflow/runs/restore":                                  a.restoreRun,
		"POST /2.0/mlflow/runs/set-tag":                                  a.setTag,
		"POST /2.0/mlflow/runs/delete-tag":                               a.deleteTag,
		"POST /2.0/mlflow/runs/log-parameter":                            a.logParam,
		"POST /2.0/mlflow/runs/log-metric":                               a.logMetric,
		"POST /2.0/mlflow/runs/log-batch":                                a.logBatch,
		"GET /2.0/mlflow/metrics/get-history":                            a.getMetricHistory,
		"GET /2.0/mlflow/experiments/search":                             a.searchExperiments,
		"POST /2.0/mlflow/experiments/search":                            a.searchExperiments,
		"POST /2.0/mlflow/runs/search":                                   a.searchRuns,
		"POST /2.0/mlflow/runs/log-inputs":                               a.logInputs,
		"POST /2.0/mlflow/runs/outputs":                                  a.logOutputs,
		"POST /2.0/mlflow/logged-models/search":                          a.searchLoggedModels,
		"POST /2.0/mlflow/logged-models":                                 a.createLoggedModel,
		"GET /2.0/mlflow/logged-models/<model_id>":                       a.getLoggedModel,
		"PATCH /2.0/mlflow/logged-models/<model_id>":                     a.finalizeLoggedModel,
		"DELETE /2.0/mlflow/logged-models/<model_id>":                    a.deleteLoggedModel,
		"PATCH /2.0/mlflow/logged-models/<model_id>/tags":                a.setLoggedModelTags,
		"DELETE /2.0/mlflow/logged-models/<model_id>/tags/<tag_key>":     a.deleteLoggedModelTag,
		"POST /2.0/mlflow/logged-models/<model_id>/params":               a.logLoggedModelParams,
		"GET /2.0/mlflow/logged-models/<model_id>/artifacts/directories": a.listLoggedModelArtifacts,
		"GET /2.0/mlflow/artifacts/list":                                 a.listArtifacts,
		"GET /2.0/mlflow/metrics/get-history-bulk-interval":              a.getMetricHistoryBulkInterval,
		"POST /2.0/mlflow/runs/log-model":                                a.logModel,
		"GET /get-artifact":                                              a.getArtifact,
		"GET /2.0/mlflow/logged-models/<model_id>/artifacts/files":       a.getLoggedModelArtifact,
	}
}

// nowMillis is the current time in epoch milliseconds.
func (a *API) nowMillis() int64 { return a.now().UnixMilli() }
