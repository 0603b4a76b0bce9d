package gcse2e

import (
	"testing"
	"time"

	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/backends/gcsxml"
)

// A replica's start sweeps the GCS destination in the background: an XML
// multipart upload opened through one ferry's mpu/create with gcsxml's
// clock 3 h back is aborted by the next ferry started with
// --temp-file-max-age 2h, and logged; a young one opened after it stays.
func TestStartSweepAbortsStaleUploads(t *testing.T) {
	gcs := gcssrv.Start(t)
	xs := gcsxml.Start(t, gcs.Endpoint)
	xs.RequireAuth.Store(true)
	acct := xs.NewAccount(t, "ferry")
	bucket := gcs.Bucket(t)
	env := []string{"STORAGE_EMULATOR_HOST=" + xs.Host, "GOOGLE_APPLICATION_CREDENTIALS=" + acct.CredentialsFile(t)}
	dest := "gs://" + bucket + "/" + prefix
	f := startFerry(t, dest, env)
	create := func() string {
		t.Helper()
		var res struct {
			UploadID string `json:"upload_id"`
		}
		if code, b := postJSON(t, f.ArtifactsURL("mpu/create", "0/r/artifacts"), map[string]any{"path": "/local/big.bin", "num_parts": 2}, &res); code != 200 || res.UploadID == "" {
			t.Fatalf("mpu/create: %d %s", code, b)
		}
		return res.UploadID
	}
	xs.Advance(-3 * time.Hour)
	stale := create()
	xs.Advance(3 * time.Hour)
	young := create()

	g := startFerry(t, dest, env, "--temp-file-max-age", "2h")
	g.WaitStaleUploadSweep(t, 1)
	open := xs.OpenUploadIDs()
	if _, ok := open[stale]; ok {
		t.Errorf("the stale upload %s is still open", stale)
	}
	if _, ok := open[young]; !ok {
		t.Errorf("the young upload %s was aborted", young)
	}
}
