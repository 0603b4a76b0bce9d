// Package webhook is the machinery behind MLflow's model-registry webhooks
// (spec tracking-api.md §2.5) that needs no database: the event kinds and
// their valid combinations, the payload shapes, the HMAC signature, the URL
// rules (scheme allow-list and SSRF guard, enforced again at connect time),
// Fernet encryption of secrets at rest, the TTL cache of webhooks by event
// and the bounded delivery pool with upstream's retry policy.
//
// Package registry owns the webhook rows and calls into this package; this
// package never touches the database.
package webhook
