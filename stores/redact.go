package stores

import "strings"

// RedactURI returns uri with the password of its userinfo replaced by
// "***" ("ftp://alice:***@host/path"), for logs, errors and labels. It
// works on the text, not on a parsed URL, so it also redacts URIs that do
// not parse (a password holding an unescaped '/' or '%' makes url.Parse
// fail, and its error would repeat the URI). A URI without a password
// comes back unchanged.
func RedactURI(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		// "user:pa/ss@host": the password's '/' ended the authority early.
		// A colon not followed by a numeric port gives it away.
		colon := strings.IndexByte(rest[:end], ':')
		if colon < 0 || isPort(rest[colon+1:end]) {
			return uri
		}
		at = strings.IndexByte(rest, '@')
		if at < 0 {
			return uri
		}
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return uri
	}
	return scheme + "://" + user + ":***" + rest[at:]
}

func isPort(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
