package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/ferryml/ferry/stores"
)

// TestClassify checks the one mapping from Azure answers, network
// failures and credential failures onto the sentinels.
func TestClassify(t *testing.T) {
	resp := func(status int, code string) error {
		return &azcore.ResponseError{StatusCode: status, ErrorCode: code}
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"blob not found", resp(404, "BlobNotFound"), stores.ErrNotFound},
		{"container not found", resp(404, "ContainerNotFound"), stores.ErrNotFound},
		{"HEAD 404 without a code", resp(404, ""), stores.ErrNotFound},
		{"bad signature", resp(403, "AuthenticationFailed"), stores.ErrPermission},
		{"RBAC", resp(403, "AuthorizationPermissionMismatch"), stores.ErrPermission},
		{"HEAD 403 without a code", resp(403, ""), stores.ErrPermission},
		{"range", resp(416, "InvalidRange"), stores.ErrInvalidRange},
		{"wrong block list", resp(400, "InvalidBlockList"), stores.ErrInvalidKey},
		{"too large", resp(413, "RequestBodyTooLarge"), stores.ErrTooLarge},
		{"busy", resp(503, "ServerBusy"), stores.ErrUnavailable},
		{"any 5xx", resp(502, ""), stores.ErrUnavailable},
		{"refused", &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, stores.ErrUnavailable},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), stores.ErrUnavailable},
		{"cut body", io.ErrUnexpectedEOF, stores.ErrUnavailable},
		{"no token", fmt.Errorf("%w: %w", errToken, errors.New("ManagedIdentityCredential: no response")), stores.ErrPermission},
		{"cancelled", context.Canceled, context.Canceled},
		{"already classified", fmt.Errorf("x: %w", stores.ErrIncomplete), stores.ErrIncomplete},
	}
	for _, tt := range tests {
		if got := classify(tt.err); !errors.Is(got, tt.want) {
			t.Errorf("%s: classify = %v; want %v", tt.name, got, tt.want)
		}
	}
	if got := classify(resp(409, "BlobAlreadyExists")); errors.Is(got, stores.ErrUnavailable) || errors.Is(got, stores.ErrNotFound) || !errors.Is(got, errUnclassified) {
		t.Errorf("an unknown 4xx is classified as %v", got)
	}
}

// TestCompleteRefusesForeignParts: CompleteMultipart checks every part's
// block id against the upload and part number before it sends anything
// (the store here has no reachable endpoint: a request would fail with
// ErrUnavailable, not ErrInvalidKey).
func TestCompleteRefusesForeignParts(t *testing.T) {
	cfg := envConfig(t, "wasbs://cont@acct.blob.core.windows.net/p", map[string]string{
		"FERRY_AZURE_BLOB_ENDPOINT_URL": "http://127.0.0.1:1/acct",
		"AZURE_STORAGE_ACCESS_KEY":      "a2V5",
	})
	st, err := newStore(cfg, func(http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			t.Errorf("a request was sent: %s %s", r.Method, r.URL)
			return nil, errors.New("no requests here")
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*SigningStore)
	up, err := s.CreateMultipart(t.Context(), "k", 3)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateMultipart(t.Context(), "k", 3)
	if err != nil {
		t.Fatal(err)
	}
	part := func(n int, u stores.MultipartUpload, i int) stores.CompletedPart {
		return stores.CompletedPart{PartNumber: n, URL: u.Parts[i].Request.URL}
	}
	tests := []struct {
		name  string
		id    string
		parts []stores.CompletedPart
	}{
		{"swapped urls", up.UploadID, []stores.CompletedPart{part(1, up, 1), part(2, up, 0)}},
		{"another upload's part", up.UploadID, []stores.CompletedPart{part(1, up, 0), part(2, other, 1)}},
		{"mixed uploads, no id", "", []stores.CompletedPart{part(1, up, 0), part(2, other, 1)}},
		{"part listed twice", up.UploadID, []stores.CompletedPart{part(1, up, 0), part(1, up, 0)}},
		{"url without a block id", up.UploadID, []stores.CompletedPart{{PartNumber: 1, URL: "http://x/y?comp=block"}}},
		{"foreign block id", up.UploadID, []stores.CompletedPart{{PartNumber: 1, URL: "http://x/y?blockid=bWxmbG93X2Jsb2NrXzE%3D"}}},
		{"unparsable url", up.UploadID, []stores.CompletedPart{{PartNumber: 1, URL: "http://[::1"}}},
		{"bad upload id", "../../x", []stores.CompletedPart{part(1, up, 0)}},
	}
	for _, tt := range tests {
		if err := s.CompleteMultipart(t.Context(), "k", tt.id, tt.parts); !errors.Is(err, stores.ErrInvalidKey) {
			t.Errorf("%s: CompleteMultipart = %v; want ErrInvalidKey", tt.name, err)
		}
	}
	if err := s.AbortMultipart(t.Context(), "k", "../x"); !errors.Is(err, stores.ErrInvalidKey) {
		t.Errorf("AbortMultipart with a bad id = %v", err)
	}
	if err := s.AbortMultipart(t.Context(), "k", up.UploadID); err != nil {
		t.Errorf("AbortMultipart = %v", err)
	}
	if _, err := s.CreateMultipart(t.Context(), "k", MaxBlocks+1); !errors.Is(err, stores.ErrTooLarge) {
		t.Errorf("CreateMultipart of %d parts = %v; want ErrTooLarge", MaxBlocks+1, err)
	}
	for i, p := range up.Parts {
		nonce, n, ok := parseBlockID(mustQuery(t, p.Request.URL).Get("blockid"))
		if !ok || nonce != up.UploadID || n != i+1 {
			t.Errorf("part %d: block id names upload %q part %d (%v)", i+1, nonce, n, ok)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
