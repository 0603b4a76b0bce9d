package azuree2e

import (
	"bytes"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ferryml/ferry/test/backends/azuritesrv"
)

// A replica's start sweeps the Azure destination in the background: with
// --temp-file-max-age 2s, blocks staged and never committed under the
// prefix 4 s before are deleted and logged; blocks staged beside the
// prefix stay.
func TestStartSweepDeletesStaleBlocks(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	cc := srv.Client(t, nil).ServiceClient().NewContainerClient(cont)
	stage := func(name string) {
		t.Helper()
		id := base64.StdEncoding.EncodeToString([]byte("block-0001"))
		if _, err := cc.NewBlockBlobClient(name).StageBlock(t.Context(), id, streaming.NopCloser(bytes.NewReader([]byte("cut"))), nil); err != nil {
			t.Fatal(err)
		}
	}
	stale, outside := prefix+"/0/r/artifacts/cut.bin", "elsewhere/cut.bin"
	stage(stale)
	stage(outside)
	time.Sleep(4 * time.Second)
	f := startFerry(t, azuritesrv.URI(cont, prefix), srv.Env(), "--temp-file-max-age", "2s")
	f.WaitStaleUploadSweep(t, 1)
	var left []string
	pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{UncommittedBlobs: true}})
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			left = append(left, *b.Name)
		}
	}
	if slices.Contains(left, stale) || !slices.Contains(left, outside) {
		t.Errorf("uncommitted names left %v: want %s kept and %s deleted", left, outside, stale)
	}
}
