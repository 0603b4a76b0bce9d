package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// nameRE is upstream's webhook name rule: 1-63 characters, alphanumeric
// at both ends, letters, digits, '.', '_' and '-' inside.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)

// ValidateName checks a webhook name.
func ValidateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("Webhook name cannot be empty")
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("Invalid webhook name '%s'. Name must be between 1 and 63 characters, start and end with an alphanumeric character, and contain only alphanumeric characters, underscores, hyphens, or periods.", name)
	}
	return nil
}

// Guard is the URL policy: the allowed schemes
// (MLFLOW_WEBHOOK_ALLOWED_SCHEMES) and, unless AllowPrivate
// (MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS), the SSRF rule that every address the
// host resolves to is public. The rule is checked when a URL is saved and
// again on every connection (DialControl), so a name that resolves to a
// public address at validation and a private one later (DNS rebinding) or
// a redirect to a private address is still refused.
type Guard struct {
	Schemes      []string
	AllowPrivate bool
	// LookupIP resolves a host name; nil uses net.DefaultResolver.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// public judges an address; nil is IsPublic (tests replace it).
	public func(netip.Addr) bool
}

func (g *Guard) isPublic(a netip.Addr) bool {
	if g.public != nil {
		return g.public(a)
	}
	return IsPublic(a)
}

// resolveTimeout bounds the host lookup of CheckURL.
const resolveTimeout = 10 * time.Second

// ErrNotPublic marks a refusal of the SSRF rule; deliveries refused so
// are not retried.
var ErrNotPublic = errors.New("webhook address is not public")

func (g *Guard) schemeAllowed(s string) bool {
	for _, a := range g.Schemes {
		if strings.EqualFold(a, s) {
			return true
		}
	}
	return false
}

// CheckURL validates a webhook URL: present, of an allowed scheme, with a
// host, and (unless private addresses are allowed) resolving only to
// public addresses.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("Webhook URL cannot be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("Invalid webhook URL: '%s'", raw)
	}
	if !g.schemeAllowed(u.Scheme) {
		return fmt.Errorf("Invalid webhook URL scheme: '%s'. Allowed schemes are: %s.", u.Scheme, strings.Join(g.Schemes, ", "))
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("Invalid webhook URL: '%s'. The URL must have a hostname.", raw)
	}
	if g.AllowPrivate {
		return nil
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("Cannot resolve webhook URL hostname '%s': %v", host, err)
	}
	for _, a := range addrs {
		if !g.isPublic(a) {
			return fmt.Errorf("Webhook URL must not resolve to a non-public IP address. '%s' resolves to %s. Set MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true to allow it.", host, a.Unmap())
		}
	}
	return nil
}

func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	// A name server that never answers must not hold the request.
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	if g.LookupIP != nil {
		return g.LookupIP(ctx, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	return addrs, err
}

// DialControl is a net.Dialer Control function enforcing the SSRF rule on
// the address actually being connected to, before any byte is sent.
func (g *Guard) DialControl(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !g.isPublic(a) {
		return fmt.Errorf("%w: connection to %s blocked (possible DNS rebinding or redirect)", ErrNotPublic, host)
	}
	return nil
}

// nonGlobal are the special-purpose ranges Python's ip_address.is_global
// excludes beyond what netip's predicates cover (IANA special-purpose
// registries).
var nonGlobal = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"::/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "fc00::/7",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// IsPublic is Python's ipaddress is_global for the delivery's purpose:
// false for loopback, private, link-local (169.254.169.254, fe80::),
// unspecified, multicast, shared (100.64/10), documentation and reserved
// ranges. IPv4-mapped IPv6 addresses are judged as their IPv4 address.
func IsPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		return false
	}
	for _, p := range nonGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
