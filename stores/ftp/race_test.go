//go:build race

package ftp_test

// raceEnabled: the race detector makes sync.Pool drop a share of what is
// put back, so libraries that recycle buffers through one (crypto/tls
// does, per record) allocate per packet.
const raceEnabled = true
