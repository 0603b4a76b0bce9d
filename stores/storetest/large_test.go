package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// fakeStore keeps one object per key, either buffered in memory or (when
// streaming is set) only as a checksum, replayed on Open from genReader.
// corrupt flips one byte of every read-back.
type fakeStore struct {
	streaming, corrupt bool

	mu      sync.Mutex
	objects map[string][]byte
	sizes   map[string]int64
}

func newFakeStore(streaming, corrupt bool) *fakeStore {
	return &fakeStore{streaming: streaming, corrupt: corrupt, objects: map[string][]byte{}, sizes: map[string]int64{}}
}

// Stat implements stores.Store.
func (f *fakeStore) Stat(_ context.Context, key string) (stores.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size, ok := f.sizes[key]
	if !ok {
		return stores.Entry{}, stores.ErrNotFound
	}
	return stores.Entry{Key: key, Size: size}, nil
}

// List implements stores.Store.
func (f *fakeStore) List(context.Context, string, stores.ListPage) (stores.Listing, error) {
	return stores.Listing{}, nil
}

// Open implements stores.Store.
func (f *fakeStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, stores.Entry, error) {
	e, err := f.Stat(ctx, key)
	if err != nil {
		return nil, e, err
	}
	var r io.Reader
	if f.streaming {
		r = &genReader{size: e.Size}
	} else {
		f.mu.Lock()
		r = bytes.NewReader(f.objects[key])
		f.mu.Unlock()
	}
	if f.corrupt {
		r = io.MultiReader(strings.NewReader("!"), &skipReader{r: r}) // first byte replaced
	}
	return io.NopCloser(r), e, nil
}

// skipReader drops the first byte of r.
type skipReader struct {
	r       io.Reader
	skipped bool
}

// Read implements io.Reader.
func (s *skipReader) Read(p []byte) (int, error) {
	if !s.skipped {
		s.skipped = true
		var one [1]byte
		if _, err := io.ReadFull(s.r, one[:]); err != nil {
			return 0, err
		}
	}
	return s.r.Read(p)
}

// Put implements stores.Store.
func (f *fakeStore) Put(_ context.Context, key string, r io.Reader, _ int64) error {
	var data []byte
	var n int64
	var err error
	if f.streaming {
		n, err = io.Copy(sha256.New(), r)
	} else {
		data, err = io.ReadAll(r)
		n = int64(len(data))
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key], f.sizes[key] = data, n
	return nil
}

// Delete implements stores.Store.
func (f *fakeStore) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, key)
	delete(f.sizes, key)
	return nil
}

// TestLargeTransferChecks shows that the large-object subtest's two
// assertions can fail: a store that buffers the object blows the
// allocation ceiling, and a store that returns other bytes fails the
// checksum, while a streaming store passes both.
func TestLargeTransferChecks(t *testing.T) {
	const size = 64 << 20
	tests := []struct {
		name               string
		store              *fakeStore
		wantErr, overLimit bool
	}{
		{"streaming store passes", newFakeStore(true, false), false, false},
		{"buffering store exceeds the ceiling", newFakeStore(false, false), false, true},
		{"corrupting store fails the checksum", newFakeStore(true, true), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocated, peakLive, err := streamLarge(t.Context(), tt.store, "big", size)
			if (err != nil) != tt.wantErr {
				t.Fatalf("streamLarge error = %v; want error: %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if over := allocated > allocCeiling; over != tt.overLimit {
				t.Fatalf("allocated %d bytes (ceiling %d); want over the ceiling: %v", allocated, allocCeiling, tt.overLimit)
			}
			// The peak live heap, which PerPacketGarbage checks instead,
			// tells the two apart as well.
			if over := peakLive > allocCeiling; over != tt.overLimit {
				t.Fatalf("live heap peaked at %d bytes (ceiling %d); want over the ceiling: %v", peakLive, allocCeiling, tt.overLimit)
			}
		})
	}
}

// TestGenReaderIsDeterministic checks that the generator yields the same
// bytes whatever the read sizes, and exactly size of them.
func TestGenReaderIsDeterministic(t *testing.T) {
	const size = 3*patternLen + 5
	whole, err := io.ReadAll(&genReader{size: size})
	if err != nil || len(whole) != size {
		t.Fatalf("ReadAll: %d bytes, %v", len(whole), err)
	}
	var small bytes.Buffer
	g := &genReader{size: size}
	buf := make([]byte, 7)
	for {
		n, err := g.Read(buf)
		small.Write(buf[:n])
		if err == io.EOF {
			break
		}
	}
	if whole[0] == '!' {
		t.Fatal("the corrupting fake store would not change the first byte")
	}
	if !bytes.Equal(whole, small.Bytes()) {
		t.Fatal("reading in 7-byte steps yields other bytes")
	}
	if !bytes.Equal(whole[:patternLen], whole[patternLen:2*patternLen]) {
		t.Fatal("the pattern does not repeat with its period")
	}
	if bytes.Equal(whole[:1<<16], whole[1<<16:2<<16]) {
		t.Fatal("the content repeats at a power of two; a dropped 64 KiB chunk would go unnoticed")
	}
}
