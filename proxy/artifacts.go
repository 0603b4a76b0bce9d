package proxy

import (
	"errors"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/multipart"
	"github.com/ferryml/ferry/presign"
	"github.com/ferryml/ferry/proxy/serve"
	"github.com/ferryml/ferry/routes"
	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// artifactHandlers are the handlers of the mlflow-artifacts routes, keyed
// as the route table keys them. Without --serve-artifacts each answers
// upstream's 503 text naming its Flask rule.
func (s *Server) artifactHandlers() routes.Handlers {
	byKey := map[string]fiber.Handler{
		"GET /2.0/mlflow-artifacts/artifacts":                          s.list,
		"GET /2.0/mlflow-artifacts/artifacts/<path:artifact_path>":     s.download,
		"PUT /2.0/mlflow-artifacts/artifacts/<path:artifact_path>":     s.upload,
		"DELETE /2.0/mlflow-artifacts/artifacts/<path:artifact_path>":  s.delete,
		"POST /2.0/mlflow-artifacts/mpu/create/<path:artifact_path>":   s.mpuCreate,
		"POST /2.0/mlflow-artifacts/mpu/complete/<path:artifact_path>": s.mpuComplete,
		"POST /2.0/mlflow-artifacts/mpu/abort/<path:artifact_path>":    s.mpuAbort,
		"GET /2.0/mlflow-artifacts/presigned/<path:artifact_path>":     s.presigned,
	}
	hs := routes.Handlers{}
	for _, rt := range routes.All {
		h, ok := byKey[rt.Key()]
		if !ok {
			continue
		}
		switch {
		case !s.opts.Config.ServeArtifacts || s.opts.Artifacts == nil:
			h = gateHandler(rt.URLs(s.opts.Config.StaticPrefix), "running with `--no-serve-artifacts`. To enable artifacts server functionality, run `mlflow server` with `--serve-artifacts`")
		case strings.HasSuffix(rt.Path, "<path:artifact_path>"):
			h = requirePath(h)
		}
		hs[rt.Key()] = h
	}
	return hs
}

// gateHandler answers upstream's 503 text for a disabled route; urls are
// its /api and /ajax-api rules, and the text names the one requested.
func gateHandler(urls []string, why string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		rule := urls[0]
		if len(urls) > 1 && strings.Contains(c.Path(), "/ajax-api/") {
			rule = urls[1]
		}
		return gateResponse(c, rule, why)
	}
}

// pathKey is where requirePath leaves the validated key.
const pathKey = "artifact_key"

// requirePath validates the <path:artifact_path> part of the URL (still
// percent-encoded as it came off the wire; SafePath decodes it) and stores
// the clean key. An empty path matches no upstream rule: 404.
func requirePath(next fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		raw := c.Params("*")
		if raw == "" {
			return fiber.ErrNotFound
		}
		key, err := stores.SafePath(raw)
		if err != nil || key == "" {
			return wire.InvalidPath(err)
		}
		c.Locals(pathKey, key)
		return next(c)
	}
}

func key(c *fiber.Ctx) string { return c.Locals(pathKey).(string) }

// fileInfo is MLflow's FileInfo; file_size is omitted for directories and
// for empty files, as upstream only sets it when truthy.
type fileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

type listResponse struct {
	Files []fileInfo `json:"files,omitempty"`
}

// list is GET mlflow-artifacts/artifacts?path=: basenames of the direct
// children, sorted; {} when there are none.
func (s *Server) list(c *fiber.Ctx) error {
	dir := ""
	if raw := c.Query("path"); raw != "" {
		k, err := stores.SafePath(raw)
		if err != nil {
			return wire.InvalidPath(err)
		}
		dir = k
	}
	var resp listResponse
	page := stores.ListPage{}
	for {
		l, err := s.opts.Artifacts.List(c.UserContext(), dir, page)
		if err != nil {
			return wire.FromStore(err)
		}
		for _, e := range l.Entries {
			fi := fileInfo{Path: stores.BaseName(e.Key), IsDir: e.IsDir}
			if !e.IsDir {
				fi.FileSize = e.Size
			}
			resp.Files = append(resp.Files, fi)
		}
		if l.NextAfter == "" {
			break
		}
		page.After = l.NextAfter
	}
	return c.JSON(resp)
}

// download is GET mlflow-artifacts/artifacts/<path>: streams the object
// with upstream's headers (the raw basename as the attachment name), and
// honours a single HTTP Range.
func (s *Server) download(c *fiber.Ctx) error {
	return serve.File(c, s.opts.Artifacts, key(c), serve.RawName, nil)
}

// maxDrainAfterError bounds how much of a failed upload's body is read
// and thrown away so that the client sees the error response.
const maxDrainAfterError = 256 << 20

// upload is PUT mlflow-artifacts/artifacts/<path>: the body streams into
// the store with its announced size; the store commits it only whole.
func (s *Server) upload(c *fiber.Ctx) error {
	req := c.Request()
	size := int64(req.Header.ContentLength())
	if size < 0 {
		size = -1 // chunked (-1) or no length at all (-2, no body)
		if req.Header.ContentLength() == -2 {
			size = 0
		}
	}
	body := wire.RequestBody(c)
	// The part buffers the store will hold count against
	// --max-transfer-memory; an upload that finds no room waits, then gets
	// 503 (which clients retry). Nothing is reserved before the body's
	// first byte: fasthttp calls the handler for a chunked body before any
	// of it arrives, and a connection that sends headers and no body must
	// hold nothing (the stall timeout ends it). One that trickles its body
	// loses its reservation to the minimum body rate (--body-min-rate);
	// one at just that rate still holds it while its body lasts.
	if need := stores.PutBuffer(s.opts.Artifacts, size); need > 0 && s.limits.Transfer != nil {
		var err error
		if body, err = wire.AwaitFirstByte(body); err != nil {
			return failUpload(c, body, size, err)
		}
		release, werr := s.limits.Transfer.Reserve(c.UserContext(), need)
		if werr != nil {
			return failUpload(c, body, size, werr)
		}
		defer release()
	}
	if err := s.opts.Artifacts.Put(c.UserContext(), key(c), body, size); err != nil {
		return failUpload(c, body, size, err)
	}
	return c.JSON(fiber.Map{})
}

// failUpload answers an upload that failed, possibly before its body was
// read (no room in the transfer budget, S3 down): it reads a bounded rest
// of the body so that the client, still sending, gets the error instead of
// a connection reset, then closes the connection. A body that could not be
// read (stalled, malformed) is not read again, and one announced larger
// than the bound is not read at all: the client would get the reset anyway.
func failUpload(c *fiber.Ctx, body io.Reader, size int64, err error) error {
	if !errors.As(err, new(*wire.BodyError)) && size <= maxDrainAfterError {
		_, _ = io.CopyN(io.Discard, body, maxDrainAfterError)
	}
	c.Set(fiber.HeaderConnection, "close")
	return wire.FromStore(err)
}

// delete is DELETE mlflow-artifacts/artifacts/<path>: recursive, and a
// missing path is not an error.
func (s *Server) delete(c *fiber.Ctx) error {
	if err := s.opts.Artifacts.Delete(c.UserContext(), key(c)); err != nil {
		return wire.FromStore(err)
	}
	return c.JSON(fiber.Map{})
}

func (s *Server) mpuCreate(c *fiber.Ctx) error {
	var req multipart.CreateRequest
	if werr := wire.DecodeRequest(c, &req); werr != nil {
		return werr
	}
	resp, werr := multipart.Create(c.UserContext(), s.opts.Artifacts, key(c), req)
	if werr != nil {
		return werr
	}
	return c.JSON(resp)
}

func (s *Server) mpuComplete(c *fiber.Ctx) error {
	var req multipart.CompleteRequest
	if werr := wire.DecodeRequest(c, &req); werr != nil {
		return werr
	}
	if werr := multipart.Complete(c.UserContext(), s.opts.Artifacts, key(c), req); werr != nil {
		return werr
	}
	return c.JSON(fiber.Map{})
}

func (s *Server) mpuAbort(c *fiber.Ctx) error {
	var req multipart.AbortRequest
	if werr := wire.DecodeRequest(c, &req); werr != nil {
		return werr
	}
	if werr := multipart.Abort(c.UserContext(), s.opts.Artifacts, key(c), req); werr != nil {
		return werr
	}
	return c.JSON(fiber.Map{})
}

func (s *Server) presigned(c *fiber.Ctx) error {
	resp, werr := presign.Download(c.UserContext(), s.opts.Artifacts, key(c), s.opts.Config.PresignedDownloadTTL)
	if werr != nil {
		return werr
	}
	return c.JSON(resp)
}
