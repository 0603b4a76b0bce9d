// Package tracking is the MLflow tracking domain over the metadata core:
// experiments, runs, params, metrics, tags, dataset inputs and model
// outputs, logged models, and artifacts/list. API.Handlers gives the
// server its handlers, keyed by the route table (package routes).
//
// Files: api*.go are the HTTP layer (request decoding, validation with
// upstream's messages, response shapes); store_*.go are the queries (the SQL
// each operation runs inside a metadata.Tx); entities.go holds the JSON
// entities both share. See ../NOTES.md for what the domain still lacks.
package tracking
