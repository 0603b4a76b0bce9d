// Package azuree2e runs the ferry binary against Azurite (started by
// test/backends/azuritesrv) with a wasbs:// destination and drives it
// over HTTP the way the MLflow client does: proxied transfers, presigned
// downloads and presigned multipart uploads straight to Azurite, and the
// faults (Azurite killed mid-upload, a wrong account key).
package azuree2e

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/test/ferrytest"
)

// ferryBin is the binary under test: $FERRY_BIN, or built once.
var ferryBin string

func TestMain(m *testing.M) { ferrytest.Main(m, &ferryBin) }

// ferry is one running `ferry server`; it is a local type so that tests
// may add methods to it.
type ferry struct{ *ferrytest.Server }

// startFerry runs `ferry server` with --artifacts-destination dest, a fresh
// SQLite backend store and the given environment on top of one without
// MLFLOW_, FERRY_, AZURE_, IDENTITY_ and MSI_ variables, and stops it at cleanup.
func startFerry(t testing.TB, dest string, env []string) *ferry {
	t.Helper()
	return &ferry{ferrytest.StartServer(t, ferryBin, append(cleanEnv(), env...),
		"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///"+filepath.Join(t.TempDir(), "mlflow.db"))}
}

func cleanEnv() []string {
	return ferrytest.CleanEnv("MLFLOW_", "FERRY_", "AZURE_", "IDENTITY_", "MSI_")
}

// The shared black-box helpers, under the names this package's tests use.
var (
	do       = ferrytest.Do
	postJSON = ferrytest.PostJSON
	tail     = ferrytest.Tail
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type credential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

type createResp struct {
	UploadID    string       `json:"upload_id"`
	Credentials []credential `json:"credentials"`
}

type part struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
	URL        string `json:"url"`
}

// putPart PUTs data to a credential's presigned URL with exactly its
// headers, as the MLflow client does, and returns the part for complete.
func putPart(t testing.TB, c credential, data []byte) (part, int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, c.URL, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return part{PartNumber: c.PartNumber, ETag: resp.Header.Get("ETag"), URL: c.URL}, resp.StatusCode, string(b)
}
