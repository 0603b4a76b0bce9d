package gcs

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/internal/leftovers"
)

var _ stores.StaleUploadSweeper = (*SigningStore)(nil)

// sweepPageSize is how many uploads one listing page asks for (the XML
// API's maximum); a variable so tests can page with fewer.
var sweepPageSize = 1000

// maxSweepBatch bounds the uploads one sweep collects (memory); the rest
// wait for the next sweep.
const maxSweepBatch = 100_000

// staleUpload is one open XML multipart upload found by the sweep.
type staleUpload struct {
	object, id string
	initiated  time.Time
}

// SweepStaleUploads implements stores.StaleUploadSweeper: it aborts every
// XML API multipart upload under the store's prefix initiated more than
// olderThan ago — presigned uploads whose client never completed nor
// aborted them, whose parts GCS keeps (and bills) until they are aborted.
// Younger uploads, and uploads outside the prefix, are never touched.
//
// Only a SigningStore has it: Ferry opens XML multipart uploads only
// where it can sign their part URLs, and the listing is an XML API call
// that an anonymous client (an emulator without credentials) could not
// make. The time compared is GCS's Initiated (GCS's clock) against this
// process's: keep olderThan well above any clock skew. An upload already
// gone (another sweep, its client) is not an error. The sweep stops at
// the first failure that means GCS is unavailable; other failures (a
// refused abort) are skipped and the first is returned with the count.
func (s *SigningStore) SweepStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	stale, err := s.staleUploads(ctx, time.Now().Add(-olderThan))
	if err != nil {
		return 0, err
	}
	return leftovers.AbortAll(ctx, stale, func(u staleUpload) error {
		q := url.Values{"uploadId": {u.id}}.Encode()
		if _, err := s.xmlDo(ctx, "abort multipart upload", "DELETE", s.xmlURL(u.object, q), nil, nil); err != nil {
			return fmt.Errorf("gcs abort multipart upload gs://%s/%s (upload id %s): %w", s.cfg.Bucket, u.object, u.id, classify(err))
		}
		return nil
	}, func(u staleUpload) {
		s.logger().Info("gcs: aborted a stale multipart upload", "bucket", s.cfg.Bucket,
			"object", u.object, "upload_id", u.id, "initiated", u.initiated.UTC().Format(time.RFC3339))
	})
}

// listUploadsXML is the part of a GET /bucket?uploads answer the sweep
// reads (the XML API answers in S3's shape).
type listUploadsXML struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	EncodingType       string   `xml:"EncodingType"`
	IsTruncated        bool     `xml:"IsTruncated"`
	NextKeyMarker      string   `xml:"NextKeyMarker"`
	NextUploadIDMarker string   `xml:"NextUploadIdMarker"`
	Uploads            []struct {
		Key       string `xml:"Key"`
		UploadID  string `xml:"UploadId"`
		Initiated string `xml:"Initiated"`
	} `xml:"Upload"`
}

// staleUploads lists the bucket's open uploads under the store's prefix
// and returns those initiated before cutoff. The whole listing is read
// before anything is aborted, so that no page marker names an upload the
// sweep itself removed. Names are asked URL-encoded: an object name may
// hold characters XML 1.0 cannot carry.
func (s *SigningStore) staleUploads(ctx context.Context, cutoff time.Time) ([]staleUpload, error) {
	prefix := s.dirPrefix("")
	keyMarker, idMarker := "", ""
	var stale []staleUpload
	for len(stale) < maxSweepBatch {
		q := url.Values{"encoding-type": {"url"}, "max-uploads": {strconv.Itoa(sweepPageSize)}}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if keyMarker != "" {
			q.Set("key-marker", keyMarker)
			if idMarker != "" {
				q.Set("upload-id-marker", idMarker)
			}
		}
		rb, err := s.xmlDo(ctx, "list multipart uploads", "GET", s.xmlBucketURL("uploads&"+q.Encode()), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("gcs list multipart uploads gs://%s/%s: %w", s.cfg.Bucket, prefix, classify(err))
		}
		var res listUploadsXML
		if err := xml.Unmarshal(rb, &res); err != nil {
			return nil, fmt.Errorf("gcs list multipart uploads gs://%s/%s: unreadable answer: %v", s.cfg.Bucket, prefix, err)
		}
		dec := func(v string) (string, error) {
			if res.EncodingType != "url" {
				return v, nil
			}
			return url.QueryUnescape(v)
		}
		for _, u := range res.Uploads {
			key, err := dec(u.Key)
			if err != nil {
				return nil, fmt.Errorf("gcs list multipart uploads gs://%s: object name %q: %v", s.cfg.Bucket, u.Key, err)
			}
			at, err := time.Parse(time.RFC3339Nano, u.Initiated)
			if err != nil {
				// An upload whose age is unknown is never old enough.
				s.logger().Warn("gcs: a multipart upload without a readable Initiated time is kept",
					"object", key, "upload_id", u.UploadID, "initiated", u.Initiated)
				continue
			}
			if strings.HasPrefix(key, prefix) && u.UploadID != "" && at.Before(cutoff) {
				stale = append(stale, staleUpload{object: key, id: u.UploadID, initiated: at})
			}
		}
		if !res.IsTruncated {
			break
		}
		next, err := dec(res.NextKeyMarker)
		if err != nil || next == "" || next == keyMarker && res.NextUploadIDMarker == idMarker {
			return nil, fmt.Errorf("gcs list multipart uploads gs://%s/%s: truncated page without a new marker", s.cfg.Bucket, prefix)
		}
		keyMarker, idMarker = next, res.NextUploadIDMarker
	}
	return stale, nil
}

// xmlBucketURL is the XML API URL of the bucket itself with query q.
func (s *Store) xmlBucketURL(q string) string {
	return s.xmlScheme + "://" + s.xmlHost + "/" + url.PathEscape(s.cfg.Bucket) + "?" + q
}
