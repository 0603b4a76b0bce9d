package tracing

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// Config configures the tracing API.
type Config struct {
	// Log receives 5xx errors and failed artifact deletions.
	Log *slog.Logger
	// Artifacts is the --artifacts-destination store (nil when the
	// server does not serve artifacts): trace artifact roots under
	// mlflow-artifacts:/ resolve into it.
	Artifacts stores.Store
	// OpenStore opens the store of a non-proxied trace artifact root
	// (s3://…, a local path); release ends the use. Nil: such roots are
	// not served.
	OpenStore func(ctx context.Context, uri string) (s stores.Store, release func(), err error)
}

// API serves the trace routes from a DB.
type API struct {
	db  *metadata.DB
	log *slog.Logger
	cfg Config
	now func() time.Time
}

// NewAPI builds the tracing API on db.
func NewAPI(db *metadata.DB, cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &API{db: db, log: cfg.Log, cfg: cfg, now: time.Now}
}

// Handlers returns the tracing handlers keyed as the route table (package
// routes) keys them.
func (a *API) Handlers() routes.Handlers {
	return routes.Handlers{
		"POST /3.0/mlflow/traces":                                          a.startTraceV3,
		"GET /3.0/mlflow/traces/<trace_id>":                                a.getTraceInfoV3,
		"GET /3.0/mlflow/traces/get":                                       a.getTrace,
		"GET /3.0/mlflow/traces/batchGet":                                  a.batchGetTraces,
		"POST /3.0/mlflow/traces/batchGetInfos":                            a.batchGetTraceInfos,
		"POST /3.0/mlflow/traces/search":                                   a.searchTracesV3,
		"POST /3.0/mlflow/traces/delete-traces":                            a.deleteTracesRoute,
		"POST /3.0/mlflow/traces/calculate-filter-correlation":             a.calculateFilterCorrelation,
		"POST /3.0/mlflow/traces/metrics":                                  a.queryTraceMetrics,
		"POST /2.0/mlflow/traces/delete-traces":                            a.deleteTracesRoute,
		"PATCH /3.0/mlflow/traces/<trace_id>/tags":                         a.setTraceTag,
		"DELETE /3.0/mlflow/traces/<trace_id>/tags":                        a.deleteTraceTag,
		"PATCH /2.0/mlflow/traces/<request_id>/tags":                       a.setTraceTag,
		"DELETE /2.0/mlflow/traces/<request_id>/tags":                      a.deleteTraceTag,
		"POST /2.0/mlflow/traces/link-to-run":                              a.linkTracesToRun,
		"POST /2.0/mlflow/traces/link-prompts":                             a.linkPromptsToTrace,
		"POST /2.0/mlflow/traces":                                          a.startTraceV2,
		"PATCH /2.0/mlflow/traces/<request_id>":                            a.endTraceV2Route,
		"GET /2.0/mlflow/traces/<request_id>/info":                         a.getTraceInfoV2,
		"GET /2.0/mlflow/traces":                                           a.searchTracesV2,
		"POST /3.0/mlflow/traces/<trace_id>/assessments":                   a.createAssessment,
		"GET /3.0/mlflow/traces/<trace_id>/assessments/<assessment_id>":    a.getAssessment,
		"PATCH /3.0/mlflow/traces/<trace_id>/assessments/<assessment_id>":  a.updateAssessment,
		"DELETE /3.0/mlflow/traces/<trace_id>/assessments/<assessment_id>": a.deleteAssessment,
		"GET /2.0/mlflow/get-trace-artifact":                               a.getTraceArtifact,
		"GET /3.0/mlflow/get-trace-artifact":                               a.getTraceArtifact,
	}
}

func (a *API) nowMillis() int64 { return a.now().UnixMilli() }

// send writes a handler result: err as an MLflow error (logged when it is
// a server fault), else body as JSON.
func (a *API) send(c *fiber.Ctx, body any, err error) error {
	if err != nil {
		we := metadata.WireError(err)
		if we.Code.Status() >= 500 {
			a.log.Error("tracing request failed", "method", c.Method(), "path", c.Path(), "code", we.Code, "err", we)
		}
		return wire.Send(c, we)
	}
	return c.JSON(body)
}

// traceIDParam is the trace id of a route's URL (<trace_id> on v3,
// <request_id> on v2: the id always comes from the URL).
func traceIDParam(c *fiber.Ctx) (string, *wire.Error) {
	id := c.Params("trace_id")
	if id == "" {
		id = c.Params("request_id")
	}
	if werr := checkTraceID("trace_id", id); werr != nil {
		return "", werr
	}
	return id, nil
}
