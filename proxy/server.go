// Package proxy is Ferry's HTTP front: the fiber app, its middleware
// (request ids, access logs, HTTP metrics, upstream's security middleware
// — Host and Origin checks, CORS, security headers — and workspace-header
// check, connection timeouts and body limits), the server routes (/health, /version,
// server-info, /metrics) and every mlflow-artifacts route under /api/2.0
// and /ajax-api/2.0. Handlers are thin: they validate, call a store (or the
// multipart/presign glue) and encode the answer.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/ferryml/ferry/config"
	"github.com/ferryml/ferry/proxy/serve"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// MLflowVersion is the upstream MLflow version whose REST API Ferry
// implements; /version reports it because clients gate features on it.
const MLflowVersion = "3.11.2.dev0"

// VersionHeader carries Ferry's own version on every response.
const VersionHeader = "X-Ferry-Version"

// Options wires the app.
type Options struct {
	Config *config.Config
	// Artifacts is the --artifacts-destination store; nil when artifacts
	// are not served.
	Artifacts *stores.Instrumented
	// API holds the handlers of the tracking-side domains, keyed by
	// routes.Route.Key; routes of the table without a handler answer 501
	// NOT_IMPLEMENTED, paths outside the table 404 ENDPOINT_NOT_FOUND.
	API routes.Handlers
	// StoreType is what server-info reports ("SqlStore").
	StoreType string
	// Registry and Gatherer expose /metrics.
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
	// FerryVersion is Ferry's own version string.
	FerryVersion string
	// BaseContext is canceled when shutdown gives up waiting; every request
	// context derives from it so stuck transfers stop.
	BaseContext context.Context
	// JSONQueueWait is how long a JSON request waits for room in the JSON
	// memory budget before it is refused with 503; 0 means 30 s.
	JSONQueueWait time.Duration
	// TransferQueueWait is how long an upload waits for room in the
	// transfer memory budget before it is refused with 503; 0 means 30 s.
	TransferQueueWait time.Duration
}

// Server is the configured fiber app.
type Server struct {
	App    *fiber.App
	opts   Options
	http   *httpMetrics
	sec    *security
	limits wire.Limits
	xFrame string
}

// defaultQueueWait is how long a JSON request, or an upload, waits for
// room in its memory budget before it is refused with 503 (which clients
// retry).
const defaultQueueWait = 30 * time.Second

// New builds the app and registers every route. Zero timeouts in the
// config take their defaults; a zero memory limit (JSONMemoryLimit,
// TransferMemoryLimit) means no bound.
func New(opts Options) (*Server, error) {
	if opts.BaseContext == nil {
		opts.BaseContext = context.Background()
	}
	if opts.StoreType == "" {
		opts.StoreType = "SqlStore"
	}
	cfg := opts.Config
	sec, err := newSecurity(cfg, opts.Log)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, http: newHTTPMetrics(opts.Registry), sec: sec, xFrame: cfg.Security.XFrameOptions}
	s.limits.StallTimeout = orDefault(cfg.BodyStallTimeout, config.DefaultBodyStallTimeout)
	s.limits.MinRate = cfg.BodyMinRate
	if cfg.JSONMemoryLimit > 0 {
		s.limits.JSON = wire.NewBudget(cfg.JSONMemoryLimit, orDefault(opts.JSONQueueWait, defaultQueueWait))
	}
	if cfg.TransferMemoryLimit > 0 {
		s.limits.Transfer = wire.NewBudget(cfg.TransferMemoryLimit, orDefault(opts.TransferQueueWait, defaultQueueWait))
		registerTransferBudget(opts.Registry, s.limits.Transfer)
	}
	s.App = fiber.New(fiber.Config{
		AppName:               "ferry",
		DisableStartupMessage: true,
		// Artifact bodies are read as streams: after an 8 KiB prefetch
		// fasthttp hands the handler the connection, whatever the size.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    wire.MaxJSONBody,
		// MLflow's routes are case-sensitive, and a trailing slash is a
		// different route (…/artifacts/ matches no download rule).
		CaseSensitive: true,
		StrictRouting: true,
		// ReadTimeout covers a request's headers (and the first 8 KiB of
		// its body); body reads then run under the stall timeout that
		// wire.RequestBody pushes forward, so large transfers never hit a
		// whole-request deadline.
		ReadTimeout:     orDefault(cfg.ReadHeaderTimeout, config.DefaultReadHeaderTimeout),
		WriteTimeout:    0,
		IdleTimeout:     orDefault(cfg.IdleTimeout, config.DefaultIdleTimeout),
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 64 << 10,
		ErrorHandler:    s.errorHandler,
	})
	s.App.Use(s.middleware)

	root := s.App.Group(opts.Config.StaticPrefix)
	own := routes.Handlers{
		"GET /health":                 func(c *fiber.Ctx) error { return c.SendString("OK") },
		"GET /version":                func(c *fiber.Ctx) error { return c.SendString(MLflowVersion) },
		"GET /3.0/mlflow/server-info": s.serverInfo,
		"GET /metrics":                s.metricsHandler(),
	}
	for k, h := range s.artifactHandlers() {
		own[k] = h
	}
	if !opts.Config.ArtifactsOnly {
		routes.All.Mount(root, s.App, routes.Merge(own, opts.API), nil)
		return s, nil
	}
	// --artifacts-only: every tracking route answers upstream's 503 text,
	// whatever its path (server-info, mounted first, excepted), and so does
	// /model-versions/get-artifact, which upstream guards too.
	prefix := opts.Config.StaticPrefix
	own["GET /model-versions/get-artifact"] = gateHandler([]string{prefix + "/model-versions/get-artifact"}, artifactsOnlyWhy)
	routes.All.Mount(root, s.App, own, func(rt routes.Route) bool { return rt.Area == "server" || !underMLflow(rt) })
	for _, api := range []string{"/api", "/ajax-api"} {
		for _, v := range []string{"/2.0/mlflow", "/3.0/mlflow"} {
			root.All(api+v+"/*", func(c *fiber.Ctx) error {
				return gateResponse(c, prefix+strings.TrimPrefix(c.Path(), prefix), artifactsOnlyWhy)
			})
		}
	}
	return s, nil
}

// artifactsOnlyWhy ends upstream's 503 text for a route --artifacts-only
// disables.
const artifactsOnlyWhy = "running in `--artifacts-only` mode. To enable tracking server functionality, run `mlflow server` without `--artifacts-only`"

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// underMLflow reports whether rt is served below /{api,ajax-api}/{2,3}.0/mlflow/,
// the paths the --artifacts-only gate covers.
func underMLflow(rt routes.Route) bool {
	return (rt.Mount == routes.APIAndAjax || rt.Mount == routes.Ajax) &&
		(strings.HasPrefix(rt.Path, "/2.0/mlflow/") || strings.HasPrefix(rt.Path, "/3.0/mlflow/"))
}

// gateResponse is upstream's plain-text 503 for a disabled route.
func gateResponse(c *fiber.Ctx, rule, why string) error {
	c.Set(fiber.HeaderContentType, "text/html; charset=utf-8")
	return c.Status(fiber.StatusServiceUnavailable).SendString(fmt.Sprintf("Endpoint: %s disabled due to the mlflow server %s", rule, why))
}

func (s *Server) serverInfo(c *fiber.Ctx) error {
	info := fiber.Map{"store_type": s.opts.StoreType, "workspaces_enabled": false}
	if s.opts.Config.ArtifactsOnly {
		info["store_type"] = nil
	}
	return c.JSON(info)
}

func (s *Server) metricsHandler() fiber.Handler {
	h := promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{})
	return func(c *fiber.Ctx) error {
		fasthttpadaptor.NewFastHTTPHandler(h)(c.Context())
		return nil
	}
}

// requestIDHeader is read from clients (and proxies) and echoed back.
const requestIDHeader = "X-Request-Id"

type ctxKey struct{}

// RequestID returns the request id stored in ctx by the middleware.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// middleware gives every request an id, a context that dies with the
// server, security headers, upstream's workspace check, an access-log line
// and HTTP metrics. It also turns panics into 500s.
func (s *Server) middleware(c *fiber.Ctx) (err error) {
	start := time.Now()
	id := c.Get(requestIDHeader)
	if id == "" || len(id) > 128 {
		id = uuid.NewString()
	}
	ctx, cancel := context.WithCancel(context.WithValue(s.opts.BaseContext, ctxKey{}, id))
	// The context ends with the request, unless a handler hands a streamed
	// body to fasthttp (sendStream): then it ends when that body is closed.
	defer serve.Guard(c, cancel)()
	c.SetUserContext(ctx)
	self := c.Route()
	c.Set(requestIDHeader, id)
	c.Set(VersionHeader, s.opts.FerryVersion)
	c.Set("X-Content-Type-Options", "nosniff")
	if s.xFrame != "" {
		c.Set("X-Frame-Options", s.xFrame)
	}
	wire.SetLimits(c, &s.limits)
	s.http.inFlight.Inc()
	defer func() {
		if r := recover(); r != nil {
			s.opts.Log.ErrorContext(ctx, "panic in handler", "request_id", id, "panic", fmt.Sprint(r))
			err = wire.Send(c, wire.Errorf(wire.InternalError, "Internal server error"))
		}
		wire.ReleaseBody(c)
		s.http.inFlight.Dec()
		if err != nil {
			if herr := s.errorHandler(c, err); herr != nil {
				s.opts.Log.Error("writing error response", "err", herr)
			}
			err = nil
		}
		s.observe(c, id, start, c.Route() == self)
	}()

	if s.sec.check(c) {
		return nil
	}
	if ws := strings.TrimSpace(c.Get("X-MLFLOW-WORKSPACE")); ws != "" && !strings.HasSuffix(c.Path(), "/mlflow/server-info") {
		return wire.Send(c, wire.Errorf(wire.FeatureDisabled, "Workspace APIs are not available: workspaces are not enabled on this server"))
	}
	return c.Next()
}

// observe records metrics and the access-log line once the handler is done.
func (s *Server) observe(c *fiber.Ctx, id string, start time.Time, unmatched bool) {
	route := "unmatched"
	if r := c.Route(); !unmatched && r != nil && r.Method != "USE" && r.Path != "" {
		route = r.Path
	}
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	// fiber's Method aliases the connection's header buffer, which the next
	// request overwrites; a label value must own its bytes.
	method := strings.Clone(c.Method())
	s.http.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.http.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
	level := slog.LevelInfo
	if status >= 500 && status != fiber.StatusNotImplemented {
		level = slog.LevelError
	}
	if route == "/metrics" || strings.HasSuffix(route, "/health") {
		level = slog.LevelDebug
	}
	s.opts.Log.Log(c.UserContext(), level, "request",
		"request_id", id, "method", c.Method(), "path", c.Path(), "route", route,
		"status", status, "duration_ms", elapsed.Milliseconds(), "remote", c.IP())
}

// errorHandler renders any error as MLflow error JSON.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var we *wire.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &we):
	case errors.As(err, &fe):
		switch fe.Code {
		case fiber.StatusNotFound:
			we = wire.Errorf(wire.EndpointNotFound, "No endpoint %s %s", c.Method(), c.Path())
		case fiber.StatusMethodNotAllowed:
			c.Status(fe.Code)
			return c.JSON(wire.Body{ErrorCode: wire.BadRequest, Message: "Method not allowed"})
		case fiber.StatusRequestEntityTooLarge:
			we = wire.Errorf(wire.InvalidParameterValue, "Request body too large")
		default:
			if fe.Code >= 400 && fe.Code < 500 {
				c.Status(fe.Code)
				return c.JSON(wire.Body{ErrorCode: wire.BadRequest, Message: fe.Message})
			}
			we = &wire.Error{Code: wire.InternalError, Message: "Internal server error", Cause: err}
		}
	default:
		we = &wire.Error{Code: wire.InternalError, Message: "Internal server error", Cause: err}
	}
	if st := we.Code.Status(); st >= 500 && st != fiber.StatusNotImplemented {
		s.opts.Log.ErrorContext(c.UserContext(), "request failed", "request_id", RequestID(c.UserContext()),
			"path", c.Path(), "code", we.Code, "err", we)
	} else if we.Cause != nil {
		s.opts.Log.InfoContext(c.UserContext(), "request refused", "request_id", RequestID(c.UserContext()),
			"path", c.Path(), "code", we.Code, "err", we)
	}
	return wire.Send(c, we)
}

// httpMetrics are the per-route HTTP collectors.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// registerTransferBudget exports the transfer memory budget's use, so
// that an operator sees uploads queueing before clients see 503s.
func registerTransferBudget(reg prometheus.Registerer, b *wire.Budget) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_transfer_memory_reserved_bytes",
			Help: "Memory reserved by running artifact uploads for their part buffers (see --max-transfer-memory).",
		}, func() float64 { return float64(b.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_transfer_memory_limit_bytes",
			Help: "The --max-transfer-memory budget.",
		}, func() float64 { return float64(b.Size()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ferry_transfer_memory_refusals_total",
			Help: "Artifact uploads refused with 503 after waiting for transfer memory.",
		}, func() float64 { return float64(b.Refused()) }),
	)
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method, until the handler returns (streamed bodies may continue).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_http_requests_in_flight",
			Help: "HTTP requests currently being handled.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}
