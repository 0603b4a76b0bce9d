// Package tracking is the MLflow tracking domain over the metadata core:
// experiments, runs, params, metrics, tags, dataset inputs and model
// outputs, logged models, and artifacts/list. API.Handlers gives the
// server its handlers, keyed by the route table (package routes).
//
// Files: api*.go are the HTTP layer (request decoding, validation with
// upstream's messages, response shapes); store_*.go are the queries (the SQL
// each operation runs inside a metadata.Tx); entities.go holds the JSON
// entities both share. api_search.go and api_artifacts.go still run their
// queries beside the handlers (see ../NOTES.md, which also lists what the
// domain lacks).
package tracking
