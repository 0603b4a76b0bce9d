package s3

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/test/backends/s3srv"
)

// TestCompleteRetried: a second mpu/complete of an upload that already
// completed (its answer lost, or the replica that sent it killed) succeeds
// when it names the same parts, and still fails when its parts do not make
// the stored object (a client error stays an error).
func TestCompleteRetried(t *testing.T) {
	srv := s3srv.Start(t, s3srv.MinIO)
	bucket := srv.Bucket(t)
	s, err := newStore(config(srv, bucket), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := make([]byte, 5<<20+1000)
	_, _ = rand.Read(data)
	upload := func(key string) (string, []stores.CompletedPart) {
		up, err := s.CreateMultipart(ctx, key, 2)
		if err != nil {
			t.Fatal(err)
		}
		var parts []stores.CompletedPart
		for i, p := range up.Parts {
			body := data[:5<<20]
			if i == 1 {
				body = data[5<<20:]
			}
			etag, err := send(ctx, "PUT", p.Request, body)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, stores.CompletedPart{PartNumber: p.PartNumber, ETag: etag})
		}
		return up.UploadID, parts
	}
	id, parts := upload("mpu/retried.bin")
	if err := s.CompleteMultipart(ctx, "mpu/retried.bin", id, parts); err != nil {
		t.Fatalf("first complete: %v", err)
	}
	if err := s.CompleteMultipart(ctx, "mpu/retried.bin", id, parts); err != nil {
		t.Fatalf("the same complete again: %v; want success, the object is there", err)
	}
	rc, _, err := s.Open(ctx, "mpu/retried.bin", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("object has %d bytes after the retried complete; want the %d uploaded", len(got), len(data))
	}

	wrong := []stores.CompletedPart{parts[0], {PartNumber: 2, ETag: `"0123456789abcdef0123456789abcdef"`}}
	if err := s.CompleteMultipart(ctx, "mpu/retried.bin", id, wrong); err == nil {
		t.Fatal("a retried complete with another part list succeeded; want an error")
	}
	if err := s.CompleteMultipart(ctx, "mpu/other.bin", id, parts); err == nil {
		t.Fatal("completing a finished upload under another key succeeded; want an error")
	}
	for name, etag := range map[string]string{"empty": "", "not hex": `"zz"`, "short": `"abcd"`} {
		if _, ok := multipartETag([]stores.CompletedPart{{PartNumber: 1, ETag: etag}}); ok {
			t.Errorf("multipartETag accepted a part ETag that is %s", name)
		}
	}
	if _, ok := multipartETag(nil); ok {
		t.Error("multipartETag accepted no parts")
	}
}
