// Package registry serves MLflow's model registry REST API (spec
// tracking-api.md §2.4, semantics §5.8) from the metadata core's tables
// registered_models, model_versions, registered_model_tags,
// model_version_tags and registered_model_aliases, always in workspace
// 'default' (single-tenant, as upstream without --enable-workspaces).
//
// api_*.go decode, validate and encode and never open a transaction;
// store*.go hold the SQL, one (*API) method per operation in one
// transaction. It is a metadata domain: it imports the core (metadata,
// schema, search), wire and routes, never another domain.
package registry
