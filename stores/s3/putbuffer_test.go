package s3

import "testing"

// TestPutBuffer: single PUTs stream (nothing reserved); multipart uploads
// and bodies of unknown length reserve partsInFlight parts, of the size a
// large object's parts grow to.
func TestPutBuffer(t *testing.T) {
	s := &Store{cfg: Config{PartSize: 10 << 20, MultipartThreshold: 500 << 20}}
	for _, tc := range []struct {
		size, want int64
	}{
		{0, 0},
		{1 << 20, 0},
		{500<<20 - 1, 0},
		{500 << 20, 3 * 10 << 20},
		{12 << 20, 0}, // under the threshold: one streamed PUT
		{-1, 3 * 10 << 20},
		{200 << 30, 3 * 21 << 20}, // 10,000 parts of 10 MiB are too few: 21 MiB parts
	} {
		if got := s.PutBuffer(tc.size); got != tc.want {
			t.Errorf("PutBuffer(%d) = %d; want %d", tc.size, got, tc.want)
		}
	}
	// A low threshold: a multipart upload of two parts holds two.
	low := &Store{cfg: Config{PartSize: 10 << 20, MultipartThreshold: 6 << 20}}
	if got := low.PutBuffer(12 << 20); got != 2*10<<20 {
		t.Errorf("two-part upload: PutBuffer = %d MiB; want 20", got>>20)
	}
	// r2:// and b2:// stores forward to the S3 driver's figure.
	e := &EndpointStore{s: s, scheme: "r2"}
	if got := e.PutBuffer(-1); got != 3*10<<20 {
		t.Errorf("EndpointStore.PutBuffer(-1) = %d; want 30 MiB", got)
	}
}
