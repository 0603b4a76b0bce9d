package registry

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ferryml/ferry/wire"
)

// Model-version source validation, upstream's _validate_source_run /
// _validate_source_model / _validate_non_local_source_contains_relative_paths
// (spec tracking-api.md §4): a local source (no scheme, or file:) must lie
// inside the local artifact directory of the run (or logged model) named
// in the request; any other source must carry no ".." segment and no NUL
// and must equal its resolved form after repeated URL-decoding.

// SourceRegexEnv names upstream's optional allow-pattern for sources
// (Config.SourceRegex).
const SourceRegexEnv = "MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX"

func invalidRelativeSource(source string) *wire.Error {
	return wire.Errorf(wire.InvalidParameterValue,
		"Invalid model version source: '%s'. If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path.", source)
}

// unquotePlus is Python's urllib.parse.unquote_plus: '+' is a space and
// valid %XX escapes are decoded; invalid ones stay as they are.
func unquotePlus(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// uriScheme is urlparse's scheme: letters, digits, + - . after a letter,
// before the first ':', lower-cased ("" for none).
var schemePattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+\-.]*):`)

func uriScheme(s string) string {
	m := schemePattern.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// urlPath is urlparse(s).path: what follows scheme and //netloc, before
// ? and #.
func urlPath(s string) string {
	if sc := uriScheme(s); sc != "" {
		s = s[len(sc)+1:]
	}
	if rest, ok := strings.CutPrefix(s, "//"); ok {
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			s = rest[i:]
		} else {
			s = ""
		}
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

var slashes = regexp.MustCompile(`/+`)

// resolvePath is pathlib.Path(p).resolve() (non-strict): absolute against
// the working directory, with the symlinks of the longest existing prefix
// followed (so //proc/self/root/... resolves elsewhere and is refused).
func resolvePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	prefix, rest := abs, ""
	for {
		if _, err := os.Lstat(prefix); err == nil {
			break
		}
		parent := filepath.Dir(prefix)
		if parent == prefix {
			return abs
		}
		rest = filepath.Join(filepath.Base(prefix), rest)
		prefix = parent
	}
	real, err := filepath.EvalSymlinks(prefix)
	if err != nil {
		return abs
	}
	return filepath.Join(real, rest)
}

// checkNonLocalSource is _validate_non_local_source_contains_relative_paths;
// its message quotes the source as sent.
func checkNonLocalSource(source string) *wire.Error {
	orig := source
	for i := 0; i < 64; i++ {
		u := unquotePlus(source)
		if u == source {
			break
		}
		source = u
	}
	p := slashes.ReplaceAllString(strings.TrimRight(urlPath(source), "/"), "/")
	if strings.ContainsRune(p, 0) {
		return invalidRelativeSource(orig)
	}
	for _, seg := range strings.Split(source, "/") {
		if seg == ".." {
			return invalidRelativeSource(orig)
		}
	}
	if resolvePath(p) != p {
		return invalidRelativeSource(orig)
	}
	return nil
}

// isLocalURI is upstream's is_local_uri for a model-version source: no
// scheme, or file: (a file: URI naming a remote host is refused).
func isLocalURI(source string) (bool, *wire.Error) {
	switch uriScheme(source) {
	case "":
		return true, nil
	case "file":
		if u, err := url.Parse(source); err == nil {
			h := u.Hostname()
			if h != "" && h != "." && !strings.HasPrefix(h, "localhost") && !strings.HasPrefix(h, "127.0.0.1") {
				return false, wire.Errorf(wire.InvalidParameterValue,
					"%s is not a valid remote uri. For remote access on windows, please consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).", source)
			}
		}
		return true, nil
	}
	return false, nil
}

// localPath is local_file_uri_to_path: the path of a file: URI, or the
// source itself.
func localPath(source string) string {
	if uriScheme(source) != "file" {
		return source
	}
	if u, err := url.Parse(source); err == nil {
		return u.Path
	}
	return urlPath(source)
}

// within reports whether dir is p or one of its parents.
func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// sourceOwner is the run or logged model a local source must lie under.
type sourceOwner struct {
	kind string // "run_id" or "model_id"
	id   string
	// root is the owner's artifact location; found is false when the
	// request named no owner.
	root  string
	found bool
}

// checkSource is _validate_source_run / _validate_source_model.
func checkSource(source string, owner sourceOwner) *wire.Error {
	local, werr := isLocalURI(source)
	if werr != nil {
		return werr
	}
	if !local {
		return checkNonLocalSource(source)
	}
	shown := source
	if owner.id != "" {
		resolved := resolvePath(localPath(source))
		shown = resolved
		if owner.found {
			if rootLocal, _ := isLocalURI(owner.root); rootLocal && within(resolvePath(localPath(owner.root)), resolved) {
				return nil
			}
		}
	}
	what := "run specified by the run_id"
	if owner.kind == "model_id" {
		what = "run specified by the model_id"
	}
	return wire.Errorf(wire.InvalidParameterValue,
		"Invalid model version source: '%s'. To use a local path as a model version source, the %s request parameter has to be specified and the local path has to be contained within the artifact directory of the %s.",
		shown, owner.kind, what)
}

// checkPromptSource is 3.11's rule for prompt versions: no local paths,
// traversal checks for URIs with a scheme, scheme-less placeholders pass.
func checkPromptSource(source string) *wire.Error {
	sc := uriScheme(source)
	if sc == "file" || strings.HasPrefix(source, "/") {
		return wire.Errorf(wire.InvalidParameterValue, "Invalid prompt source: '%s'. Local source paths are not allowed for prompts.", source)
	}
	if sc == "" {
		return nil
	}
	return checkNonLocalSource(source)
}

// checkSourceRegex applies Config.SourceRegex (nil: no check).
func checkSourceRegex(re *regexp.Regexp, source string) *wire.Error {
	if re != nil && !re.MatchString(source) {
		return wire.Errorf(wire.InvalidParameterValue, "Invalid model version source: '%s'.", source)
	}
	return nil
}
