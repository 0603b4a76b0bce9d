package gcs

import "testing"

// TestPutBuffer: one resumable chunk, or a smaller object whole (rounded
// up to the 256 KiB chunk grain); nothing for a streamed upload (a known
// size from one chunk to below the multipart threshold).
func TestPutBuffer(t *testing.T) {
	s := &Store{cfg: Config{UploadChunkSize: 8 << 20, MultipartThreshold: 500 << 20}}
	for _, tc := range []struct {
		size, want int64
	}{
		{0, 256 << 10},
		{1 << 20, 1<<20 + 256<<10},
		{8<<20 - 1, 8 << 20},
		{8 << 20, 0},
		{500<<20 - 1, 0},
		{500 << 20, 8 << 20},
		{1 << 30, 8 << 20},
		{-1, 8 << 20},
	} {
		if got := s.PutBuffer(tc.size); got != tc.want {
			t.Errorf("PutBuffer(%d) = %d; want %d", tc.size, got, tc.want)
		}
	}
}
