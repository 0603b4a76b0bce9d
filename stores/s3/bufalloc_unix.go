//go:build unix

package s3

import "syscall"

// allocBuffer returns n bytes of anonymous memory outside the Go heap
// (see buffers.go). It falls back to the heap if the mapping fails.
func allocBuffer(n int) []byte {
	if n <= 0 {
		return nil
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	return b
}

// freeBuffer releases a buffer from allocBuffer. Nothing may use it after.
func freeBuffer(b []byte) {
	if len(b) == 0 {
		return
	}
	if err := syscall.Munmap(b); err != nil {
		// A heap fallback from allocBuffer: the collector frees it.
		return
	}
}
