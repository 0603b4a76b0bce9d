package sftp

import (
	"slices"
	"testing"

	"github.com/pkg/sftp"
)

// TestInFlightBudget: a transfer alone gets the whole budget, concurrent
// ones split it, none gets less than minShare (or the budget, when that is
// smaller), and ended transfers give their part back.
func TestInFlightBudget(t *testing.T) {
	c := &conn{sftp: &sftp.Client{}, packet: BasePacket}
	b := &inFlightBudget{total: 64}
	var ends []func()
	var shares []int
	for range 10 {
		share, end := b.begin(c)
		shares = append(shares, share)
		ends = append(ends, end)
	}
	want := []int{64, 32, 21, 16, 12, 10, 9, 8, 8, 8}
	for i := range want {
		if shares[i] != want[i] {
			t.Fatalf("shares with 1..10 transfers = %v; want %v", shares, want)
		}
	}
	for _, end := range ends[1:] {
		end()
	}
	if share, end := b.begin(c); share != 32 {
		t.Errorf("with one transfer left, a new one gets %d; want 32", share)
	} else {
		end()
	}
	ends[0]()
	if b.active.Load() != 0 {
		t.Errorf("%d transfers still counted after all ended", b.active.Load())
	}

	// Large packets: the same bytes in fewer requests, never fewer
	// than two per transfer.
	big := &conn{sftp: &sftp.Client{}, packet: OpenSSHMaxPacket}
	var bigShares []int
	ends = ends[:0]
	for range 8 {
		share, end := b.begin(big)
		bigShares = append(bigShares, share)
		ends = append(ends, end)
	}
	for _, end := range ends {
		end()
	}
	if want := []int{8, 4, 2, 2, 2, 2, 2, 2}; !slices.Equal(bigShares, want) {
		t.Errorf("shares of 255 KiB requests with 1..8 transfers = %v; want %v", bigShares, want)
	}

	small := &inFlightBudget{total: 4}
	s1, e1 := small.begin(c)
	s2, e2 := small.begin(c)
	e1()
	e2()
	if s1 != 4 || s2 != 4 {
		t.Errorf("budget 4: shares %d, %d; want 4, 4 (never more than the budget's own size as the floor)", s1, s2)
	}
}

// extensions is a server's advertised SFTP extensions.
type extensions map[string]bool

func (e extensions) HasExtension(name string) (string, bool) { return "1", e[name] }

// TestPacketSize: large requests only for OpenSSH servers that advertise
// limits@openssh.com, unless configured.
func TestPacketSize(t *testing.T) {
	limits := extensions{"limits@openssh.com": true}
	for _, tc := range []struct {
		name       string
		configured int
		banner     string
		ext        extensions
		want       int
	}{
		{"OpenSSH with limits", 0, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", limits, OpenSSHMaxPacket},
		{"OpenSSH without limits (before 8.7)", 0, "SSH-2.0-OpenSSH_8.4", extensions{}, BasePacket},
		{"another server claiming limits", 0, "SSH-2.0-SomeServer_1.0", limits, BasePacket},
		{"configured down", 32768, "SSH-2.0-OpenSSH_9.2p1", limits, BasePacket},
		{"configured", 65536, "SSH-2.0-SomeServer_1.0", extensions{}, 65536},
	} {
		if got := packetSize(tc.configured, tc.banner, tc.ext); got != tc.want {
			t.Errorf("%s: packetSize = %d; want %d", tc.name, got, tc.want)
		}
	}
}
