//go:build !unix

package s3

// allocBuffer returns a buffer of n bytes (on the Go heap here; see
// buffers.go for why unix systems map it outside).
func allocBuffer(n int) []byte { return make([]byte, n) }

// freeBuffer lets the collector have b.
func freeBuffer([]byte) {}
