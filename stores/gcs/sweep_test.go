package gcs

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/backends/gcsxml"
)

// TestSweepStaleUploads: through gcsxml (which lists open uploads as GCS
// does, with their Initiated time on its own clock), uploads opened with
// the server's clock set 3 h back are "old", and a sweep with a 2 h age
// aborts exactly the old ones under the store's prefix, paging through
// the listing two uploads at a time; old uploads beside the prefix, a
// young upload with a part (still completable afterwards) and a
// committed object are untouched. Two sweeps at once share the work
// without an error, and a sweep after them finds nothing.
func TestSweepStaleUploads(t *testing.T) {
	srv := gcssrv.Start(t)
	xs := gcsxml.Start(t, srv.Endpoint)
	xs.RequireAuth.Store(true)
	acct := xs.NewAccount(t, "ferry")
	bucket := srv.Bucket(t)
	ctx := t.Context()
	open := func(prefix string) *SigningStore {
		t.Helper()
		cfg := signedConfig(t, xs, acct, bucket)
		cfg.Prefix = prefix
		s, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.(*SigningStore).Close() })
		return s.(*SigningStore)
	}
	s, root := open(testPrefix), open("")
	create := func(st *SigningStore, key string) stores.MultipartUpload {
		t.Helper()
		up, err := st.CreateMultipart(ctx, key, 1)
		if err != nil {
			t.Fatalf("create upload %s: %v", key, err)
		}
		return up
	}
	putPart := func(up stores.MultipartUpload, body string) stores.CompletedPart {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, up.Parts[0].Request.URL, bytes.NewReader([]byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part upload: %s", resp.Status)
		}
		return stores.CompletedPart{PartNumber: 1, ETag: resp.Header.Get("ETag")}
	}
	if err := s.Put(ctx, "a/keep", bytes.NewReader([]byte("kept")), 4); err != nil {
		t.Fatal(err)
	}

	xs.Advance(-3 * time.Hour)
	var oldIn []string
	for _, k := range []string{"1/run/artifacts/model.bin", "1/run/artifacts/model.bin", "2/x/artifacts/a b%2F&<.txt"} {
		oldIn = append(oldIn, create(s, k).UploadID)
	}
	oldWithPart := create(s, "3/y/artifacts/big.bin")
	oldIn = append(oldIn, oldWithPart.UploadID)
	var kept []string
	for _, k := range []string{"outside.bin", testPrefix + "-sibling/x", "ferry/artifact", testPrefix} {
		kept = append(kept, create(root, k).UploadID) // old but not under the prefix
	}
	xs.Advance(3 * time.Hour)
	// A part of an old upload (signed URLs need the real clock; the part
	// goes with its upload), and a young upload in progress.
	putPart(oldWithPart, "abandoned part")
	young := create(s, "1/run/artifacts/young.bin")
	kept = append(kept, young.UploadID)
	youngPart := putPart(young, "young upload")

	defer func(n int) { sweepPageSize = n }(sweepPageSize)
	sweepPageSize = 2 // 9 uploads in the bucket, 5 under the prefix: 3 pages

	sw, ok := stores.As[stores.StaleUploadSweeper](instrument(s))
	if !ok {
		t.Fatal("the instrumented signing GCS store does not offer StaleUploadSweeper")
	}
	// A 4 h age finds nothing.
	if n, err := sw.SweepStaleUploads(ctx, 4*time.Hour); n != 0 || err != nil {
		t.Fatalf("SweepStaleUploads(4h) = %d, %v; want 0, nil", n, err)
	}
	// Two at once: each old upload is aborted once, by one of them.
	var wg sync.WaitGroup
	var ns [2]int
	var errs [2]error
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns[i], errs[i] = sw.SweepStaleUploads(ctx, 2*time.Hour)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || ns[0]+ns[1] != len(oldIn) {
		t.Fatalf("two sweeps = %d, %v and %d, %v; want %d removed in all", ns[0], errs[0], ns[1], errs[1], len(oldIn))
	}
	left := xs.OpenUploadIDs()
	for _, id := range oldIn {
		if _, ok := left[id]; ok {
			t.Errorf("old upload %s under the prefix is still open", id)
		}
	}
	for _, id := range kept {
		if _, ok := left[id]; !ok {
			t.Errorf("upload %s (young, or outside the prefix) was aborted", id)
		}
	}
	if n, err := sw.SweepStaleUploads(ctx, 2*time.Hour); n != 0 || err != nil {
		t.Errorf("third sweep = %d, %v; want 0, nil", n, err)
	}

	// The young upload completes; the committed object is intact.
	if err := s.CompleteMultipart(ctx, "1/run/artifacts/young.bin", young.UploadID, []stores.CompletedPart{youngPart}); err != nil {
		t.Fatalf("complete the young upload after the sweep: %v", err)
	}
	for key, want := range map[string]string{"1/run/artifacts/young.bin": "young upload", "a/keep": "kept"} {
		rc, _, err := s.Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("open %s: %v", key, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want {
			t.Errorf("%s = %q, want %q", key, b, want)
		}
	}
}

// TestSweepNeedsSigner: a store whose credentials cannot sign opens no
// XML multipart uploads, so it offers no sweep (an anonymous client
// against fake-gcs-server could not list them either).
func TestSweepNeedsSigner(t *testing.T) {
	srv := gcssrv.Start(t)
	s, err := New(t.Context(), emulatorConfig(srv, srv.Bucket(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.(*Store).Close()
	if _, ok := stores.As[stores.StaleUploadSweeper](instrument(s)); ok {
		t.Fatal("an anonymous GCS store offers StaleUploadSweeper")
	}
}
