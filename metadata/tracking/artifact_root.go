package tracking

import (
	"path/filepath"
	"strconv"
	"strings"
)

// appendURIPath joins a path segment to an artifact root the way upstream's
// append_to_uri_path does: exactly one '/' between them, the root's scheme
// and authority kept.
func appendURIPath(root string, seg string) string {
	if root == "" {
		return seg
	}
	if !strings.Contains(root, ":") || filepath.IsAbs(root) {
		return filepath.Join(root, seg) // local path (also Windows drive letters)
	}
	if strings.HasSuffix(root, "/") {
		return root + seg
	}
	return root + "/" + seg
}

// experimentLocation is <default root>/<id>.
func (a *API) experimentLocation(id int64) string {
	return appendURIPath(a.defaultRoot(), strconv.FormatInt(id, 10))
}

// defaultRoot is the configured root, relative local paths made absolute
// against the working directory (upstream resolves ./mlruns the same way).
func (a *API) defaultRoot() string {
	root := a.cfg.DefaultArtifactRoot
	if root == "" {
		if a.cfg.ServeArtifacts {
			return "mlflow-artifacts:/"
		}
		root = "./mlruns"
	}
	if !strings.Contains(root, ":") && !filepath.IsAbs(root) {
		if abs, err := filepath.Abs(root); err == nil {
			return abs
		}
	}
	return root
}
