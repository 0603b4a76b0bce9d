package local

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// chunkyReader returns its data in irregular pieces, and io.EOF together
// with the last piece, as a socket-backed body may.
type chunkyReader struct {
	data []byte
	i    int
}

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.i++
	n := min(len(p), len(c.data), 1+(c.i*7919)%100_000)
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	if len(c.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>11)
	}
	return b
}

// TestPutIrregularReads streams objects that straddle the copy buffer and
// the write-behind chunk through Put, in irregular reads.
func TestPutIrregularReads(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, size := range []int{copyBufferSize - 1, copyBufferSize + 1, writeBehindChunk + copyBufferSize/2 + 3} {
		data := pattern(size)
		if err := s.Put(ctx, "obj", &chunkyReader{data: data}, int64(size)); err != nil {
			t.Fatalf("size %d: Put: %v", size, err)
		}
		got, err := os.ReadFile(filepath.Join(s.Dir(), "obj"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: stored object differs (%d bytes)", size, len(got))
		}
	}
}
