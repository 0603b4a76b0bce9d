package stores

import (
	"errors"
	"net/url"
	"strings"
)

// ProxyAnchor is the path part of an http(s) artifact URI that points into
// a tracking server's mlflow-artifacts proxy.
const ProxyAnchor = "/api/2.0/mlflow-artifacts/artifacts/"

// ErrNotUnderProxy is ProxiedRootKey's error for an http(s) root outside
// the proxy's path.
var ErrNotUnderProxy = errors.New("artifact root is not under " + ProxyAnchor)

// ProxiedRootKey returns the destination-relative key of a proxied MLflow
// artifact root (spec artifacts-api.md §5.2): mlflow-artifacts:/<key> or
// http(s)://<host>/api/2.0/mlflow-artifacts/artifacts/<key>. proxied is
// false for any other root. The key is cleaned with CleanKey (an error
// wraps ErrInvalidKey), so it never leaves the destination.
func ProxiedRootKey(root string) (key string, proxied bool, err error) {
	u, err := url.Parse(root)
	if err != nil {
		return "", false, nil
	}
	switch strings.ToLower(u.Scheme) {
	case "mlflow-artifacts":
		key = u.Path
		if u.Opaque != "" { // mlflow-artifacts:exp/run (no slash after the colon)
			key = u.Opaque
		}
		key = strings.TrimLeft(key, "/")
	case "http", "https":
		_, after, found := strings.Cut(u.Path, ProxyAnchor)
		if !found {
			return "", true, ErrNotUnderProxy
		}
		key = strings.TrimLeft(after, "/")
	default:
		return "", false, nil
	}
	k, err := CleanKey(key)
	return k, true, err
}
