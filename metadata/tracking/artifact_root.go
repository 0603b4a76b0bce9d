package tracking

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// appendURIPath joins a path segment to an artifact root the way upstream's
// append_to_uri_path does. A root without a scheme is a local path and is
// joined as one. A URI gets seg inserted at the end of its path, before
// any ?query and #fragment, with exactly one '/' between them; authority,
// query and fragment are kept, and the scheme is lower-cased, as Python's
// urlsplit/urlunsplit do. (Appending after the query, as a plain string
// join would, turns s3://b/p?x= into s3://b/p?x=/<run>/artifacts: every
// run's root would be the experiment's.)
func appendURIPath(root string, seg string) string {
	if root == "" {
		return seg
	}
	scheme, rest, ok := uriScheme(root)
	if !ok || filepath.IsAbs(root) {
		return filepath.Join(root, seg) // local path (also Windows drive letters)
	}
	// urlsplit: "//authority" first, then "#fragment", then "?query".
	authority := ""
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		authority, rest = rest[:end], rest[end:]
	}
	path, fragment, _ := strings.Cut(rest, "#")
	path, query, _ := strings.Cut(path, "?")

	seg = strings.TrimLeft(seg, "/")
	switch {
	case path == "":
		path = seg
	case strings.HasSuffix(path, "/"):
		path += seg
	default:
		path += "/" + seg
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteByte(':')
	// urlunsplit writes "//" for an authority, and for the schemes that
	// take one when the path is absolute (file:/x becomes file:///x).
	if authority != "" || (usesNetloc[scheme] && strings.HasPrefix(path, "/")) {
		b.WriteString("//")
		b.WriteString(authority)
		if !strings.HasPrefix(path, "/") {
			b.WriteByte('/')
		}
	}
	b.WriteString(path)
	if query != "" {
		b.WriteString("?" + query)
	}
	if fragment != "" {
		b.WriteString("#" + fragment)
	}
	return b.String()
}

// usesNetloc is Python's urllib.parse.uses_netloc: the schemes urlunsplit
// writes with "//" even without an authority.
var usesNetloc = map[string]bool{
	"ftp": true, "http": true, "gopher": true, "nntp": true, "telnet": true, "imap": true, "wais": true,
	"file": true, "mms": true, "https": true, "shttp": true, "snews": true, "prospero": true, "rtsp": true,
	"rtsps": true, "rtspu": true, "rsync": true, "svn": true, "svn+ssh": true, "sftp": true, "nfs": true,
	"git": true, "git+ssh": true, "ws": true, "wss": true, "itms-services": true,
}

// uriScheme splits "scheme:rest" where scheme is what urlsplit takes for
// one (an ASCII letter, then letters, digits, '+', '-' or '.'), lower-cased.
// ok is false for a string without a scheme, and for a one-letter one (a
// Windows drive letter: a local path, as stores.ParseURI takes it).
func uriScheme(s string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 1 {
		return "", s, false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", s, false
		}
	}
	return strings.ToLower(s[:i]), s[i+1:], true
}

// experimentLocation is <default root>/<id>.
func (a *API) experimentLocation(id int64) string {
	return appendURIPath(a.defaultRoot(), strconv.FormatInt(id, 10))
}

// resolveLocalLocation is upstream's resolve_uri_if_local for an
// experiment's validated artifact_location: a relative plain path
// (my_location, ./runs) becomes an absolute path against the server's
// working directory, as pathlib's cwd().joinpath(p).as_posix() gives it
// (no file: URI). Absolute paths, file: URIs (validateLocalLocation
// admits absolute ones only) and other schemes are kept as given.
func resolveLocalLocation(loc string) string {
	if loc == "" || filepath.IsAbs(loc) {
		return loc
	}
	if scheme, _, ok := strings.Cut(loc, ":"); ok && len(scheme) >= 2 && !strings.ContainsAny(scheme, "/\\") {
		return loc
	}
	cwd, err := os.Getwd()
	if err != nil {
		return loc
	}
	return filepath.Join(cwd, loc)
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
