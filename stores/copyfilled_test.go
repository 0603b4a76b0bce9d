package stores

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// chunkedReader returns at most step bytes per Read, then err (io.EOF or a
// failure) once data runs out, the way a network body or a block reader
// hands out one packet at a time.
type chunkedReader struct {
	data []byte
	step int
	err  error
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p[:min(len(p), r.step)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// writeLog records each write's size; it fails the write numbered failAt
// (1-based) with errFail, or writes short when short is set.
type writeLog struct {
	bytes.Buffer
	sizes  []int
	failAt int
	short  bool
}

var errFail = errors.New("client went away")

func (w *writeLog) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	if len(w.sizes) == w.failAt {
		return 0, errFail
	}
	if w.short {
		return w.Buffer.Write(p[:len(p)/2])
	}
	return w.Buffer.Write(p)
}

func TestCopyFilled(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes
	buf := make([]byte, 4096)
	errRead := errors.New("backend went away")

	t.Run("fills each write", func(t *testing.T) {
		var w writeLog
		n, err := CopyFilled(&w, &chunkedReader{data: data, step: 1000, err: io.EOF}, buf)
		if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
			t.Fatalf("%d bytes, %v", n, err)
		}
		want := []int{4096, 4096, 4096, 3712}
		if len(w.sizes) != len(want) || w.sizes[0] != want[0] || w.sizes[1] != want[1] || w.sizes[2] != want[2] || w.sizes[3] != want[3] {
			t.Fatalf("write sizes %v, want %v", w.sizes, want)
		}
	})
	t.Run("data with EOF", func(t *testing.T) {
		var w writeLog
		n, err := CopyFilled(&w, iotest.DataErrReader(bytes.NewReader(data)), buf)
		if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
			t.Fatalf("%d bytes, %v", n, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		var w writeLog
		n, err := CopyFilled(&w, &chunkedReader{err: io.EOF}, buf)
		if err != nil || n != 0 || len(w.sizes) != 0 {
			t.Fatalf("%d bytes, %v, writes %v", n, err, w.sizes)
		}
	})
	t.Run("read error after data", func(t *testing.T) {
		var w writeLog
		n, err := CopyFilled(&w, &chunkedReader{data: data[:5000], step: 1000, err: errRead}, buf)
		if !errors.Is(err, errRead) || n != 5000 || !bytes.Equal(w.Bytes(), data[:5000]) {
			t.Fatalf("%d bytes, %v; want 5000, %v", n, err, errRead)
		}
	})
	t.Run("unexpected EOF is an error", func(t *testing.T) {
		var w writeLog
		_, err := CopyFilled(&w, &chunkedReader{data: data[:10], step: 10, err: io.ErrUnexpectedEOF}, buf)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("write error", func(t *testing.T) {
		w := writeLog{failAt: 2}
		n, err := CopyFilled(&w, &chunkedReader{data: data, step: 1000, err: io.EOF}, buf)
		if !errors.Is(err, errFail) || n != 4096 {
			t.Fatalf("%d bytes, %v; want 4096, %v", n, err, errFail)
		}
	})
	t.Run("short write", func(t *testing.T) {
		w := writeLog{short: true}
		n, err := CopyFilled(&w, &chunkedReader{data: data, step: 1000, err: io.EOF}, buf)
		if !errors.Is(err, io.ErrShortWrite) || n != 2048 {
			t.Fatalf("%d bytes, %v; want 2048, io.ErrShortWrite", n, err)
		}
	})
}

// TestCopyDownloadBoundsLargeBuffers holds every large-buffer slot and
// checks that a further download still copies everything, with small
// writes, and that a freed slot gives the next one large writes again.
func TestCopyDownloadBoundsLargeBuffers(t *testing.T) {
	var held []func()
	for {
		release := LargeBufferSlot()
		if release == nil {
			break
		}
		held = append(held, release)
	}
	if len(held) != MaxLargeBuffers {
		t.Fatalf("took %d slots, want %d (another test holding some?)", len(held), MaxLargeBuffers)
	}
	data := bytes.Repeat([]byte{7}, LargeDownloadBuffer+SmallDownloadBuffer)

	var w writeLog
	n, err := CopyDownload(&w, &chunkedReader{data: data, step: 64 << 10, err: io.EOF})
	if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
		t.Fatalf("with no slot free: %d bytes, %v", n, err)
	}
	for _, s := range w.sizes {
		if s > SmallDownloadBuffer {
			t.Fatalf("with no slot free a write was %d bytes (sizes %v), want at most %d", s, w.sizes, SmallDownloadBuffer)
		}
	}

	held[0]()
	held[0]() // a second call gives nothing back twice
	var w2 writeLog
	if _, err := CopyDownload(&w2, &chunkedReader{data: data, step: 64 << 10, err: io.EOF}); err != nil {
		t.Fatal(err)
	}
	if w2.sizes[0] != LargeDownloadBuffer {
		t.Fatalf("with a slot free the first write was %d bytes, want %d", w2.sizes[0], LargeDownloadBuffer)
	}
	r1, r2 := LargeBufferSlot(), LargeBufferSlot()
	if r1 == nil {
		t.Fatal("the slot the download used was not given back")
	}
	if r2 != nil {
		t.Fatal("two slots free after one was released twice")
	}
	r1()
	for _, release := range held[1:] {
		release()
	}
	release := LargeBufferSlot()
	if release == nil {
		t.Fatal("no slot free after every one was released")
	}
	release()
}
