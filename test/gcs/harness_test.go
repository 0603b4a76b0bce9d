// Package gcse2e runs the ferry binary against GCS: fake-gcs-server, alone or
// behind test/backends/gcsxml (signed URLs, XML multipart, OAuth), and drives it over HTTP the
// way the MLflow client does.
package gcse2e

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
// MLFLOW_, FERRY_, AWS_ and GOOGLE_ variables,
// STORAGE_EMULATOR_HOST and GCE_METADATA_HOST, and stops it at cleanup.
func startFerry(t testing.TB, dest string, env []string, args ...string) *ferry {
	t.Helper()
	args = append([]string{"--artifacts-destination", dest, "--backend-store-uri", "sqlite:///" + filepath.Join(t.TempDir(), "mlflow.db")}, args...)
	return &ferry{ferrytest.StartServer(t, ferryBin, append(cleanEnv(), env...), args...)}
}

func cleanEnv() []string {
	return ferrytest.CleanEnv("MLFLOW_", "FERRY_", "AWS_", "GOOGLE_", "STORAGE_EMULATOR_HOST", "GCE_METADATA_HOST")
}

// The shared black-box helpers, under the names this package's tests use.
var (
	do       = ferrytest.Do
	postJSON = ferrytest.PostJSON
	tail     = ferrytest.Tail
	freePort = ferrytest.FreePort
)
