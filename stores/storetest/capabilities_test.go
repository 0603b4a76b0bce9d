package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/local"
)

// capStore adds S3-like presign and multipart capabilities to a local
// store: URLs point at an httptest server that checks a header, serves
// objects, and keeps uploaded parts in memory until completion.
type capStore struct {
	stores.Store
	srv *httptest.Server

	mu      sync.Mutex
	uploads map[string]map[int][]byte // upload id → part number → bytes
	nextID  int
}

const capHeader = "X-Storetest-Token"

func newCapStore(t *testing.T) *capStore {
	t.Helper()
	inner, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	c := &capStore{Store: inner, uploads: map[string]map[int][]byte{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

func (c *capStore) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(capHeader) != "yes" {
		http.Error(w, "missing signed header", http.StatusForbidden)
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/get/"):
		key := strings.TrimPrefix(r.URL.Path, "/get/")
		rc, _, err := c.Open(r.Context(), key, 0, -1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer rc.Close()
		io.Copy(w, rc)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/part/"):
		id, n, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/part/"), "/")
		num, err := strconv.Atoi(n)
		b, rerr := io.ReadAll(r.Body)
		if err != nil || rerr != nil {
			http.Error(w, "bad part", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		parts, ok := c.uploads[id]
		if ok {
			parts[num] = b
		}
		c.mu.Unlock()
		if !ok {
			http.Error(w, "no such upload", http.StatusNotFound)
			return
		}
		w.Header().Set("ETag", etag(b))
	default:
		http.Error(w, "bad request", http.StatusBadRequest)
	}
}

// PresignGet implements stores.Presigner.
func (c *capStore) PresignGet(_ context.Context, key string, _ time.Duration) (stores.PresignedRequest, error) {
	return stores.PresignedRequest{
		URL:     c.srv.URL + "/get/" + (&url.URL{Path: key}).EscapedPath(),
		Headers: http.Header{capHeader: {"yes"}},
	}, nil
}

// CreateMultipart implements stores.Multiparter.
func (c *capStore) CreateMultipart(_ context.Context, _ string, numParts int) (stores.MultipartUpload, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := fmt.Sprint("upload-", c.nextID)
	c.uploads[id] = map[int][]byte{}
	u := stores.MultipartUpload{UploadID: id}
	for n := 1; n <= numParts; n++ {
		u.Parts = append(u.Parts, stores.PresignedPart{PartNumber: n, Request: stores.PresignedRequest{
			URL: fmt.Sprintf("%s/part/%s/%d", c.srv.URL, id, n), Headers: http.Header{capHeader: {"yes"}},
		}})
	}
	return u, nil
}

// CompleteMultipart implements stores.Multiparter.
func (c *capStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []stores.CompletedPart) error {
	c.mu.Lock()
	uploaded, ok := c.uploads[uploadID]
	delete(c.uploads, uploadID)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("upload %s: %w", uploadID, stores.ErrNotFound)
	}
	var whole [][]byte
	for i, p := range parts {
		b, ok := uploaded[p.PartNumber]
		if !ok || p.PartNumber != i+1 || p.ETag != etag(b) {
			return fmt.Errorf("part %d: bad number or ETag %q: %w", p.PartNumber, p.ETag, stores.ErrInvalidKey)
		}
		whole = append(whole, b)
	}
	data := bytes.Join(whole, nil)
	return c.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
}

// AbortMultipart implements stores.Multiparter.
func (c *capStore) AbortMultipart(_ context.Context, _, uploadID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.uploads, uploadID)
	return nil
}

// TestCapabilityRoundTrips runs the presign and multipart subtests on a
// store that has the capabilities, bare and behind the instrumented
// wrapper, and checks that they skip on one that has not.
func TestCapabilityRoundTrips(t *testing.T) {
	subtests := []struct {
		name string
		fn   func(*testing.T, stores.Store)
	}{{"Presign", testPresign}, {"Multipart", testMultipart}}
	for _, st := range subtests {
		t.Run(st.name+"/bare", func(t *testing.T) {
			st.fn(t, newCapStore(t))
		})
		t.Run(st.name+"/instrumented", func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s := stores.Instrument(newCapStore(t), "cap", stores.NewMetrics(reg), slog.New(slog.DiscardHandler))
			st.fn(t, s)
			// The suite went through the wrapper's instrumented capability.
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"Presign": "presign_get", "Multipart": "mpu_complete"}[st.name]
			found := false
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						found = found || mf.GetName() == "ferry_store_operations_total" && l.GetName() == "op" && l.GetValue() == want
					}
				}
			}
			if !found {
				t.Fatalf("no %s operation recorded: the suite bypassed the instrumented capability", want)
			}
		})
		t.Run(st.name+"/absent", func(t *testing.T) {
			var skipped bool
			t.Run("inner", func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				s, err := local.New(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				st.fn(t, s)
			})
			if !skipped {
				t.Fatalf("%s did not skip on a store without the capability", st.name)
			}
		})
	}
}
