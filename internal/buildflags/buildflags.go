// Package buildflags holds the `go build` arguments of a ferry binary, for
// the tools that build one (test/ferrytest, the benchmarks). test/run.sh,
// the Dockerfile and the README repeat them; keep them in step.
//
// Both cut the idle memory of every Ferry process without changing what
// it does (measured in the README § Benchmarks and stores/gcs/NOTES.md):
//
//   - Tags: cloud.google.com/go/storage's documented disable_grpc_modules
//     drops the gRPC client's DirectPath (xDS, RLS and the Envoy protobufs
//     behind them: 20 MB of binary and their package initialisers). The
//     GCS driver uses the library's JSON/XML HTTP client only.
//   - LDFlags: the binary's segments start 4 KiB past a 2 MiB boundary.
//     Linux 6.x keeps an executable's page cache in folios of up to 2 MiB
//     and, when file offsets and addresses are 2 MiB-congruent (the
//     linker's default), maps a whole folio with one PMD at the first
//     touch, so each scattered page that package initialisers touch costs
//     2 MiB of RSS. Off the boundary the kernel maps pages (and its
//     fault-around window) instead. Ferry links externally (cgo SQLite),
//     hence -extldflags; the cost is a few more iTLB entries for hot code.
package buildflags

// Tags is the -tags value.
const Tags = "disable_grpc_modules"

// LDFlags is the -ldflags value.
const LDFlags = "-extldflags=-Wl,-Ttext-segment=0x401000"

// Args are the flags to put after "go build".
func Args() []string { return []string{"-tags", Tags, "-ldflags", LDFlags} }
