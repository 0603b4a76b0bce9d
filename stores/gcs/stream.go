package gcs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/googleapis/gax-go/v2"
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

// streamPut uploads the size bytes of src as a resumable upload whose one
// PUT carries the whole object, read from src as it is sent: nothing is
// buffered, and GCS (or its emulator) hashes the object once instead of
// once per chunk. The object exists only once all size bytes have
// arrived (the PUT's Content-Range declares the total), so a body that
// fails or ends early leaves nothing; the session is then cancelled. A
// failure is not resumed: the bytes already sent are not kept, so the
// client gets the error and sends the file again, as with a single S3
// PUT below the multipart threshold. The CRC32C of what was sent is
// checked against the object GCS reports, as the library's Writer has
// GCS check it; a mismatch deletes the object.
func (s *Store) streamPut(ctx context.Context, key string, src *sourceReader, size int64) error {
	name, ctype := s.objectName(key), contentType(key)
	session, err := s.startSession(ctx, name, ctype, size)
	if err != nil {
		return s.fail("put", key, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body := &guardedBody{r: src, crc: crc32.New(castagnoli)}
	req, err := http.NewRequestWithContext(pctx, http.MethodPut, session, body)
	if err != nil {
		return s.fail("put", key, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", size-1, size))
	req.Header.Set("Content-Type", ctype)
	resp, err := s.hc.Do(req)
	var obj finishedObject
	if err == nil {
		obj, err = uploadResponse(resp)
	}
	// The transport may still be reading the body when Do returns (an
	// early answer): stop it before src, which reads the client's
	// request, is looked at or handed back.
	body.stop()
	if err == nil {
		return s.checkSent(ctx, key, obj, body.crc.Sum32(), size)
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

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cancelTimeout bounds the cancel of a failed upload's session.
const cancelTimeout = 2 * time.Second

// guardedBody is the PUT's body: it hashes what it passes on and, once
// stopped, reads no more, so that no transport goroutine touches the
// client's request after streamPut returns. stop waits for a read in
// progress (at most the client's stall timeout).
type guardedBody struct {
	mu      sync.Mutex
	r       io.Reader
	crc     hash.Hash32
	stopped bool
}

var errBodyStopped = errors.New("upload body no longer read")

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return 0, errBodyStopped
	}
	n, err := g.r.Read(p)
	g.crc.Write(p[:n])
	return n, err
}

func (g *guardedBody) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// finishedObject is what GCS answers a finished upload with (the fields
// checked).
type finishedObject struct {
	Size   string `json:"size"`
	CRC32C string `json:"crc32c"`
}

// checkSent compares the object GCS stored with what was sent; on a
// mismatch the object is deleted and the upload fails (the client
// retries it).
// A successful PUT has sent exactly size bytes (sourceReader never ends
// early, and the transport refuses a body shorter than its length).
func (s *Store) checkSent(ctx context.Context, key string, obj finishedObject, crc uint32, size int64) error {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if (obj.Size == "" || obj.Size == strconv.FormatInt(size, 10)) && (obj.CRC32C == "" || obj.CRC32C == want) {
		return nil
	}
	err := fmt.Errorf("put %s: GCS stored size %s, crc32c %s; sent %d bytes, crc32c %s: %w", key, obj.Size, obj.CRC32C, size, want, stores.ErrUnavailable)
	if derr := s.bucket.Object(s.objectName(key)).Delete(context.WithoutCancel(ctx)); derr != nil {
		s.logger().Error("gcs: could not delete an object that arrived corrupted", "key", key, "error", classify(derr).Error())
	}
	return err
}

// startSession opens a resumable upload of name (JSON API) and returns its
// session URI, retrying outages as the library's calls are retried (no
// body has been read yet, so the start can be repeated).
func (s *Store) startSession(ctx context.Context, name, ctype string, size int64) (string, error) {
	meta, err := json.Marshal(map[string]string{"name": name, "contentType": ctype})
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: s.xmlScheme, Host: s.xmlHost, Path: "/upload/storage/v1/b/" + s.cfg.Bucket + "/o",
		RawQuery: url.Values{"uploadType": {"resumable"}, "name": {name}}.Encode()}
	bo := retryBackoff()
	for attempt := 1; ; attempt++ {
		session, err := s.trySession(ctx, u.String(), meta, ctype, size)
		if err == nil || attempt == retryAttempts || !errors.Is(classify(err), stores.ErrUnavailable) {
			return session, err
		}
		if err := gax.Sleep(ctx, bo.Pause()); err != nil {
			return "", err
		}
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
		return "", err
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
// upload: 200 or 201 with the object. A 308 (GCS kept fewer bytes than
// the total) and a 404 or 410 (the session is gone, as after an
// emulator's restart) are outages the client may retry, not a missing
// artifact.
func uploadResponse(resp *http.Response) (finishedObject, error) {
	defer drainClose(resp.Body)
	var obj finishedObject
	switch resp.StatusCode {
	case http.StatusPermanentRedirect:
		return obj, fmt.Errorf("upload not finalised (status 308, GCS has %q): %w", resp.Header.Get("Range"), stores.ErrUnavailable)
	case http.StatusNotFound, http.StatusGone:
		return obj, join(stores.ErrUnavailable, googleapi.CheckResponse(resp))
	}
	if err := googleapi.CheckResponse(resp); err != nil {
		return obj, err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&obj); err != nil {
		return obj, fmt.Errorf("upload finished with an unreadable answer: %v: %w", err, stores.ErrUnavailable)
	}
	return obj, nil
}

// cancelSession ends an upload session that will not be finished, so
// that GCS drops what it kept of it (it would otherwise keep it for a
// week). Best effort and short, in the request (no goroutine outlives
// it): an unreachable GCS delays the client's 503 by at most
// cancelTimeout, and the object was never created either way.
func (s *Store) cancelSession(ctx context.Context, session string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodDelete, session, nil)
	if err != nil {
		return
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		s.logger().Debug("gcs: could not cancel an upload session", "error", classify(err).Error())
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
