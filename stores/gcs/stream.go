package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/ferryml/ferry/stores"
)

// streams reports whether an upload of size bytes goes as one streamed
// request (streamPut) rather than through the library's chunked Writer:
// a known size of at least one chunk (smaller objects are one buffered
// request anyway) and below MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE,
// the size from which the S3 driver, too, writes in retryable parts.
func (s *Store) streams(size int64) bool {
	return size >= int64(s.cfg.UploadChunkSize) && size < s.cfg.MultipartThreshold
}

// sessionAttempts bounds the tries of a resumable session's start (no
// body has been read yet, so it can be repeated).
const sessionAttempts = 4

// streamPut uploads the size bytes of src as a resumable upload whose one
// PUT carries the whole object, read from src as it is sent: nothing is
// buffered, and GCS (or its emulator) hashes the object once instead of
// once per chunk. The object exists only once all size bytes have
// arrived (the PUT's Content-Range declares the total), so a body that
// fails or ends early leaves nothing; the session is then cancelled. A
// failure is not resumed: the bytes already sent are not kept, so the
// client gets the error and sends the file again, as with a single S3
// PUT below the multipart threshold.
func (s *Store) streamPut(ctx context.Context, key string, src *sourceReader, size int64) error {
	name := s.objectName(key)
	session, err := s.startSession(ctx, name, contentType(key), size)
	if err != nil {
		return s.fail("put", key, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPut, session, readerOnly{src})
	if err != nil {
		return s.fail("put", key, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", size-1, size))
	resp, err := s.hc.Do(req)
	if err == nil {
		err = uploadResponse(resp)
	} else {
		err = withoutURL(err)
	}
	if err == nil {
		return nil
	}
	cancel()
	s.cancelSession(ctx, session)
	switch {
	case src.short:
		return fmt.Errorf("put %s: got %d of %d bytes: %w", key, src.read, size, stores.ErrIncomplete)
	case src.err != nil:
		return fmt.Errorf("put %s: reading the upload: %w", key, src.err)
	}
	return s.fail("put", key, err)
}

// startSession opens a resumable upload of name (JSON API) and returns its
// session URI, retrying outages with the client's backoff.
func (s *Store) startSession(ctx context.Context, name, ctype string, size int64) (string, error) {
	meta, err := json.Marshal(map[string]string{"name": name, "contentType": ctype})
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: s.xmlScheme, Host: s.xmlHost, Path: "/upload/storage/v1/b/" + s.cfg.Bucket + "/o",
		RawQuery: url.Values{"uploadType": {"resumable"}, "name": {name}}.Encode()}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		session, err := s.trySession(ctx, u.String(), meta, ctype, size)
		if err == nil || attempt == sessionAttempts || !errors.Is(classify(err), stores.ErrUnavailable) {
			return session, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (s *Store) trySession(ctx context.Context, u string, meta []byte, ctype string, size int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(meta))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("X-Upload-Content-Type", ctype)
	req.Header.Set("X-Upload-Content-Length", fmt.Sprint(size))
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", withoutURL(err)
	}
	defer drainClose(resp.Body)
	if err := googleapi.CheckResponse(resp); err != nil {
		return "", err
	}
	session := resp.Header.Get("Location")
	if session == "" {
		return "", fmt.Errorf("resumable upload started without a session URI (status %d): %w", resp.StatusCode, stores.ErrUnavailable)
	}
	return session, nil
}

// uploadResponse checks the answer to the PUT that should finish the
// upload: 200 or 201 with the object; 308 (GCS kept fewer bytes than the
// total) is an incomplete upload.
func uploadResponse(resp *http.Response) error {
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusPermanentRedirect {
		return fmt.Errorf("upload not finalised (status 308, GCS has %q): %w", resp.Header.Get("Range"), stores.ErrUnavailable)
	}
	return googleapi.CheckResponse(resp)
}

// cancelSession ends an upload session that will not be finished, so
// that GCS drops what it kept of it (it would otherwise keep it for a
// week). Best effort: the object was never created either way.
func (s *Store) cancelSession(ctx context.Context, session string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodDelete, session, nil)
	if err != nil {
		return
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		s.logger().Debug("gcs: could not cancel an upload session", "error", withoutURL(err).Error())
		return
	}
	drainClose(resp.Body)
}

// drainClose reads a little of a response body before closing it, so the
// connection can be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// withoutURL drops the request URL from a transport error: a session URI
// is a bearer credential for its upload (anyone holding it may write the
// object), so it must not reach logs or clients. What remains is an
// outage, or the context's end.
func withoutURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	inner := fmt.Errorf("%s upload session: %w", ue.Op, ue.Err)
	if errors.Is(inner, context.Canceled) || errors.Is(inner, context.DeadlineExceeded) {
		return inner
	}
	return join(stores.ErrUnavailable, inner)
}
