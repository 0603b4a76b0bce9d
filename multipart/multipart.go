// Package multipart maps MLflow's proxied multipart-upload protocol
// (POST mlflow-artifacts/mpu/{create,complete,abort}/<dir>) onto a store's
// Multiparter capability: request shapes and checks, the object key, part
// numbering and the answers. It does no I/O of its own.
package multipart

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/wire"
)

// NotSupportedMessage is upstream's exact text; the MLflow client matches
// on its prefix to fall back to a single PUT.
const NotSupportedMessage = "Multipart upload is not supported for the current artifact repository"

// MaxParts is S3's limit on parts per upload (also GCS's XML API).
const MaxParts = 10000

// Int64 accepts a JSON number or a numeric string, as upstream's int64
// fields do.
type Int64 int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	kind := jsonKind(b)
	if kind == "string" {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		// encoding/json fills in the field path; Value names the JSON kind.
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[int64]()}
	}
	*n = Int64(v)
	return nil
}

// jsonKind names the kind of a JSON value by its first byte.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// CreateRequest is mlflow.artifacts.CreateMultipartUpload.
type CreateRequest struct {
	Path     string `json:"path"`
	NumParts Int64  `json:"num_parts"`
}

// Credential is one part's upload URL (MultipartUploadCredential).
type Credential struct {
	URL        string            `json:"url"`
	PartNumber int64             `json:"part_number"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// CreateResponse is CreateMultipartUpload.Response; empty fields are
// omitted as upstream's proto encoder does.
type CreateResponse struct {
	UploadID    string       `json:"upload_id,omitempty"`
	Credentials []Credential `json:"credentials,omitempty"`
}

// Part is one completed part as the client reports it.
type Part struct {
	PartNumber Int64  `json:"part_number"`
	ETag       string `json:"etag"`
	URL        string `json:"url"`
}

// CompleteRequest is mlflow.artifacts.CompleteMultipartUpload.
type CompleteRequest struct {
	Path     string  `json:"path"`
	UploadID string  `json:"upload_id"`
	Parts    *[]Part `json:"parts"`
}

// AbortRequest is mlflow.artifacts.AbortMultipartUpload.
type AbortRequest struct {
	Path     string `json:"path"`
	UploadID string `json:"upload_id"`
}

// ObjectKey is where an upload lands: the URL's directory joined with the
// base name of the client's local file path (spec multipart.md §4). Both
// '/' and '\' separate the client's path, so a Windows client's
// "C:\data\big.bin" names big.bin.
func ObjectKey(dir, clientPath string) (string, *wire.Error) {
	base := clientPath
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	key, err := stores.CleanKey(stores.JoinKey(dir, base))
	if err != nil || base == "" || base == "." || base == ".." {
		return "", wire.Errorf(wire.InvalidParameterValue, "Invalid path")
	}
	return key, nil
}

// Capability finds the multipart capability of s, or returns upstream's
// 501 answer.
func Capability(s *stores.Instrumented) (stores.Multiparter, *wire.Error) {
	if s != nil {
		if m, ok := s.Multiparter(); ok {
			return m, nil
		}
	}
	return nil, wire.Errorf(wire.NotImplemented, NotSupportedMessage)
}

// Create opens a multipart upload for dir/<basename of req.Path>.
func Create(ctx context.Context, s *stores.Instrumented, dir string, req CreateRequest) (CreateResponse, *wire.Error) {
	if req.Path == "" {
		return CreateResponse{}, wire.MissingParam("path")
	}
	if req.NumParts > MaxParts {
		return CreateResponse{}, wire.Errorf(wire.InvalidParameterValue,
			"num_parts %d exceeds the limit of %d parts per upload; use a larger MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE.", req.NumParts, MaxParts)
	}
	m, werr := Capability(s)
	if werr != nil {
		return CreateResponse{}, werr
	}
	key, werr := ObjectKey(dir, req.Path)
	if werr != nil {
		return CreateResponse{}, werr
	}
	n := int(req.NumParts)
	if n < 0 {
		n = 0
	}
	up, err := m.CreateMultipart(ctx, key, n)
	if err != nil {
		return CreateResponse{}, wire.FromStore(err)
	}
	resp := CreateResponse{UploadID: up.UploadID}
	for i, p := range up.Parts {
		if p.PartNumber != i+1 {
			return CreateResponse{}, wire.Errorf(wire.InternalError, "store returned part %d at position %d", p.PartNumber, i+1)
		}
		resp.Credentials = append(resp.Credentials, Credential{
			URL: p.Request.URL, PartNumber: int64(p.PartNumber), Headers: flatten(p.Request.Headers),
		})
	}
	return resp, nil
}

// Complete finishes an upload with the client's part list.
func Complete(ctx context.Context, s *stores.Instrumented, dir string, req CompleteRequest) *wire.Error {
	if req.Path == "" {
		return wire.MissingParam("path")
	}
	if req.Parts == nil {
		return wire.MissingParam("parts")
	}
	m, werr := Capability(s)
	if werr != nil {
		return werr
	}
	key, werr := ObjectKey(dir, req.Path)
	if werr != nil {
		return werr
	}
	parts := make([]stores.CompletedPart, 0, len(*req.Parts))
	for _, p := range *req.Parts {
		if p.PartNumber < 1 || p.PartNumber > MaxParts {
			return wire.Errorf(wire.InvalidParameterValue, "Invalid part_number %d: parts are numbered 1 to %d.", p.PartNumber, MaxParts)
		}
		parts = append(parts, stores.CompletedPart{PartNumber: int(p.PartNumber), ETag: p.ETag, URL: p.URL})
	}
	return wire.FromStore(m.CompleteMultipart(ctx, key, req.UploadID, parts))
}

// Abort cancels an upload.
func Abort(ctx context.Context, s *stores.Instrumented, dir string, req AbortRequest) *wire.Error {
	if req.Path == "" {
		return wire.MissingParam("path")
	}
	m, werr := Capability(s)
	if werr != nil {
		return werr
	}
	key, werr := ObjectKey(dir, req.Path)
	if werr != nil {
		return werr
	}
	return wire.FromStore(m.AbortMultipart(ctx, key, req.UploadID))
}

// flatten turns http.Header-style values into the single-valued map the
// protocol carries.
func flatten(h map[string][]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}
