// Package tracking is the MLflow tracking domain over the metadata core:
// experiments, runs, params, metrics, tags, dataset inputs and model
// outputs, logged models, and artifacts/list. API.Handlers gives the
// server its handlers, keyed by the route table (package routes).
//
// Files: api*.go are the HTTP layer (request decoding, validation with
// upstream's messages, response shapes); they never open a transaction.
// store_*.go are the queries: each operation is one (*API) method that runs
// its SQL in one metadata.Tx (insertRun, metricHistory, searchRunRows, ...),
// built from helpers that take the Tx. entities.go holds the JSON entities
// both share. See ../NOTES.md for what the domain still lacks.
package tracking
