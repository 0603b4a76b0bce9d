package tracing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// Trace artifacts (artifacts-api.md §5.4): traces.json and span
// attachments under the trace's artifact root (the mlflow.artifactLocation
// tag), read and deleted through the store layer.

const (
	traceDataFile  = "traces.json"
	attachmentsDir = "attachments"
)

// traceStore resolves a trace artifact root: a proxied root into the
// artifacts destination (prefix = its key there), any other through
// OpenStore (prefix ""). release ends the use.
func (a *API) traceStore(ctx context.Context, root string) (s stores.Store, prefix string, release func(), werr *wire.Error) {
	key, proxied, err := stores.ProxiedRootKey(root)
	if proxied {
		if err != nil {
			return nil, "", nil, &wire.Error{Code: wire.InvalidParameterValue, Message: "Invalid trace artifact location", Cause: err}
		}
		if a.cfg.Artifacts == nil {
			return nil, "", nil, wire.Errorf(wire.InvalidParameterValue, "The trace artifact location %s is proxied, but this server does not serve artifacts.", root)
		}
		return a.cfg.Artifacts, key, func() {}, nil
	}
	if a.cfg.OpenStore == nil {
		return nil, "", nil, wire.Errorf(wire.NotImplemented, "Reading trace artifacts of %s is not supported by this server", root)
	}
	s, release, err = a.cfg.OpenStore(ctx, root)
	if err != nil {
		return nil, "", nil, wire.FromStore(err)
	}
	return s, "", release, nil
}

// isUUID reports whether s is a canonical (8-4-4-4-12 hex) UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// getTraceArtifact is GET <ajax>/2.0|3.0/mlflow/get-trace-artifact:
// without path the trace data (spans from the spans table, else the
// stored traces.json), with path=<uuid> that attachment.
func (a *API) getTraceArtifact(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id := c.Query("request_id")
	if id == "" {
		return wire.Send(c, wire.Errorf(wire.BadRequest, `Request must include the "request_id" query parameter.`))
	}
	if werr := checkTraceID("request_id", id); werr != nil {
		return wire.Send(c, werr)
	}
	attachment, hasPath := "", c.Request().URI().QueryArgs().Has("path")
	if hasPath {
		attachment = c.Query("path")
		if !isUUID(attachment) {
			return wire.Send(c, wire.Errorf(wire.InvalidParameterValue, "Invalid attachment path: '%s'. Attachment path must be a valid UUID.", attachment))
		}
	}
	ts, spans, err := a.readFullTraces(ctx, []string{id})
	if err != nil {
		return a.send(c, nil, err)
	}
	if len(ts) == 0 {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "Trace with ID '%s' not found.", id))
	}
	t := ts[0]
	if !hasPath && len(spans[id]) > 0 {
		// TraceData.to_dict(): {"spans": [span dicts]}.
		var b bytes.Buffer
		b.WriteString(`{"spans": [`)
		for i, s := range spans[id] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.Write(s)
		}
		b.WriteString("]}")
		setAttachment(c, traceDataFile, "text/plain")
		return c.Send(b.Bytes())
	}
	root := t.Tags[artifactTagKey]
	if root == "" {
		return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "Trace data not found for trace with ID '%s': it has no artifact location.", id))
	}
	store, prefix, release, werr := a.traceStore(ctx, root)
	if werr != nil {
		return a.send(c, nil, werr)
	}
	name, ctype := traceDataFile, "text/plain"
	key := stores.JoinKey(prefix, traceDataFile)
	if hasPath {
		name, ctype = attachment, "application/octet-stream"
		key = stores.JoinKey(prefix, attachmentsDir, attachment)
	}
	r, e, err := store.Open(ctx, key, 0, -1)
	if err != nil {
		release()
		if errors.Is(err, stores.ErrNotFound) || errors.Is(err, stores.ErrIsDir) {
			if hasPath {
				return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "Attachment '%s' not found for trace '%s'.", attachment, id))
			}
			return wire.Send(c, wire.Errorf(wire.ResourceDoesNotExist, "Trace data not found for trace with ID '%s'.", id))
		}
		a.log.Error("trace artifact download failed", "trace_id", id, "err", err)
		if hasPath {
			return wire.Send(c, wire.Errorf(wire.InternalError, "Failed to download attachment '%s' for trace '%s'.", attachment, id))
		}
		return a.send(c, nil, wire.FromStore(err))
	}
	setAttachment(c, name, ctype)
	// The body streams from the store; release when fiber closes it.
	return c.SendStream(&releasingReader{ReadCloser: r, release: release}, int(e.Size))
}

func setAttachment(c *fiber.Ctx, name, ctype string) {
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderContentDisposition, "attachment; filename="+name)
	c.Set("X-Content-Type-Options", "nosniff")
}

// releasingReader ends the store's use when the body is closed.
type releasingReader struct {
	io.ReadCloser
	release func()
}

func (r *releasingReader) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

// deleteTraceArtifacts removes the artifact directories of deleted
// traces (trace id → artifact root) through the store layer. Only roots of
// the standard shape …/traces/<id>/artifacts are touched, so a tag a
// client set cannot point the deletion elsewhere. Failures are logged: the
// rows are gone, and `ferry gc` can remove the leftovers.
func (a *API) deleteTraceArtifacts(ctx context.Context, roots map[string]string) {
	for id, root := range roots {
		if root == "" {
			continue
		}
		path := root
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		if !strings.HasSuffix(path, "/traces/"+id+"/artifacts") {
			a.log.Warn("trace artifacts left in place: unusual artifact location", "trace_id", id, "location", stores.RedactURI(root))
			continue
		}
		// A proxied root deletes its key in the destination; another root
		// opens the trace's directory and deletes "artifacts" in it (a
		// store's root itself is not a key).
		open, key := root, ""
		if _, proxied, _ := stores.ProxiedRootKey(root); !proxied {
			open, key = strings.TrimSuffix(path, "/artifacts")+root[len(path):], "artifacts"
		}
		store, prefix, release, werr := a.traceStore(ctx, open)
		if werr != nil {
			a.log.Warn("trace artifacts not deleted", "trace_id", id, "location", stores.RedactURI(root), "err", werr)
			continue
		}
		if prefix != "" {
			key = prefix
		}
		if err := store.Delete(ctx, key); err != nil {
			a.log.Warn("trace artifacts not deleted", "trace_id", id, "location", stores.RedactURI(root), "err", err)
		}
		release()
	}
}
