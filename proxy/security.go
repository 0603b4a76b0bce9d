package proxy

import (
	"log/slog"
	"net/netip"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/config"
)

// The 403 texts of upstream's security middleware (security_utils.py).
const (
	invalidHostMsg = "Invalid Host header - possible DNS rebinding attack detected"
	corsBlockedMsg = "Cross-origin request blocked"
)

// corsMethods is what preflights may ask for (upstream's CORS setup).
const corsMethods = "GET, POST, PUT, DELETE, OPTIONS, PATCH"

// security is upstream MLflow's security middleware (3.5+, default on):
// a Host allow list against DNS rebinding, a block on state-changing
// cross-origin requests to the API, CORS headers and preflight answers for
// allowed origins. Everything is decided once at start-up; a request costs
// a few string comparisons and at most one precompiled regexp match.
type security struct {
	log *slog.Logger
	// anyHost: Host is not checked ("*" in the list, or disabled).
	anyHost bool
	// defaultHosts: no list was given; hostOK applies the built-in rule.
	defaultHosts bool
	// hosts match the whole Host header (patterns with a port);
	// hostNames match the name without its port (patterns without one).
	hosts, hostNames *regexp.Regexp
	// boundHost is --host, lower-cased (accepted under the defaults).
	boundHost string
	// exempt are the paths served whatever the Host (health checks and
	// Prometheus scrapes use names of their own).
	exempt []string
	// apiPrefixes are the paths the Origin check covers.
	apiPrefixes []string

	anyOrigin bool
	origins   *regexp.Regexp // nil: only localhost origins
	disabled  bool
}

func newSecurity(cfg *config.Config, log *slog.Logger) (*security, error) {
	sc := cfg.Security
	s := &security{
		log:       log,
		disabled:  sc.Disabled,
		boundHost: strings.ToLower(strings.Trim(cfg.Host, "[]")),
		exempt:    []string{"/health", "/version", "/metrics"},
	}
	p := cfg.StaticPrefix
	// /v1/traces (OTLP ingest) is never static-prefixed and writes, so a
	// foreign origin may not post to it either.
	s.apiPrefixes = []string{"/api/", "/ajax-api/", "/v1/traces"}
	if p != "" {
		s.exempt = append(s.exempt, p+"/health", p+"/version")
		s.apiPrefixes = append(s.apiPrefixes, p+"/api/", p+"/ajax-api/")
	}
	switch {
	case sc.Disabled || contains(sc.AllowedHosts, "*"):
		s.anyHost = true
	case len(sc.AllowedHosts) == 0:
		s.defaultHosts = true
	default:
		var withPort, noPort []string
		for _, h := range sc.AllowedHosts {
			if strings.Contains(h, ":") {
				withPort = append(withPort, h)
			} else {
				noPort = append(noPort, h)
			}
		}
		var err error
		if s.hosts, err = compileOrNil(withPort); err != nil {
			return nil, err
		}
		if s.hostNames, err = compileOrNil(noPort); err != nil {
			return nil, err
		}
	}
	switch {
	case contains(sc.CORSAllowedOrigins, "*"):
		s.anyOrigin = true
	case len(sc.CORSAllowedOrigins) > 0:
		re, err := config.CompileGlobs(sc.CORSAllowedOrigins)
		if err != nil {
			return nil, err
		}
		s.origins = re
	}
	return s, nil
}

func compileOrNil(patterns []string) (*regexp.Regexp, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	return config.CompileGlobs(patterns)
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// check applies the Host and Origin rules and the CORS headers. When it
// returns true the request has been answered (403 or a preflight) and
// must not go further.
func (s *security) check(c *fiber.Ctx) bool {
	if s.disabled {
		return false
	}
	path := c.Path()
	if !s.anyHost && !s.isExempt(path) {
		if host := c.Get(fiber.HeaderHost); !s.hostOK(host) {
			s.log.WarnContext(c.UserContext(), "rejected request with invalid Host header",
				"request_id", RequestID(c.UserContext()), "host", clip(host))
			return plainStatus(c, fiber.StatusForbidden, invalidHostMsg)
		}
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return false
	}
	allowed := s.originOK(origin)
	method := c.Method()
	if method == fiber.MethodOptions && c.Get(fiber.HeaderAccessControlRequestMethod) != "" {
		return s.preflight(c, path, origin, allowed)
	}
	if !allowed && isStateChanging(method) && s.isAPI(path) {
		s.log.WarnContext(c.UserContext(), "blocked cross-origin request",
			"request_id", RequestID(c.UserContext()), "origin", clip(origin))
		return plainStatus(c, fiber.StatusForbidden, corsBlockedMsg)
	}
	if allowed {
		h := &c.Response().Header
		if s.anyOrigin && c.Get(fiber.HeaderCookie) == "" && c.Get(fiber.HeaderAuthorization) == "" {
			h.Set(fiber.HeaderAccessControlAllowOrigin, "*")
		} else {
			h.Set(fiber.HeaderAccessControlAllowOrigin, origin)
			h.Set(fiber.HeaderVary, "Origin")
		}
		h.Set(fiber.HeaderAccessControlAllowCredentials, "true")
		h.Set(fiber.HeaderAccessControlExposeHeaders, "*")
	}
	return false
}

// preflight answers a CORS preflight as upstream's CORS middleware does:
// the origin echoed when allowed, the methods, the requested headers
// mirrored; 400 when the origin or method is not allowed. API paths get
// 204 (upstream turns their 200 into 204).
func (s *security) preflight(c *fiber.Ctx, path, origin string, allowed bool) bool {
	h := &c.Response().Header
	h.Set(fiber.HeaderVary, "Origin")
	h.Set(fiber.HeaderAccessControlAllowMethods, corsMethods)
	h.Set(fiber.HeaderAccessControlMaxAge, "600")
	h.Set(fiber.HeaderAccessControlAllowCredentials, "true")
	if rh := c.Get(fiber.HeaderAccessControlRequestHeaders); rh != "" {
		h.Set(fiber.HeaderAccessControlAllowHeaders, rh)
	}
	var failures []string
	if allowed {
		h.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	} else {
		failures = append(failures, "origin")
	}
	switch m := c.Get(fiber.HeaderAccessControlRequestMethod); {
	case s.anyOrigin && m == fiber.MethodHead, isStateChanging(m), m == fiber.MethodGet, m == fiber.MethodOptions:
	default:
		failures = append(failures, "method")
	}
	if len(failures) > 0 {
		return plainStatus(c, fiber.StatusBadRequest, "Disallowed CORS "+strings.Join(failures, ", "))
	}
	if s.isAPI(path) {
		c.Status(fiber.StatusNoContent)
		return true
	}
	return plainStatus(c, fiber.StatusOK, "OK")
}

func plainStatus(c *fiber.Ctx, status int, msg string) bool {
	c.Status(status)
	c.Response().SetBodyString(msg)
	c.Set(fiber.HeaderContentType, "text/plain")
	return true
}

func isStateChanging(m string) bool {
	switch m {
	case fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete, fiber.MethodPatch:
		return true
	}
	return false
}

func (s *security) isExempt(path string) bool {
	for _, e := range s.exempt {
		if path == e {
			return true
		}
	}
	return false
}

func (s *security) isAPI(path string) bool {
	for _, p := range s.apiPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// hostOK is upstream's is_allowed_host_header, except that a listed
// pattern without a ':' matches the name whatever the port (upstream
// compares it with the whole header, so "mlflow.example.com" refuses
// "mlflow.example.com:5000"). With no list given, the
// default accepts localhost and IP literals that are loopback, private
// (RFC 1918, fc00::/7) or unspecified, and the --host address, with or
// without a port. Upstream writes the private ranges as text patterns
// ("10.*"), which also match names such as 10.evil.example that an
// attacker can point anywhere; Ferry compares addresses instead.
func (s *security) hostOK(host string) bool {
	if host == "" {
		return false
	}
	name, ok := hostName(host)
	if !ok {
		return false
	}
	if !s.defaultHosts {
		return (s.hosts != nil && s.hosts.MatchString(host)) ||
			(s.hostNames != nil && s.hostNames.MatchString(name))
	}
	if strings.EqualFold(name, "localhost") || (s.boundHost != "" && strings.EqualFold(name, s.boundHost)) {
		return true
	}
	ip, err := netip.ParseAddr(name)
	if err != nil || ip.Zone() != "" {
		return false
	}
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified()
}

// hostName splits a Host header into its name (brackets removed from an
// IPv6 literal) and checks that the port, if any, is a number.
func hostName(host string) (string, bool) {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		name, port = host[1:end], host[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", false
			}
			port = port[1:]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i+1:]
		if strings.IndexByte(name, ':') >= 0 {
			return "", false // an IPv6 literal must be bracketed
		}
		if port == "" {
			return "", false
		}
	}
	if len(port) > 5 {
		return "", false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", false
		}
	}
	return name, name != ""
}

// originOK: localhost origins (any scheme and port, as upstream's
// is_localhost_origin) and the configured ones.
func (s *security) originOK(origin string) bool {
	if s.anyOrigin || isLocalhostOrigin(origin) {
		return true
	}
	return s.origins != nil && s.origins.MatchString(origin)
}

// isLocalhostOrigin reports whether origin's host is localhost, 127.0.0.1
// or ::1.
func isLocalhostOrigin(origin string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	if !ok {
		return false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	name, ok := hostName(rest)
	if !ok {
		return false
	}
	return strings.EqualFold(name, "localhost") || name == "127.0.0.1" || name == "::1"
}

// clip bounds a client-supplied value before it is logged.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return strings.Clone(s)
}
