// Package layout holds no code: its test checks the import rules of Ferry's
// package layout (see the README's Layout section), so that a later change
// cannot break them quietly:
//
//   - the metadata core (metadata, metadata/schema, metadata/dburi,
//     metadata/search, metadata/internal/...) imports no domain package;
//   - a domain package (any other metadata/<name>: tracking, later registry
//     and tracing) imports no other domain;
//   - wire imports nothing of Ferry's but stores;
//   - stores/... imports nothing of Ferry's outside stores/;
//   - routes imports nothing of Ferry's but wire (and what wire imports);
//   - inside a domain, the HTTP layer (api*.go) opens no transaction and
//     names no metadata.Tx: queries live in store_*.go.
package layout
