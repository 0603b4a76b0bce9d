package sftp

import (
	"sync/atomic"

	"github.com/pkg/sftp"

	"github.com/ferryml/ferry/stores"
)

// minShareBytes is the least a transfer keeps in flight however many run
// at once (8 requests of 32 KiB; at least 2 requests of any size): below
// it a transfer waits a round trip for every few packets.
const minShareBytes = 8 * BasePacket

// inFlightBudget shares the store's in-flight bytes (RequestsInFlight
// requests of 32 KiB: 2 MiB by default) among the pipelined transfers
// (uploads and downloads) running at once, so that the data the store
// keeps in flight, and the buffers and per-packet garbage that go with it,
// stay about the same whether one transfer runs or eight. A transfer alone
// gets the whole budget (OpenSSH's 64 × 32 KiB by default, which a link
// with latency needs); n transfers at once get budget/n each, at least
// minShareBytes. Shares are counted in the connection's request size
// (conn.packet), so larger packets mean fewer requests, not more bytes. A
// share is fixed when a transfer starts: one that began alone keeps it
// when others join, so the bound is budget + (n-1)·budget/n in the worst
// case, not budget·n.
type inFlightBudget struct {
	total  int // requests of BasePacket
	active atomic.Int64
}

// begin counts a transfer in and sets its share, in requests of c's
// packet size, on c, which the caller holds exclusively (pooled
// connections serve one operation at a time, and pkg/sftp reads the
// setting when a transfer starts). The returned func counts the transfer
// out.
func (b *inFlightBudget) begin(c *conn) (share int, end func()) {
	n := b.active.Add(1)
	packet := c.packet
	if packet <= 0 {
		packet = BasePacket
	}
	totalBytes := b.total * BasePacket
	floor := min(minShareBytes, totalBytes)
	bytes := max(totalBytes/int(n), floor)
	share = max(bytes/packet, min(2, max(totalBytes/packet, 1)))
	// The option only sets a field; it fails for share < 1, which the
	// arithmetic above rules out.
	_ = sftp.MaxConcurrentRequestsPerFile(share)(c.sftp)
	return share, func() { b.active.Add(-1) }
}

// gcAdvice is the collector policy the store advises (stores.GCAdvisor).
// x/crypto/ssh and pkg/sftp allocate every received packet afresh (twice
// per byte on a download), so at full speed the heap grows by the garbage
// made between collections. GOGC=100 let eight transfers at once peak at
// 69–75 MiB; a flat GOGC=50 kept them at 58–62 MiB but, against the few
// MiB one transfer holds live, collected every few MiB moved. Letting the
// heap reach a fixed 16 MiB before collecting (and GOGC=50 once the live
// heap leaves no room for that) keeps the peak and collects less often
// (stores/sftp/NOTES.md has the figures).
var gcAdvice = stores.PerPacketGarbageAdvice

// GCAdvice implements stores.GCAdvisor.
func (s *Store) GCAdvice() stores.GCAdvice { return gcAdvice }
