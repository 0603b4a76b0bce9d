package s3

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
)

// Part buffers
//
// A multipart Put holds at most partsInFlight parts in memory: one is read
// from the client while the earlier ones upload. With MLflow's 10 MiB
// chunk that is 30 MiB of long-lived buffers. On the Go heap they would
// count as live data, and the collector lets the heap grow to twice the
// live data (GOGC=100) before it collects: 30 MiB of buffers make a 60+
// MiB heap, whatever else the process does. So the buffers live outside
// the Go heap (an anonymous mmap where the OS has one, bufalloc_*.go),
// are reused through a small free list and are released explicitly; the
// heap then holds only the small stuff and stays at a few MiB.
//
// A buffer handed to the HTTP transport as a request body may still be
// read by it after the request returned (net/http documents that a
// failed RoundTrip can close, and so read, the body later). A buffer
// therefore reaches the transport only through a partReader, which the
// Put revokes before it reuses or releases the buffer: after revoke,
// Read fails without touching the memory.

// maxIdleBuffers caps the part buffers a store keeps for reuse between
// Puts: one upload's worth. More are allocated while more uploads run at
// once, and released when they end.
const maxIdleBuffers = partsInFlight

// getBuffer returns a part buffer of n bytes: a reused one when n is the
// configured part size, else a new one.
func (s *Store) getBuffer(n int64) []byte {
	if n == s.bufSize {
		select {
		case b := <-s.buffers:
			return b
		default:
		}
	}
	return allocBuffer(int(n))
}

// putBuffer keeps a buffer for reuse or releases it. The caller must have
// revoked every partReader over it.
func (s *Store) putBuffer(b []byte) {
	if int64(len(b)) == s.bufSize {
		select {
		case s.buffers <- b:
			return
		default:
		}
	}
	freeBuffer(b)
}

// readPart fills buf from r as io.ReadFull does and, with h set, hashes
// each piece as it arrives, while it is still in the CPU cache.
func readPart(r io.Reader, buf []byte, h hash.Hash) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if m > 0 && h != nil {
			h.Write(buf[n : n+m])
		}
		n += m
		if err != nil {
			if n == len(buf) {
				return n, nil // the last bytes came with the error, as io.ReadFull allows
			}
			if err == io.EOF {
				if n == 0 {
					return 0, io.EOF
				}
				return n, io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// newPartHash is the payload hash of a buffered part: SHA-256 when
// payloads are signed (plain http), none otherwise.
func (s *Store) newPartHash() hash.Hash {
	if s.signPayload {
		return sha256.New()
	}
	return nil
}

// sumHex is h's hex digest ("" for no hash: UNSIGNED-PAYLOAD).
func sumHex(h hash.Hash) string {
	if h == nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// errRevoked is what a revoked partReader returns.
var errRevoked = errors.New("s3: part buffer read after its request ended")

// partReader is a seekable reader over a part buffer that can be revoked
// (see above). It is an io.Seeker so minio-go can retry the request.
type partReader struct {
	mu  sync.Mutex
	b   []byte // nil once revoked
	off int
}

func newPartReader(b []byte) *partReader { return &partReader{b: b} }

// Read implements io.Reader.
func (p *partReader) Read(q []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.b == nil {
		return 0, errRevoked
	}
	if p.off >= len(p.b) {
		return 0, io.EOF
	}
	n := copy(q, p.b[p.off:])
	p.off += n
	return n, nil
}

// Seek implements io.Seeker.
func (p *partReader) Seek(offset int64, whence int) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.b == nil {
		return 0, errRevoked
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = int64(p.off) + offset
	case io.SeekEnd:
		abs = int64(len(p.b)) + offset
	default:
		return 0, errors.New("s3: partReader.Seek: invalid whence")
	}
	if abs < 0 || abs > int64(len(p.b)) {
		return 0, errors.New("s3: partReader.Seek: position out of range")
	}
	p.off = int(abs)
	return abs, nil
}

// revoke ends all access to the buffer; it returns once no Read is using
// it.
func (p *partReader) revoke() {
	p.mu.Lock()
	p.b = nil
	p.mu.Unlock()
}

// PutBuffer implements stores.PutBufferer: a single PUT (a known size
// under the multipart threshold) streams; a multipart upload holds up to
// partsInFlight parts (fewer when it has fewer), and a body of unknown
// length, which may turn out to need them, partsInFlight.
func (s *Store) PutBuffer(size int64) int64 {
	if s.singlePut(size) {
		return 0
	}
	p := partSizeFor(s.cfg.PartSize, size)
	n := int64(partsInFlight)
	if size >= 0 {
		n = min(n, max((size+p-1)/p, 1))
	}
	return n * p
}
