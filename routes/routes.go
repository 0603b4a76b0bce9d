// Package routes is the one table of every HTTP route upstream MLflow 3.11
// serves (spec tracking-api.md §2, §2.14; artifacts-api.md §2, §5.4), each
// marked with the Ferry package that serves it or as not implemented, and
// the code that mounts the table on a fiber router.
//
// The rule it enforces: a route upstream serves but Ferry does not (yet)
// answers 501 NOT_IMPLEMENTED in MLflow's error shape, so a client learns
// the feature is missing; a path upstream does not serve matches nothing
// and answers 404 ENDPOINT_NOT_FOUND, so no client is told a route exists
// that never will.
package routes

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/wire"
)

// Mount says under which URL prefixes a route's Path is served.
type Mount uint8

const (
	// APIAndAjax serves Path under <static-prefix>/api and
	// <static-prefix>/ajax-api (every proto RPC).
	APIAndAjax Mount = iota
	// Ajax serves Path under <static-prefix>/ajax-api only (UI helpers).
	Ajax
	// Prefixed serves Path under the static prefix.
	Prefixed
	// Root serves Path at the server root, ignoring the static prefix
	// (/metrics and upstream's FastAPI routes).
	Root
)

// Provider names the Ferry package whose handlers serve a route.
type Provider string

// The providers. A route with no Provider is known but not implemented.
const (
	// Proxy is package proxy: the server routes and mlflow-artifacts.
	Proxy Provider = "proxy"
	// Tracking is package metadata/tracking.
	Tracking Provider = "tracking"
	// Registry is package metadata/registry.
	Registry Provider = "registry"
	// Tracing is package metadata/tracing.
	Tracing Provider = "tracing"
	// OTLP is package metadata/tracing/otlp (POST /v1/traces).
	OTLP Provider = "otlp"
	// NotImplemented marks a route Ferry does not serve yet: 501.
	NotImplemented Provider = ""
	// Outside marks a route Ferry deliberately leaves out and answers 404
	// for, as for any unknown path (the UI bundle, Databricks-only stubs).
	Outside Provider = "-"
)

// Route is one upstream route.
type Route struct {
	Method string
	// Path is upstream's rule in Flask syntax (<var>, <path:var>) below
	// the mount's prefix, e.g. /2.0/mlflow/runs/get under APIAndAjax.
	Path  string
	Mount Mount
	// Area is the spec section's subject, for readers and `ferry routes`.
	Area     string
	Provider Provider
}

// Key identifies the route's handler: method and Path.
func (r Route) Key() string { return r.Method + " " + r.Path }

// URLs are the route's rules with the mount's prefixes, in Flask syntax;
// prefix is the static prefix ("" for none).
func (r Route) URLs(prefix string) []string {
	switch r.Mount {
	case APIAndAjax:
		return []string{prefix + "/api" + r.Path, prefix + "/ajax-api" + r.Path}
	case Ajax:
		return []string{prefix + "/ajax-api" + r.Path}
	case Prefixed:
		return []string{prefix + r.Path}
	default:
		return []string{r.Path}
	}
}

// Status is how Ferry answers the route: "served", "501" or "404".
func (r Route) Status() string {
	switch r.Provider {
	case NotImplemented:
		return "501"
	case Outside:
		return "404"
	default:
		return "served"
	}
}

var flaskVar = regexp.MustCompile(`<(?:[a-z]+:)?([a-z_]+)>`)

// fiberPath turns a Flask rule into fiber's syntax: <path:x> becomes the
// wildcard *, <x> the parameter :x.
func fiberPath(rule string) string {
	// A literal colon (gemini's models/<name>:generateContent) is escaped
	// so fiber does not read it as a parameter.
	var esc strings.Builder
	depth := 0
	for _, r := range rule {
		switch {
		case r == '<':
			depth++
		case r == '>':
			depth--
		case r == ':' && depth == 0:
			esc.WriteString(`\`)
		}
		esc.WriteRune(r)
	}
	return flaskVar.ReplaceAllStringFunc(esc.String(), func(v string) string {
		if strings.HasPrefix(v, "<path:") {
			return "*"
		}
		return ":" + flaskVar.FindStringSubmatch(v)[1]
	})
}

// dynamic reports whether a rule has variables: fiber matches in order of
// registration, and upstream's static rules win over dynamic ones
// (traces/get over traces/<trace_id>).
func dynamic(rule string) bool { return strings.Contains(rule, "<") }

// Handlers maps Route.Key to the handler serving it.
type Handlers map[string]fiber.Handler

// Mount registers the routes of t that keep accepts (all when keep is nil)
// on prefixed (the router below the static prefix), or on root for Root
// routes: served routes get their handler from hs, not implemented ones
// the 501. Routes outside Ferry are not registered, so they answer 404 like
// unknown paths. Static rules are registered before dynamic ones, and a GET
// rule also answers HEAD, as Flask's do.
//
// It panics on a handler for a route the table does not mark as served: a
// programming error a test finds before a server starts. A served route
// without a handler (a test server with only some domains) answers 501.
func (t Table) Mount(prefixed, root fiber.Router, hs Handlers, keep func(Route) bool) {
	if keep == nil {
		keep = func(Route) bool { return true }
	}
	known := map[string]bool{}
	for _, rt := range t {
		if keep(rt) && rt.Provider != NotImplemented && rt.Provider != Outside {
			known[rt.Key()] = true
		}
	}
	for k := range hs {
		if !known[k] {
			panic(fmt.Sprintf("routes: handler for %q, which the route table does not mark as served", k))
		}
	}
	ordered := make(Table, 0, len(t))
	for _, rt := range t {
		if keep(rt) && rt.Provider != Outside {
			ordered = append(ordered, rt)
		}
	}
	sort.SliceStable(ordered, func(i, j int) bool { return !dynamic(ordered[i].Path) && dynamic(ordered[j].Path) })
	for _, rt := range ordered {
		h := hs[rt.Key()]
		if h == nil {
			h = notImplemented
		}
		router := prefixed
		if rt.Mount == Root {
			router = root
		}
		for _, u := range rt.URLs("") {
			router.Add(rt.Method, fiberPath(u), h)
			if rt.Method == fiber.MethodGet {
				router.Add(fiber.MethodHead, fiberPath(u), h)
			}
		}
	}
}

// notImplemented answers a route upstream serves and Ferry does not.
func notImplemented(c *fiber.Ctx) error {
	return wire.Send(c, wire.Errorf(wire.NotImplemented, "Ferry does not implement %s %s yet.", c.Method(), c.Path()))
}

// Table is a list of routes.
type Table []Route

// Markdown renders the table for ROUTES.md, one row per route and mount.
func (t Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| Area | Method | Path | Ferry |\n| --- | --- | --- | --- |\n")
	for _, rt := range t {
		for _, u := range rt.URLs("") {
			status := rt.Status()
			if status == "served" {
				status = "served (" + string(rt.Provider) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", rt.Area, rt.Method, u, status)
		}
	}
	return b.String()
}

// Merge joins the handler maps of several packages; a route served twice is
// a programming error.
func Merge(hs ...Handlers) Handlers {
	out := Handlers{}
	for _, h := range hs {
		for k, v := range h {
			if _, dup := out[k]; dup {
				panic(fmt.Sprintf("routes: two handlers for %q", k))
			}
			out[k] = v
		}
	}
	return out
}
