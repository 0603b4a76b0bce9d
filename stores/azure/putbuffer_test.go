package azure

import "testing"

// TestPutBuffer: blocks are allocated as the body needs them, at most
// blocksInFlight of them.
func TestPutBuffer(t *testing.T) {
	s := &Store{cfg: Config{BlockSize: 4 << 20}}
	for _, tc := range []struct {
		size, want int64
	}{
		{0, 0},
		{1, 1},
		{4<<20 - 1, 4<<20 - 1},
		{4 << 20, 4 << 20},
		{4<<20 + 1, 8 << 20},
		{1 << 30, 12 << 20},
		{-1, 12 << 20},
	} {
		if got := s.PutBuffer(tc.size); got != tc.want {
			t.Errorf("PutBuffer(%d) = %d; want %d", tc.size, got, tc.want)
		}
	}
}
