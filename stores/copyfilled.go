package stores

import (
	"io"
	"sync"
)

// CopyFilled copies r to w through buf, filling buf before each write to
// w: only the last write (or the one before a read error) is shorter
// than buf. io.CopyBuffer writes whatever each Read returned, which for
// a network body or an HDFS block is one packet or one socket read (64 to
// 256 KiB); on the download path each write is a syscall to the client's
// socket, and fewer, larger ones are most of what the hop can save.
//
// It returns the bytes written and the first error: w's, io.ErrShortWrite
// when w wrote less without one, or r's other than io.EOF. The bytes read
// before r's error are written first, so w has every byte r gave.
func CopyFilled(w io.Writer, r io.Reader, buf []byte) (written int64, err error) {
	for {
		n, rerr := 0, error(nil)
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if m < n {
				return written, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

const (
	// LargeDownloadBuffer is the buffer CopyDownload fills before each
	// write when one is free: 1 MiB, the chunk MLflow's client reads.
	LargeDownloadBuffer = 1 << 20
	// SmallDownloadBuffer is the buffer of a download that finds none
	// free: what every download used before the large ones.
	SmallDownloadBuffer = 256 << 10
	// MaxLargeBuffers bounds the large buffers (each at most
	// LargeDownloadBuffer) in use at once across every download, the
	// copy buffers and a driver's own that take a LargeBufferSlot: however
	// many downloads run, those add at most 32 MiB.
	MaxLargeBuffers = 32
)

var (
	largeSlots   = make(chan struct{}, MaxLargeBuffers)
	largeBuffers = sync.Pool{New: func() any { b := make([]byte, LargeDownloadBuffer); return &b }}
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, SmallDownloadBuffer); return &b }}
)

// LargeBufferSlot takes one of the MaxLargeBuffers slots if one is free
// and returns the function that gives it back (call it once), or nil
// when none is free: the caller then makes do with a small buffer. It
// never waits, so a burst of downloads is never slowed to wait for
// memory, only served with smaller writes.
func LargeBufferSlot() (release func()) {
	select {
	case largeSlots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-largeSlots }) }
	default:
		return nil
	}
}

// CopyDownload is CopyFilled through a pooled buffer: a large one
// (LargeDownloadBuffer) when a LargeBufferSlot is free, else a small one.
// Drivers' download readers call it from their WriteTo.
func CopyDownload(w io.Writer, r io.Reader) (int64, error) {
	if release := LargeBufferSlot(); release != nil {
		defer release()
		bufp := largeBuffers.Get().(*[]byte)
		defer largeBuffers.Put(bufp)
		return CopyFilled(w, r, *bufp)
	}
	bufp := smallBuffers.Get().(*[]byte)
	defer smallBuffers.Put(bufp)
	return CopyFilled(w, r, *bufp)
}
