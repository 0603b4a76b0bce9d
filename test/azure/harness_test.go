// Package azuree2e runs the ferry binary against Azurite (started by
// test/backends/azuritesrv) with a wasbs:// destination and drives it
// over HTTP the way the MLflow client does: proxied transfers, presigned
// downloads and presigned multipart uploads straight to Azurite, and the
// faults (Azurite killed mid-upload, a wrong account key).
package azuree2e

import (
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
// MLFLOW_, FERRY_, AZURE_, IDENTITY_ and MSI_ variables, and further
// server flags args, and stops it at cleanup.
func startFerry(t testing.TB, dest string, env []string, args ...string) *ferry {
	t.Helper()
	args = append([]string{"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///" + filepath.Join(t.TempDir(), "mlflow.db")}, args...)
	return &ferry{ferrytest.StartServer(t, ferryBin, append(cleanEnv(), env...), args...)}
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

// The multipart helpers shared with the other black-box tests.
type (
	credential = ferrytest.Credential
	createResp = ferrytest.CreateResp
	part       = ferrytest.Part
)

var (
	randomBytes = ferrytest.RandomBytes
	putPart     = ferrytest.PutPart
)
