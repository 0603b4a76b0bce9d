package tracking

import (
	"strings"
	"testing"
)

// TestValidateArtifactLocation pins which experiment artifact locations are
// taken and which are refused as a disguise for the server's filesystem.
func TestValidateArtifactLocation(t *testing.T) {
	accept := []string{
		"/srv/mlruns", "/srv/mlruns/", "./mlruns", "mlruns", "rel/dir",
		"file:///srv/mlruns", "file:///srv/ml%20runs", "file://localhost/srv/mlruns", "file:/srv/mlruns",
		"s3://bucket/prefix", "S3://bucket/p", "gs://b/p", "mlflow-artifacts:/exp", "http://h/api/2.0/mlflow-artifacts/artifacts/x",
		"C:/mlruns", // one-letter scheme = a drive letter, a plain path on this server
		".", "./",
	}
	refuse := map[string]string{
		"FILE:///etc":                          "lower case",
		"File:///etc":                          "lower case",
		"file://evil.example/share":            "host",
		"file://127.0.0.1/etc":                 "host",
		"file:etc/passwd":                      "relative",
		"file:///srv/x?y=1":                    "query",
		"file:///srv/%2Fetc":                   "percent-encode",
		"file:///srv/%2fetc":                   "percent-encode",
		"file:///srv/%5cetc":                   "percent-encode",
		"file:///srv/%2e/x":                    "percent-encode",
		"file:///srv/%2541":                    "twice",
		"file:///srv/a%zz":                     "malformed",
		"file:///srv//etc":                     "empty or '.'",
		"file:///srv/./etc":                    "empty or '.'",
		"/srv//etc":                            "empty or '.'",
		"/srv/./etc":                           "empty or '.'",
		"//etc":                                "empty or '.'",
		"/srv\\..\\etc":                        "'..'",
		"/srv\\etc":                            "backslash",
		"/srv/a%2Fb":                           "'%' in a plain path",
		"/srv/%2e/x":                           "'%' in a plain path",
		"/srv/x%5Cy":                           "'%' in a plain path",
		"/srv/%2541":                           "'%' in a plain path",
		"file:///srv/x%00":                     "control characters",
		"file:///srv/x%0a":                     "control characters",
		" file:///etc":                         "white space",
		"/srv/mlruns ":                         "white space",
		"/srv/../etc":                          "'..'",
		"file:///srv/%252e%252e/etc":           "'..'",
		"file:///srv/x#frag":                   "fragments",
		"runs:/abc/artifacts":                  "runs:",
		"s3://b/p?x=..%2f":                     "Invalid query string",
		"file:///" + strings.Repeat("a", 2048): "maximum length",
	}
	for _, loc := range accept {
		if err := validateArtifactLocation(loc); err != nil {
			t.Errorf("%q refused: %s", loc, err.Message)
		}
	}
	for loc, want := range refuse {
		err := validateArtifactLocation(loc)
		if err == nil {
			t.Errorf("%q accepted, want refusal mentioning %q", loc, want)
			continue
		}
		if err.Code != "INVALID_PARAMETER_VALUE" || !strings.Contains(err.Message, want) {
			t.Errorf("%q: %s %q, want INVALID_PARAMETER_VALUE mentioning %q", loc, err.Code, err.Message, want)
		}
	}
}
