package hdfs

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

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

// freeSlots counts the stores.LargeBufferSlot slots free now.
func freeSlots() int {
	var slots []func()
	for release := stores.LargeBufferSlot(); release != nil; release = stores.LargeBufferSlot() {
		slots = append(slots, release)
	}
	for _, release := range slots {
		release()
	}
	return len(slots)
}

// TestDatanodeBufferTakenForDataOnly drives bufferedConn over a pipe: the
// small reads of headers and acks (all a write connection makes) take no
// large-buffer slot; the first data-sized read takes one without losing
// the bytes already buffered; Close gives it back, also while a Read
// waits; a connection closed before any data read never takes one.
func TestDatanodeBufferTakenForDataOnly(t *testing.T) {
	before := freeSlots()
	server, client := net.Pipe()
	c := &bufferedConn{Conn: client, r: bufio.NewReaderSize(client, datanodeSmallReadBuffer)}
	payload := make([]byte, 100<<10)
	rand.Read(payload)
	go func() {
		server.Write([]byte("ack-header"))
		server.Write(payload)
	}()

	head := make([]byte, 10)
	if _, err := io.ReadFull(c, head); err != nil || string(head) != "ack-header" {
		t.Fatalf("small read: %q, %v", head, err)
	}
	if got := freeSlots(); got != before {
		t.Fatalf("after small reads %d slots free, want %d: an ack reader took a large buffer", got, before)
	}
	data := make([]byte, len(payload))
	if _, err := io.ReadFull(c, data); err != nil || !bytes.Equal(data, payload) {
		t.Fatalf("data read across the change of buffer: %v, equal %v", err, bytes.Equal(data, payload))
	}
	if got := freeSlots(); got != before-1 {
		t.Fatalf("after a data read %d slots free, want %d", got, before-1)
	}

	readDone := make(chan error)
	go func() { _, err := c.Read(make([]byte, 1)); readDone <- err }()
	time.Sleep(10 * time.Millisecond) // let the Read wait on the pipe
	c.Close()
	if err := <-readDone; err == nil {
		t.Fatal("a Read waiting when Close came returned no error")
	}
	c.Close()
	if got := freeSlots(); got != before {
		t.Fatalf("after Close %d slots free, want %d", got, before)
	}

	server2, client2 := net.Pipe()
	defer server2.Close()
	c2 := &bufferedConn{Conn: client2, r: bufio.NewReaderSize(client2, datanodeSmallReadBuffer)}
	c2.Close()
	if _, err := c2.Read(make([]byte, 64<<10)); err == nil {
		t.Fatal("Read after Close returned no error")
	}
	if got := freeSlots(); got != before {
		t.Fatalf("a connection read after Close took a slot: %d free, want %d", got, before)
	}
	server.Close()
}
