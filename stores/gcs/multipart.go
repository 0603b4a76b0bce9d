package gcs

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/stores"
)

// Presigned multipart uploads through the XML API, as upstream's
// GCSArtifactRepository does them (google-resumable-media's
// XMLMPUContainer): Ferry opens the upload (POST ?uploads) and completes
// (POST ?uploadId=...) or aborts it (DELETE ?uploadId=...) with its own
// credentials; the client PUTs each part to a V4 signed URL carrying
// partNumber and uploadId, so no part passes through Ferry.

// xmlURL is the XML API URL of object with query q.
func (s *Store) xmlURL(object string, q string) string {
	segs := strings.Split(object, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	u := s.xmlScheme + "://" + s.xmlHost + "/" + url.PathEscape(s.cfg.Bucket) + "/" + strings.Join(segs, "/")
	if q != "" {
		u += "?" + q
	}
	return u
}

// xmlDo sends one XML API request and returns the answer's body (at most
// 1 MiB), or an *xmlError for a non-2xx answer.
func (s *Store) xmlDo(ctx context.Context, op, method, u string, hdr http.Header, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.ContentLength = int64(len(body))
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var e struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}
	if resp.StatusCode/100 != 2 {
		_ = xml.Unmarshal(rb, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(rb[:min(len(rb), 300)]))
		}
		return nil, &xmlError{Op: op, Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	// A complete can fail after its 200 went out: the error is then the
	// body (as S3 does it).
	if xml.Unmarshal(rb, &e) == nil && e.Code != "" {
		return nil, &xmlError{Op: op, Status: http.StatusInternalServerError, Code: e.Code, Message: e.Message}
	}
	return rb, nil
}

// CreateMultipart implements stores.Multiparter: it opens an XML API
// multipart upload with the content type guessed from the key (as
// upstream guesses it from the client's file name) and signs one part URL
// per part, numbered from 1, valid for 60 minutes as upstream.
func (s *SigningStore) CreateMultipart(ctx context.Context, key string, numParts int) (stores.MultipartUpload, error) {
	if numParts > MaxParts {
		return stores.MultipartUpload{}, fmt.Errorf("create multipart upload %s: %d parts, GCS allows %d: %w", key, numParts, MaxParts, stores.ErrTooLarge)
	}
	obj := s.objectName(key)
	hdr := http.Header{"Content-Type": {contentType(key)}}
	rb, err := s.xmlDo(ctx, "initiate multipart upload", http.MethodPost, s.xmlURL(obj, "uploads"), hdr, nil)
	if err != nil {
		return stores.MultipartUpload{}, s.fail("create multipart upload", key, err)
	}
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal(rb, &res); err != nil || res.UploadID == "" {
		return stores.MultipartUpload{}, s.fail("create multipart upload", key, fmt.Errorf("no UploadId in the answer %.200q", rb))
	}
	up := stores.MultipartUpload{UploadID: res.UploadID}
	for i := 1; i <= numParts; i++ {
		q := url.Values{"partNumber": {strconv.Itoa(i)}, "uploadId": {res.UploadID}}
		u, err := s.signedURL(ctx, http.MethodPut, obj, PartURLTTL, q)
		if err != nil {
			s.abortQuietly(obj, res.UploadID)
			return stores.MultipartUpload{}, s.fail("presign upload part", key, err)
		}
		up.Parts = append(up.Parts, stores.PresignedPart{PartNumber: i, Request: stores.PresignedRequest{URL: u}})
	}
	return up, nil
}

// completeXML is the body of a complete request.
type completeXML struct {
	XMLName xml.Name  `xml:"CompleteMultipartUpload"`
	Parts   []partXML `xml:"Part"`
}

type partXML struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}

// CompleteMultipart implements stores.Multiparter: the client's part
// numbers and ETags go to GCS verbatim, in the order given.
func (s *SigningStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []stores.CompletedPart) error {
	c := completeXML{}
	for _, p := range parts {
		c.Parts = append(c.Parts, partXML{PartNumber: p.PartNumber, ETag: p.ETag})
	}
	body, err := xml.Marshal(c)
	if err != nil {
		return fmt.Errorf("complete multipart upload %s: %w", key, err)
	}
	q := url.Values{"uploadId": {uploadID}}.Encode()
	hdr := http.Header{"Content-Type": {"application/xml"}}
	if _, err := s.xmlDo(ctx, "complete multipart upload", http.MethodPost, s.xmlURL(s.objectName(key), q), hdr, body); err != nil {
		return s.fail("complete multipart upload", key, err)
	}
	return nil
}

// AbortMultipart implements stores.Multiparter: the parts uploaded so far
// are dropped.
func (s *SigningStore) AbortMultipart(ctx context.Context, key, uploadID string) error {
	q := url.Values{"uploadId": {uploadID}}.Encode()
	if _, err := s.xmlDo(ctx, "abort multipart upload", http.MethodDelete, s.xmlURL(s.objectName(key), q), nil, nil); err != nil {
		return s.fail("abort multipart upload", key, err)
	}
	return nil
}

// abortQuietly aborts an upload Ferry opened but could not hand out, on a
// fresh context: the caller's error is what gets reported.
func (s *Store) abortQuietly(object, uploadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := url.Values{"uploadId": {uploadID}}.Encode()
	if _, err := s.xmlDo(ctx, "abort multipart upload", http.MethodDelete, s.xmlURL(object, q), nil, nil); err != nil {
		s.logger().Warn("gcs: could not abort a multipart upload; GCS keeps its parts until it is aborted",
			"object", object, "error", classify(err).Error())
	}
}
