package otlp

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/sync/semaphore"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/wire"
)

// The bounds of one export request. Upstream has none; these hold any
// exporter's batch (the OpenTelemetry SDKs send at most 512 spans a batch
// by default) with room to spare.
const (
	// MaxBodyBytes caps the request body as sent and again once
	// decompressed, so a decompression bomb stops at this size.
	MaxBodyBytes = wire.MaxJSONBody
	// MaxSpans caps the spans of one request: they are written in one
	// transaction, which must stay short.
	MaxSpans = 10000
	// ingestSlots is how many requests decode and write at once; a request
	// waits up to ingestWait for a slot, then gets 503 (exporters retry it).
	// With the body caps it bounds the memory ingest can hold.
	ingestSlots = 4
	ingestWait  = 30 * time.Second
)

// ExperimentHeader names the experiment the spans go to.
const ExperimentHeader = "x-mlflow-experiment-id"

// RunHeader optionally names a run that the request's completed traces
// (those whose root span it carries) are linked to, as upstream's
// MLFLOW_RUN_ID_HEADER.
const RunHeader = "x-mlflow-run-id"

// Config configures the OTLP API.
type Config struct {
	// Log receives server-side failures.
	Log *slog.Logger
}

// API serves POST /v1/traces from a DB.
type API struct {
	db    *metadata.DB
	log   *slog.Logger
	slots *semaphore.Weighted
	// maxBody is MaxBodyBytes; tests lower it to exercise the cap cheaply.
	maxBody int
}

// NewAPI builds the OTLP ingest API on db.
func NewAPI(db *metadata.DB, cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &API{db: db, log: cfg.Log, slots: semaphore.NewWeighted(ingestSlots), maxBody: MaxBodyBytes}
}

// Handlers returns the handler keyed as the route table (package routes)
// keys it.
func (a *API) Handlers() routes.Handlers {
	return routes.Handlers{"POST /v1/traces": a.export}
}

// export is POST /v1/traces: upstream's otel_api.export_traces.
func (a *API) export(c *fiber.Ctx) error {
	// FastAPI checks the required header before the handler runs, with its
	// own validation error.
	expID, ok := header(c, ExperimentHeader)
	if !ok {
		return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{"detail": []fiber.Map{{
			"type": "missing", "loc": []string{"header", ExperimentHeader}, "msg": "Field required", "input": nil,
		}}})
	}
	ct, hasCT := header(c, fiber.HeaderContentType)
	media, _, _ := strings.Cut(ct, ";")
	media = strings.TrimSpace(media)
	if media != "application/x-protobuf" && media != "application/json" {
		shown := ct
		if !hasCT {
			shown = "None"
		}
		return detail(c, fiber.StatusBadRequest, fmt.Sprintf("Invalid Content-Type: %s. Expected: application/x-protobuf or application/json", shown))
	}
	if cl := c.Request().Header.ContentLength(); cl > a.maxBody {
		wire.LingerAfterAnswer(c) // so a client still sending reads the 413
		return detail(c, fiber.StatusRequestEntityTooLarge, tooLarge(a.maxBody))
	}
	raw, werr := wire.ReadBody(c, int64(a.maxBody))
	if werr != nil {
		if werr.Code == wire.InvalidParameterValue { // over the cap while reading a chunked body
			// ReadBody lingers after the answer.
			return detail(c, fiber.StatusRequestEntityTooLarge, tooLarge(a.maxBody))
		}
		return wire.Send(c, werr)
	}

	ctx := c.UserContext()
	wctx, cancel := context.WithTimeout(ctx, ingestWait)
	err := a.slots.Acquire(wctx, 1)
	cancel()
	if err != nil {
		return wire.Send(c, wire.Errorf(wire.TemporarilyUnavailable, "The server is busy ingesting other traces; retry later."))
	}
	defer a.slots.Release(1)

	body, status, msg := decompress(raw, c.Get(fiber.HeaderContentEncoding), a.maxBody)
	if status != 0 {
		return detail(c, status, msg)
	}
	req, status, msg := parse(body, media == "application/json")
	if status != 0 {
		return detail(c, status, msg)
	}

	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	if n > MaxSpans {
		return detail(c, fiber.StatusRequestEntityTooLarge,
			fmt.Sprintf("Too many spans in one request: %d (limit %d). Export smaller batches.", n, MaxSpans))
	}
	rows, aggs, err := convert(req)
	if err != nil {
		return detail(c, fiber.StatusUnprocessableEntity, "Cannot convert OpenTelemetry span to MLflow span")
	}
	if len(rows) > 0 {
		runID, _ := header(c, RunHeader)
		if err := a.ingest(ctx, expID, runID, rows, aggs); err != nil {
			we := metadata.WireError(err)
			if we.Code.Status() >= 500 {
				a.log.Error("OTLP ingest failed", "experiment_id", expID, "spans", len(rows), "code", we.Code, "err", we)
			}
			return wire.Send(c, we)
		}
	}
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	c.Set(fiber.HeaderContentType, "application/x-protobuf")
	return c.Status(fiber.StatusOK).Send(out)
}

// tooLarge is the 413 message for a body over limit bytes.
func tooLarge(limit int) string {
	return fmt.Sprintf("Request body too large: the limit is %d MiB, compressed or not.", limit>>20)
}

// header returns a request header and whether it was sent at all.
func header(c *fiber.Ctx, name string) (string, bool) {
	v := c.Request().Header.Peek(name)
	if v == nil {
		return "", false
	}
	return string(v), true
}

// detail answers as FastAPI's HTTPException does: {"detail": msg}.
func detail(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"detail": msg})
}

// decompress applies the Content-Encoding (upstream's decompress_otlp_body:
// gzip, deflate as zlib or raw), stopping at limit bytes of output.
func decompress(raw []byte, encoding string, limit int) ([]byte, int, string) {
	if encoding == "" {
		return raw, 0, ""
	}
	switch enc := strings.ToLower(encoding); enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fiber.StatusBadRequest, "Failed to decompress gzip payload"
		}
		return inflate(zr, "gzip", limit)
	case "deflate":
		if zr, err := zlib.NewReader(bytes.NewReader(raw)); err == nil {
			if out, st, msg := inflate(zr, "deflate", limit); st != fiber.StatusBadRequest {
				return out, st, msg
			}
		}
		return inflate(flate.NewReader(bytes.NewReader(raw)), "deflate", limit)
	default:
		return nil, fiber.StatusBadRequest, "Unsupported Content-Encoding: " + enc
	}
}

// inflate reads a decompressing reader to its end, at most limit bytes.
func inflate(r io.ReadCloser, name string, limit int) ([]byte, int, string) {
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fiber.StatusBadRequest, "Failed to decompress " + name + " payload"
	}
	if len(out) > limit {
		return nil, fiber.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	return out, 0, ""
}

// parse decodes an export request, protobuf or OTLP JSON, with upstream's
// two 400s. Unknown JSON fields are ignored, as upstream's parser does.
func parse(body []byte, isJSON bool) (*collectorpb.ExportTraceServiceRequest, int, string) {
	req := &collectorpb.ExportTraceServiceRequest{}
	var err error
	if isJSON {
		var b []byte
		if !utf8.Valid(body) {
			// encoding/json would turn bad bytes into U+FFFD and let
			// altered names into the store; upstream's json.loads refuses.
			err = errBadJSON
		} else if b, err = hexIDsToBase64(body); err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, req)
		}
	} else {
		err = proto.Unmarshal(body, req)
	}
	if err != nil {
		return nil, fiber.StatusBadRequest, "Invalid OpenTelemetry format"
	}
	if len(req.GetResourceSpans()) == 0 {
		return nil, fiber.StatusBadRequest, "Invalid OpenTelemetry format - no spans found"
	}
	return req, 0, ""
}
