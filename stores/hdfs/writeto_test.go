package hdfs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// sizesWriter records the size of each write and can fail one.
type sizesWriter struct {
	buf    bytes.Buffer
	sizes  []int
	failAt int // fail the write with this index (1-based); 0 never
}

var errWriter = errors.New("client went away")

func (w *sizesWriter) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	if len(w.sizes) == w.failAt {
		return 0, errWriter
	}
	return w.buf.Write(p)
}

// TestWriteToFillsEachWrite checks the download path's copy: the object
// spans several blocks of the double (1 MiB + 512 B each) and many 64 KiB
// packets, yet the writer sees stores.LargeDownloadBuffer per call, the last
// excepted, and every byte in order; a range ends where it should; a
// failing writer stops the copy with its error. Once every reader is
// closed, every large-buffer slot (copy and datanode buffers) is free.
func TestWriteToFillsEachWrite(t *testing.T) {
	d := startDouble(t)
	s := newStore(t, d.NamenodeAddr)
	ctx := t.Context()
	data := make([]byte, 3*stores.LargeDownloadBuffer+12345)
	rand.Read(data)
	if err := s.Put(ctx, "obj.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}

	copyObject := func(offset, length int64, w *sizesWriter) (int64, error) {
		t.Helper()
		rc, _, err := s.Open(ctx, "obj.bin", offset, length)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		return rc.(io.WriterTo).WriteTo(w)
	}

	var w sizesWriter
	n, err := copyObject(0, -1, &w)
	if err != nil || n != int64(len(data)) || !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("WriteTo: %d bytes, %v; content equal %v", n, err, bytes.Equal(w.buf.Bytes(), data))
	}
	want := []int{stores.LargeDownloadBuffer, stores.LargeDownloadBuffer, stores.LargeDownloadBuffer, 12345}
	if len(w.sizes) != len(want) {
		t.Fatalf("write sizes %v, want %v", w.sizes, want)
	}
	for i := range want {
		if w.sizes[i] != want[i] {
			t.Fatalf("write sizes %v, want %v", w.sizes, want)
		}
	}

	var r sizesWriter
	off, length := int64(100000), int64(stores.LargeDownloadBuffer+7)
	if n, err := copyObject(off, length, &r); err != nil || n != length || !bytes.Equal(r.buf.Bytes(), data[off:off+length]) {
		t.Fatalf("ranged WriteTo: %d bytes, %v", n, err)
	}

	f := sizesWriter{failAt: 2}
	if n, err := copyObject(0, -1, &f); !errors.Is(err, errWriter) || n != stores.LargeDownloadBuffer {
		t.Fatalf("failing writer: %d bytes, %v; want %d, %v", n, err, stores.LargeDownloadBuffer, errWriter)
	}

	var slots []func()
	for release := stores.LargeBufferSlot(); release != nil; release = stores.LargeBufferSlot() {
		slots = append(slots, release)
	}
	for _, release := range slots {
		release()
	}
	if len(slots) != stores.MaxLargeBuffers {
		t.Fatalf("%d large-buffer slots free after the readers closed, want %d", len(slots), stores.MaxLargeBuffers)
	}
}
