package azuree2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ferryml/ferry/test/backends/azuritesrv"
)

const prefix = "mlartifacts"

// blobExists reports whether the container holds a committed blob name.
func blobExists(t testing.TB, srv *azuritesrv.Server, cont, name string) bool {
	t.Helper()
	_, err := srv.Client(t, nil).ServiceClient().NewContainerClient(cont).NewBlobClient(name).GetProperties(t.Context(), nil)
	switch {
	case err == nil:
		return true
	case bloberror.HasCode(err, bloberror.BlobNotFound) || strings.Contains(err.Error(), "404"):
		return false
	}
	t.Fatalf("properties of %s: %v", name, err)
	return false
}

// committedUnder lists the committed blobs under a name prefix.
func committedUnder(t testing.TB, srv *azuritesrv.Server, cont, p string) []string {
	t.Helper()
	var names []string
	pager := srv.Client(t, nil).NewListBlobsFlatPager(cont, &container.ListBlobsFlatOptions{Prefix: &p})
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// tamper changes one character of a URL's SAS signature.
func tamper(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := q.Get("sig")
	if sig == "" {
		t.Fatalf("no SAS signature in %s", raw)
	}
	c := byte('A')
	if sig[0] == 'A' {
		c = 'B'
	}
	q.Set("sig", string(c)+sig[1:])
	u.RawQuery = q.Encode()
	return u.String()
}

// TestProxyOnAzurite drives the artifact routes of a ferry whose
// --artifacts-destination is wasbs://container@devstoreaccount1.../prefix
// on Azurite, with the account key.
func TestProxyOnAzurite(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	env := append(srv.Env(), "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=4194304") // 4 MiB blocks
	f := startFerry(t, azuritesrv.URI(cont, prefix), env)

	small := []byte("hello from ferry on azurite\n")
	big := randomBytes(t, 12<<20+7)

	t.Run("put, get, range, list", func(t *testing.T) {
		if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/run/artifacts/hello.txt"), bytes.NewReader(small), nil); code != 200 {
			t.Fatalf("PUT: %d %s", code, b)
		}
		code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/hello.txt"), nil, nil)
		if code != 200 || !bytes.Equal(b, small) {
			t.Fatalf("GET: %d %q", code, b)
		}
		code, b, h := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/hello.txt"), nil, map[string]string{"Range": "bytes=6-9"})
		if code != 206 || string(b) != "from" || h.Get("Content-Range") != fmt.Sprintf("bytes 6-9/%d", len(small)) {
			t.Fatalf("ranged GET: %d %q %v", code, b, h)
		}
		code, b, _ = do(t, http.MethodGet, f.Base+"/api/2.0/mlflow-artifacts/artifacts?path=0/run/artifacts", nil, nil)
		if code != 200 || !strings.Contains(string(b), `"path":"hello.txt"`) {
			t.Fatalf("list: %d %s", code, b)
		}
		if !blobExists(t, srv, cont, prefix+"/0/run/artifacts/hello.txt") {
			t.Fatal("blob not where the URI says")
		}
	})

	t.Run("large PUT is staged in blocks", func(t *testing.T) {
		code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/run/artifacts/big.bin"), bytes.NewReader(big), nil)
		if code != 200 {
			t.Fatalf("PUT: %d %s", code, b)
		}
		bl, err := srv.Client(t, nil).ServiceClient().NewContainerClient(cont).NewBlockBlobClient(prefix+"/0/run/artifacts/big.bin").GetBlockList(t.Context(), "committed", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(bl.CommittedBlocks) != 4 {
			t.Fatalf("committed in %d blocks; want 4 of 4 MiB", len(bl.CommittedBlocks))
		}
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/big.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, big) {
			t.Fatalf("GET: %d, %d bytes", code, len(got))
		}
	})

	t.Run("presigned download", func(t *testing.T) {
		before := f.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`)
		code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("presigned", "0/run/artifacts/big.bin"), nil, nil)
		if code != 200 {
			t.Fatalf("presigned: %d %s", code, b)
		}
		var p struct {
			URL      string            `json:"url"`
			Headers  map[string]string `json:"headers"`
			FileSize int64             `json:"file_size"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.FileSize != int64(len(big)) || !strings.HasPrefix(p.URL, srv.Endpoint+"/") {
			t.Fatalf("presigned answer %s", b)
		}
		code, got, _ := do(t, http.MethodGet, p.URL, nil, map[string]string{"Range": "bytes=100-199"})
		if code != 206 || !bytes.Equal(got, big[100:200]) {
			t.Fatalf("GET presigned range: %d, %d bytes", code, len(got))
		}
		code, got, _ = do(t, http.MethodGet, p.URL, nil, nil)
		if code != 200 || !bytes.Equal(got, big) {
			t.Fatalf("GET presigned: %d, %d bytes", code, len(got))
		}
		if after := f.Metric(t, "ferry_store_transferred_bytes_total", `op="get"`); after != before {
			t.Fatalf("ferry's get byte counter moved by %.0f during presigned downloads", after-before)
		}
		// Azurite checks SAS signatures: a tampered one, or the read URL
		// used to write, is refused.
		if code, b, _ := do(t, http.MethodGet, tamper(t, p.URL), nil, nil); code != 403 {
			t.Fatalf("GET with a tampered SAS: %d %s; want 403", code, b)
		}
		req, _ := http.NewRequest(http.MethodPut, p.URL, bytes.NewReader(small))
		req.Header.Set("x-ms-blob-type", "BlockBlob")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("PUT with a read-only SAS: %d; want 403", resp.StatusCode)
		}
	})

	t.Run("presigned multipart: no bytes through ferry", func(t *testing.T) {
		const chunk = 5 << 20
		before := f.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`)
		var cr createResp
		code, b := postJSON(t, f.ArtifactsURL("mpu/create", "0/run/artifacts/mpu"), map[string]any{"path": "/local/data/model.bin", "num_parts": 3}, &cr)
		if code != 200 || cr.UploadID == "" || len(cr.Credentials) != 3 {
			t.Fatalf("create: %d %s", code, b)
		}
		var parts []part
		for i, c := range cr.Credentials {
			if c.PartNumber != i+1 || !strings.Contains(c.URL, "comp=block") || !strings.Contains(c.URL, "blockid=") {
				t.Fatalf("credential %d: %+v", i, c)
			}
			p, code, msg := putPart(t, c, big[i*chunk:min((i+1)*chunk, len(big))])
			if code != 201 {
				t.Fatalf("part %d: %d %s", c.PartNumber, code, msg)
			}
			parts = append(parts, p)
		}
		if blobExists(t, srv, cont, prefix+"/0/run/artifacts/mpu/model.bin") {
			t.Fatal("the blob exists before complete")
		}
		// A part list naming another part's URL is refused before
		// anything is committed.
		swapped := []part{parts[1], parts[0], parts[2]}
		swapped[0].PartNumber, swapped[1].PartNumber = 1, 2
		if code, b := postJSON(t, f.ArtifactsURL("mpu/complete", "0/run/artifacts/mpu"), map[string]any{"path": "/local/data/model.bin", "upload_id": cr.UploadID, "parts": swapped}, nil); code != 400 {
			t.Fatalf("complete with swapped part URLs: %d %s; want 400", code, b)
		}
		code, b = postJSON(t, f.ArtifactsURL("mpu/complete", "0/run/artifacts/mpu"), map[string]any{"path": "/local/data/model.bin", "upload_id": cr.UploadID, "parts": parts}, nil)
		if code != 200 {
			t.Fatalf("complete: %d %s", code, b)
		}
		if after := f.Metric(t, "ferry_store_transferred_bytes_total", `op="put"`); after != before {
			t.Fatalf("ferry's put byte counter moved by %.0f during a presigned multipart upload", after-before)
		}
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/mpu/model.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, big) {
			t.Fatalf("GET after complete: %d, %d bytes", code, len(got))
		}

		// A tampered part URL is refused by Azurite.
		code, b = postJSON(t, f.ArtifactsURL("mpu/create", "0/run/artifacts/mpu"), map[string]any{"path": "tampered.bin", "num_parts": 1}, &cr)
		if code != 200 {
			t.Fatalf("create: %d %s", code, b)
		}
		bad := cr.Credentials[0]
		bad.URL = tamper(t, bad.URL)
		if _, code, msg := putPart(t, bad, small); code != 403 {
			t.Fatalf("part PUT with a tampered SAS: %d %s; want 403", code, msg)
		}

		// Abort: a staged block is never committed, and an existing blob
		// at the key survives.
		if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/run/artifacts/mpu/aborted.bin"), bytes.NewReader(small), nil); code != 200 {
			t.Fatalf("PUT: %d %s", code, b)
		}
		code, b = postJSON(t, f.ArtifactsURL("mpu/create", "0/run/artifacts/mpu"), map[string]any{"path": "aborted.bin", "num_parts": 2}, &cr)
		if code != 200 {
			t.Fatalf("create: %d %s", code, b)
		}
		if _, code, msg := putPart(t, cr.Credentials[0], big[:chunk]); code != 201 {
			t.Fatalf("part: %d %s", code, msg)
		}
		if code, b = postJSON(t, f.ArtifactsURL("mpu/abort", "0/run/artifacts/mpu"), map[string]any{"path": "aborted.bin", "upload_id": cr.UploadID}, nil); code != 200 {
			t.Fatalf("abort: %d %s", code, b)
		}
		code, got, _ = do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/run/artifacts/mpu/aborted.bin"), nil, nil)
		if code != 200 || !bytes.Equal(got, small) {
			t.Fatalf("after abort: %d %q; want the earlier blob", code, got)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if code, b, _ := do(t, http.MethodDelete, f.ArtifactsURL("artifacts", "0/run"), nil, nil); code != 200 {
			t.Fatalf("DELETE: %d %s", code, b)
		}
		if left := committedUnder(t, srv, cont, prefix+"/"); len(left) > 0 {
			t.Fatalf("left after delete: %v", left)
		}
	})
}

// TestWrongKey: with an account key Azurite does not know, every route
// answers 403 with MLflow's error JSON, never a 500, and writes nothing.
func TestWrongKey(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	wrong := "d3Jvbmcga2V5IGZvciBhenVyaXRlLCB3cm9uZyBrZXkgZm9yIGF6dXJpdGUhIQ=="
	f := startFerry(t, azuritesrv.URI(cont, prefix), []string{"FERRY_AZURE_BLOB_ENDPOINT_URL=" + srv.Endpoint, "AZURE_STORAGE_ACCESS_KEY=" + wrong})
	checks := []struct {
		method, url string
		body        io.Reader
	}{
		{http.MethodPut, f.ArtifactsURL("artifacts", "0/r/x.txt"), bytes.NewReader([]byte("x"))},
		{http.MethodGet, f.ArtifactsURL("artifacts", "0/r/x.txt"), nil},
		{http.MethodGet, f.Base + "/api/2.0/mlflow-artifacts/artifacts?path=0/r", nil},
		{http.MethodDelete, f.ArtifactsURL("artifacts", "0/r"), nil},
	}
	for _, c := range checks {
		code, b, _ := do(t, c.method, c.url, c.body, nil)
		if code != 403 || !strings.Contains(string(b), `"error_code":"PERMISSION_DENIED"`) {
			t.Errorf("%s %s with a wrong key: %d %s; want 403 PERMISSION_DENIED", c.method, c.url, code, b)
		}
		if strings.Contains(string(b), wrong) {
			t.Errorf("the answer echoes the key: %s", b)
		}
	}
	if strings.Contains(f.Logs.String(), wrong) {
		t.Error("ferry logged the account key")
	}
	if left := committedUnder(t, srv, cont, ""); len(left) > 0 {
		t.Fatalf("written with a wrong key: %v", left)
	}
}

// slowBody yields first, then calls mid (which kills Azurite), then the
// rest.
type slowBody struct {
	first, rest []byte
	mid         func()
}

func (s *slowBody) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	if s.mid != nil {
		s.mid()
		s.mid = nil
	}
	if len(s.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// TestAzuriteKilledMidUpload kills Azurite during a proxied upload that
// is being staged in blocks: the client gets a 503 with MLflow's error
// JSON, nothing is committed (after the restart the blob does not
// exist), and the same ferry serves again once Azurite is back.
func TestAzuriteKilledMidUpload(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	f := startFerry(t, azuritesrv.URI(cont, prefix), append(srv.Env(), "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=4194304"))
	existing := []byte("written before the outage")
	if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/existing.txt"), bytes.NewReader(existing), nil); code != 200 {
		t.Fatalf("PUT: %d %s", code, b)
	}
	// Azurite keeps its metadata in LokiJS, saved to disk every 5 s: a
	// SIGKILL sooner would lose the container itself.
	time.Sleep(6 * time.Second)
	data := randomBytes(t, 32<<20)
	body := &slowBody{first: data[:12<<20], rest: data[12<<20:], mid: func() {
		srv.Kill()
		time.Sleep(200 * time.Millisecond)
	}}
	req, _ := http.NewRequest(http.MethodPut, f.ArtifactsURL("artifacts", "0/r/cut.bin"), body)
	req.ContentLength = int64(len(data))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	switch {
	case err != nil:
		// The server may close the connection while the client still
		// sends; the answer must still have been a 503 (see the log).
		if !strings.Contains(f.Logs.String(), `"status":503`) {
			t.Fatalf("upload failed on the client side (%v) and ferry logged no 503:\n%s", err, tail(f.Logs.String(), 4096))
		}
		t.Logf("client saw %v; ferry logged a 503", err)
	default:
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(b), `"error_code":"TEMPORARILY_UNAVAILABLE"`) {
			t.Fatalf("upload with Azurite down: %d %s; want 503 TEMPORARILY_UNAVAILABLE", resp.StatusCode, b)
		}
		t.Logf("client got %d %s after %v", resp.StatusCode, b, time.Since(start).Round(time.Millisecond))
	}
	code, b, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil)
	if code != 503 || !strings.Contains(string(b), "error_code") {
		t.Fatalf("GET with Azurite down: %d %s; want 503", code, b)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/existing.txt"), nil, nil)
		if code == 200 && bytes.Equal(got, existing) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry does not serve again after Azurite came back: %d %s", code, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if blobExists(t, srv, cont, prefix+"/0/r/cut.bin") {
		t.Fatal("a partial blob was committed")
	}
	if code, b, _ := do(t, http.MethodPut, f.ArtifactsURL("artifacts", "0/r/cut.bin"), bytes.NewReader(data), nil); code != 200 {
		t.Fatalf("PUT after recovery: %d %s", code, b)
	}
	if _, got, _ := do(t, http.MethodGet, f.ArtifactsURL("artifacts", "0/r/cut.bin"), nil, nil); !bytes.Equal(got, data) {
		t.Fatal("content after recovery differs")
	}
}
