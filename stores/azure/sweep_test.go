package azure

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/test/backends/azuritesrv"
)

// TestSweepStaleUploads: on Azurite, blocks staged and never committed
// under the store's prefix ("old": staged first, the sweep's age falls
// between them and the young ones, as Azurite's clock cannot be faked)
// are deleted; old staged blocks beside the prefix, old uncommitted blocks
// on a committed blob, a committed empty blob, young staged blocks and a
// presigned multipart upload in progress are kept, and that upload still
// completes. The two listings are paged two blobs at a time. A second
// sweep finds nothing.
func TestSweepStaleUploads(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	ctx := t.Context()
	cc := srv.Client(t, nil).ServiceClient().NewContainerClient(cont)
	cfg := envConfig(t, azuritesrv.URI(cont, testPrefix), credEnvs(t, srv, cont)[CredAccountKey])
	s := newTestStore(t, cfg).(*SigningStore)
	stage := func(name, data string) {
		t.Helper()
		id := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("block-%032d", 1)))
		body := streaming.NopCloser(bytes.NewReader([]byte(data)))
		if _, err := cc.NewBlockBlobClient(name).StageBlock(ctx, id, body, nil); err != nil {
			t.Fatalf("stage a block of %s: %v", name, err)
		}
	}
	// blocks returns the committed and uncommitted block counts of name
	// (-1, -1: no blob at all).
	blocks := func(name string) (int, int) {
		t.Helper()
		bl, err := cc.NewBlockBlobClient(name).GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
		if err != nil {
			if errors.Is(classify(err), stores.ErrNotFound) {
				return -1, -1
			}
			t.Fatalf("block list of %s: %v", name, err)
		}
		return len(bl.CommittedBlocks), len(bl.UncommittedBlocks)
	}
	content := func(key string) string {
		t.Helper()
		rc, _, err := s.Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("open %s: %v", key, err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}

	// Old: committed objects, then staged blocks.
	if err := s.Put(ctx, "a/keep", bytes.NewReader([]byte("kept")), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/empty", bytes.NewReader(nil), 0); err != nil {
		t.Fatal(err)
	}
	oldIn := []string{testPrefix + "/1/run/artifacts/model.bin", testPrefix + "/2/x/artifacts/a b%2F&<.txt", testPrefix + "/3/z"}
	for _, n := range oldIn {
		stage(n, "abandoned")
	}
	keptOld := []string{"outside.bin", testPrefix + "-sibling/x", "ferry/artifact", testPrefix}
	for _, n := range keptOld {
		stage(n, "abandoned beside the prefix")
	}
	stage(testPrefix+"/a/keep", "an overwrite never committed")
	const age = 3 * time.Second // the young ones must stay younger until the sweep, on a loaded machine too
	time.Sleep(2 * age)

	// Young: staged blocks, and a presigned multipart upload with one of
	// its two parts uploaded.
	stage(testPrefix+"/1/run/artifacts/young.bin", "young")
	up, err := s.CreateMultipart(ctx, "4/run/artifacts/mpu.bin", 2)
	if err != nil {
		t.Fatal(err)
	}
	putPart := func(i int, data string) stores.CompletedPart {
		t.Helper()
		p := up.Parts[i]
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, p.Request.URL, bytes.NewReader([]byte(data)))
		for k, vs := range p.Request.Headers {
			req.Header[k] = vs
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("part %d: %s", p.PartNumber, resp.Status)
		}
		return stores.CompletedPart{PartNumber: p.PartNumber, ETag: resp.Header.Get("ETag"), URL: p.Request.URL}
	}
	done := []stores.CompletedPart{putPart(0, "first part, ")}

	defer func(n int32) { sweepPageSize = n }(sweepPageSize)
	sweepPageSize = 2

	sw, ok := stores.As[stores.StaleUploadSweeper](instrument(s))
	if !ok {
		t.Fatal("the instrumented Azure store does not offer StaleUploadSweeper")
	}
	if n, err := sw.SweepStaleUploads(ctx, time.Hour); n != 0 || err != nil {
		t.Fatalf("SweepStaleUploads(1h) = %d, %v; want 0, nil", n, err)
	}
	n, err := sw.SweepStaleUploads(ctx, age)
	if err != nil || n != len(oldIn) {
		t.Fatalf("SweepStaleUploads = %d, %v; want %d, nil", n, err, len(oldIn))
	}
	for _, name := range oldIn {
		if c, u := blocks(name); c != -1 || u != -1 {
			t.Errorf("%s: %d committed, %d uncommitted blocks left; want no blob", name, c, u)
		}
	}
	for _, name := range append(keptOld, testPrefix+"/1/run/artifacts/young.bin", testPrefix+"/4/run/artifacts/mpu.bin") {
		if _, u := blocks(name); u != 1 {
			t.Errorf("%s: %d uncommitted blocks; want its 1 kept", name, u)
		}
	}
	if c, u := blocks(testPrefix + "/a/keep"); u != 1 {
		t.Errorf("a/keep: %d committed, %d uncommitted blocks; want its pending overwrite kept", c, u)
	}
	if got := content("a/keep"); got != "kept" {
		t.Errorf("a/keep = %q after the sweep", got)
	}
	if got := content("a/empty"); got != "" {
		t.Errorf("a/empty = %q after the sweep", got)
	}
	if n, err := sw.SweepStaleUploads(ctx, age); n != 0 || err != nil {
		t.Errorf("second sweep = %d, %v; want 0, nil", n, err)
	}

	// The upload in progress goes on and completes.
	done = append(done, putPart(1, "second part"))
	if err := s.CompleteMultipart(ctx, "4/run/artifacts/mpu.bin", up.UploadID, done); err != nil {
		t.Fatalf("complete the young upload after the sweep: %v", err)
	}
	if got := content("4/run/artifacts/mpu.bin"); got != "first part, second part" {
		t.Errorf("completed upload = %q", got)
	}
}

// TestSweepKeepsBlobCommittedMeanwhile: a leftover listed as uncommitted
// whose block list is committed before the sweep deletes it is kept, by
// the check before the delete and by the delete's own condition.
func TestSweepKeepsBlobCommittedMeanwhile(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	ctx := t.Context()
	cc := srv.Client(t, nil).ServiceClient().NewContainerClient(cont)
	s := newTestStore(t, envConfig(t, azuritesrv.URI(cont, testPrefix), credEnvs(t, srv, cont)[CredAccountKey])).(*SigningStore)
	name := testPrefix + "/late/commit.bin"
	bb := cc.NewBlockBlobClient(name)
	id := base64.StdEncoding.EncodeToString([]byte("block-0001"))
	if _, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader([]byte("late"))), nil); err != nil {
		t.Fatal(err)
	}
	stale, err := s.staleUncommitted(ctx, time.Now().Add(time.Minute))
	if err != nil || len(stale) != 1 || stale[0].name != name {
		t.Fatalf("staleUncommitted = %+v, %v; want %s", stale, err, name)
	}
	if _, err := bb.CommitBlockList(ctx, []string{id}, nil); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-time.Minute)
	if err := s.deleteUncommitted(ctx, stale[0], cutoff); !errors.Is(err, errKept) {
		t.Fatalf("deleteUncommitted of a blob committed meanwhile = %v; want errKept", err)
	}
	// The delete's own condition, should the commit come after the check.
	if err := s.deleteUnlessCommittedSince(ctx, name, cutoff); !errors.Is(err, errRefused) {
		t.Fatalf("deleteUnlessCommittedSince of a blob committed after the cutoff = %v; want errRefused", err)
	}
	if _, err := cc.NewBlobClient(name).GetProperties(ctx, nil); err != nil {
		t.Fatalf("the committed blob is gone: %v", err)
	}
}
