// Package presign answers MLflow 3.11's presigned-download request
// (GET mlflow-artifacts/presigned/<path>): it looks up the object's size
// and asks the store's Presigner capability for a time-limited URL. Stores
// that cannot presign get upstream's 501, which makes the client fall back
// to a proxied download.
package presign

import (
	"context"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// NotSupportedMessage is upstream's exact text for stores without presign.
const NotSupportedMessage = "Multipart download is not supported for the current artifact repository"

// DownloadResponse is the JSON upstream builds with json.dumps: headers is
// always present, file_size only when known.
type DownloadResponse struct {
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers"`
	FileSize *int64            `json:"file_size,omitempty"`
}

// Download presigns a GET of key for ttl.
func Download(ctx context.Context, s *stores.Instrumented, key string, ttl time.Duration) (DownloadResponse, *wire.Error) {
	var p stores.Presigner
	ok := false
	if s != nil {
		p, ok = s.Presigner()
	}
	if !ok {
		return DownloadResponse{}, wire.Errorf(wire.NotImplemented, NotSupportedMessage)
	}
	e, err := s.Stat(ctx, key)
	if err != nil {
		return DownloadResponse{}, wire.FromStore(err)
	}
	if e.IsDir {
		return DownloadResponse{}, wire.FromStore(stores.ErrIsDir)
	}
	req, err := p.PresignGet(ctx, key, ttl)
	if err != nil {
		return DownloadResponse{}, wire.FromStore(err)
	}
	resp := DownloadResponse{URL: req.URL, Headers: map[string]string{}, FileSize: &e.Size}
	for k, v := range req.Headers {
		if len(v) > 0 {
			resp.Headers[k] = v[0]
		}
	}
	return resp, nil
}
