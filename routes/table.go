package routes

import (
	"fmt"
	"strings"
)

// All is every route upstream MLflow 3.11 serves, in spec order.
var All = parse(table)

// table is the route list in a compact form a reader can scan: a header
// "[area] mount base" (mount: api = /api and /ajax-api, ajax, prefixed,
// root) and then one line per rule, "METHODS path [provider]" below base,
// where a missing provider means not implemented (501) and "-" means left
// out on purpose (404). Paths use Flask's syntax.
const table = `
[server] prefixed
GET /health proxy
GET /version proxy
[server] api /3.0/mlflow
GET /server-info proxy
[server] root
GET /metrics proxy

[artifacts] api /2.0/mlflow-artifacts
GET /artifacts proxy
GET,PUT,DELETE /artifacts/<path:artifact_path> proxy
POST /mpu/create/<path:artifact_path> proxy
POST /mpu/complete/<path:artifact_path> proxy
POST /mpu/abort/<path:artifact_path> proxy
GET /presigned/<path:artifact_path> proxy
[artifacts] api /2.0/mlflow
POST /artifacts/presigned-upload-url

[experiments] api /2.0/mlflow
POST /experiments/create tracking
GET /experiments/get tracking
GET /experiments/get-by-name tracking
GET,POST /experiments/search tracking
POST /experiments/update tracking
POST /experiments/delete tracking
POST /experiments/restore tracking
POST /experiments/set-experiment-tag tracking
POST /experiments/delete-experiment-tag tracking

[runs] api /2.0/mlflow
POST /runs/create tracking
GET /runs/get tracking
POST /runs/update tracking
POST /runs/delete tracking
POST /runs/restore tracking
POST /runs/search tracking
POST /runs/set-tag tracking
POST /runs/delete-tag tracking
POST /runs/log-parameter tracking
POST /runs/log-metric tracking
POST /runs/log-batch tracking
POST /runs/log-inputs tracking
POST /runs/outputs tracking
POST /runs/log-model tracking
GET /metrics/get-history tracking
GET /metrics/get-history-bulk-interval tracking
GET /artifacts/list tracking

[logged-models] api /2.0/mlflow
POST /logged-models tracking
POST /logged-models/search tracking
GET,PATCH,DELETE /logged-models/<model_id> tracking
PATCH /logged-models/<model_id>/tags tracking
DELETE /logged-models/<model_id>/tags/<tag_key> tracking
POST /logged-models/<model_id>/params tracking
GET /logged-models/<model_id>/artifacts/directories tracking

[registry] api /2.0/mlflow
POST /registered-models/create registry
POST /registered-models/rename registry
PATCH /registered-models/update registry
DELETE /registered-models/delete registry
GET /registered-models/get registry
GET /registered-models/search registry
GET,POST /registered-models/get-latest-versions registry
POST /registered-models/set-tag registry
DELETE /registered-models/delete-tag registry
GET,POST,DELETE /registered-models/alias registry
POST /model-versions/create registry
PATCH /model-versions/update registry
POST /model-versions/transition-stage registry
DELETE /model-versions/delete registry
GET /model-versions/get registry
GET /model-versions/search registry
GET /model-versions/get-download-uri registry
POST /model-versions/set-tag registry
DELETE /model-versions/delete-tag registry

[webhooks] api /2.0/mlflow
GET,POST /webhooks registry
GET,PATCH,DELETE /webhooks/<webhook_id> registry
POST /webhooks/<webhook_id>/test registry

[traces] api /3.0/mlflow
POST /traces tracing
GET /traces/get tracing
GET /traces/batchGet tracing
POST /traces/batchGetInfos tracing
POST /traces/search tracing
POST /traces/delete-traces tracing
POST /traces/calculate-filter-correlation tracing
POST /traces/metrics tracing
GET /traces/<trace_id> tracing
PATCH,DELETE /traces/<trace_id>/tags tracing
POST /traces/<trace_id>/assessments tracing
GET,PATCH,DELETE /traces/<trace_id>/assessments/<assessment_id> tracing
[traces] api /2.0/mlflow
GET,POST /traces tracing
POST /traces/delete-traces tracing
POST /traces/link-to-run tracing
POST /traces/link-prompts tracing
PATCH /traces/<request_id> tracing
GET /traces/<request_id>/info tracing
PATCH,DELETE /traces/<request_id>/tags tracing
GET /unified-traces -
GET /get-online-trace-details -
[traces] root
POST /v1/traces otlp

[datasets] api /3.0/mlflow
POST /datasets/create
GET,POST /datasets/search
GET,DELETE /datasets/<dataset_id>
PATCH /datasets/<dataset_id>/tags
DELETE /datasets/<dataset_id>/tags/<key>
GET,POST,DELETE /datasets/<dataset_id>/records
GET /datasets/<dataset_id>/experiment-ids
POST /datasets/<dataset_id>/add-experiments
POST /datasets/<dataset_id>/remove-experiments

[scorers] api /3.0/mlflow
POST /scorers/register
GET /scorers/list
GET /scorers/versions
GET /scorers/get
DELETE /scorers/delete
GET /scorers/online-configs
PUT /scorers/online-config

[workspaces] api /3.0/mlflow
GET,POST /workspaces
GET,PATCH,DELETE /workspaces/<workspace_name>

[gateway] api /3.0/mlflow/gateway
POST /secrets/create
GET /secrets/get
POST /secrets/update
DELETE /secrets/delete
GET /secrets/list
POST /endpoints/create
GET /endpoints/get
POST /endpoints/update
DELETE /endpoints/delete
GET /endpoints/list
POST /endpoints/models/attach
POST /endpoints/models/detach
POST /endpoints/bindings/create
DELETE /endpoints/bindings/delete
GET /endpoints/bindings/list
POST /endpoints/set-tag
DELETE /endpoints/delete-tag
POST /model-definitions/create
GET /model-definitions/get
GET /model-definitions/list
POST /model-definitions/update
DELETE /model-definitions/delete
POST /budgets/create
GET /budgets/get
POST /budgets/update
DELETE /budgets/delete
GET /budgets/list
GET /budgets/windows
POST /guardrails/create
GET /guardrails/get
DELETE /guardrails/delete
GET /guardrails/list
POST /guardrails/add-to-endpoint
DELETE /guardrails/remove-from-endpoint
GET /guardrails/list-for-endpoint
PATCH /guardrails/update-config
[gateway] ajax /3.0/mlflow/gateway
GET /supported-providers
GET /supported-models
GET /provider-config
GET /secrets/config
[gateway] root /gateway
POST /<endpoint_name>/mlflow/invocations
POST /mlflow/v1/chat/completions
POST /openai/v1/chat/completions
POST /openai/v1/embeddings
POST /openai/v1/responses
POST /anthropic/v1/messages
POST /gemini/v1beta/models/<endpoint_name>:generateContent
POST /gemini/v1beta/models/<endpoint_name>:streamGenerateContent

[issues] api /3.0/mlflow
POST /issues
POST /issues/search
GET,PATCH /issues/<issue_id>
[issues] ajax /3.0/mlflow
POST /issues/invoke

[prompt-optimization] api /3.0/mlflow/prompt-optimization
POST /jobs
GET,POST /jobs/search
GET,DELETE /jobs/<job_id>
POST /jobs/<job_id>/cancel

[jobs] ajax /3.0/mlflow
GET /jobs/<job_id>
PATCH /jobs/cancel/<job_id>
POST /scorer/invoke
[jobs] root /ajax-api/3.0/jobs
POST /
POST /search
GET /<job_id>
PATCH /cancel/<job_id>

[ui] ajax /2.0/mlflow
GET /metrics/get-history-bulk
POST /experiments/search-datasets
POST /runs/create-promptlab-run
GET,POST /gateway-proxy
POST /upload-artifact
GET /get-trace-artifact tracing
GET /logged-models/<model_id>/artifacts/files tracking
[ui] ajax /3.0/mlflow
GET /get-trace-artifact tracing
GET,POST /ui-telemetry
POST /demo/generate
POST /demo/delete
[ui] prefixed
GET /get-artifact tracking
GET /model-versions/get-artifact registry
GET,POST /graphql
GET / -
GET /static-files/<path:path> -
[ui] root /ajax-api/3.0/mlflow/assistant
POST /message -
GET /sessions/<session_id>/stream -
GET,DELETE /sessions/<session_id> -
GET /providers/<provider>/health -
GET,PUT /config -
POST /skills/install -
`

// parse reads table; a malformed line is a programming error.
func parse(text string) Table {
	var t Table
	var area, base string
	var mount Mount
	mounts := map[string]Mount{"api": APIAndAjax, "ajax": Ajax, "prefixed": Prefixed, "root": Root}
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case strings.HasPrefix(f[0], "["):
			m, ok := mounts[f[1]]
			if !ok || len(f) > 3 {
				panic(fmt.Sprintf("routes: table line %d: bad header %q", n, line))
			}
			area, mount, base = strings.Trim(f[0], "[]"), m, ""
			if len(f) == 3 {
				base = f[2]
			}
		default:
			if len(f) > 3 || len(f) < 2 {
				panic(fmt.Sprintf("routes: table line %d: bad route %q", n, line))
			}
			var p Provider
			if len(f) == 3 {
				p = Provider(f[2])
			}
			path := base + f[1]
			if f[1] == "/" && base != "" {
				path = base + "/"
			}
			for _, m := range strings.Split(f[0], ",") {
				t = append(t, Route{Method: m, Path: path, Mount: mount, Area: area, Provider: p})
			}
		}
	}
	return t
}
