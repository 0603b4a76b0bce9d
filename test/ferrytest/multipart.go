package ferrytest

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
)

// RandomBytes returns n random bytes; a read error fails t.
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Credential is one presigned part URL in an mpu/create answer.
type Credential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

// CreateResp is the mpu/create answer.
type CreateResp struct {
	UploadID    string       `json:"upload_id"`
	Credentials []Credential `json:"credentials"`
}

// Part is one uploaded part as mpu/complete takes it.
type Part struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
	URL        string `json:"url"`
}

// PutPart PUTs data to a credential's presigned URL with exactly its
// headers, as the MLflow client does, and returns the part for complete
// (with the store's ETag), the status and the body; a transport error
// fails t.
func PutPart(t testing.TB, c Credential, data []byte) (Part, int, string) {
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
	return Part{PartNumber: c.PartNumber, ETag: resp.Header.Get("ETag"), URL: c.URL}, resp.StatusCode, string(b)
}
