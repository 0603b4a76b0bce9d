package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// resolve parses args like `ferry server` would and resolves them against
// env.
func resolve(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	f := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f.Resolve(func(k string) string { return env[k] })
}

func TestDefaultsMatchMlflowServer(t *testing.T) {
	c, err := resolve(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Host: "127.0.0.1", Port: 5000, BackendStoreURI: "sqlite:///mlflow.db", RegistryStoreURI: "sqlite:///mlflow.db",
		DefaultArtifactRoot: "mlflow-artifacts:/", ServeArtifacts: true, ArtifactsDestination: "./mlartifacts",
		Workers: 4, ShutdownTimeout: 30 * time.Second, TempFileMaxAge: 24 * time.Hour, PresignedDownloadTTL: 300 * time.Second,
		LogLevel: "info", LogFormat: "json",
		Security:          Security{XFrameOptions: "SAMEORIGIN"},
		ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, BodyStallTimeout: time.Minute, BodyMinRate: 4096,
		JSONMemoryLimit: 128 << 20, TransferMemoryLimit: 512 << 20,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *c, want)
	}
	if c.Addr() != "127.0.0.1:5000" {
		t.Fatalf("Addr() = %q", c.Addr())
	}
}

func TestPrecedenceFlagsOverEnvOverDefaults(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(*Config) bool
	}{
		{"env sets port", nil, map[string]string{"MLFLOW_PORT": "6001"}, func(c *Config) bool { return c.Port == 6001 }},
		{"flag beats env", []string{"--port", "7001"}, map[string]string{"MLFLOW_PORT": "6001"}, func(c *Config) bool { return c.Port == 7001 }},
		{"public env beats private", nil, map[string]string{"MLFLOW_ARTIFACTS_DESTINATION": "/a", "_MLFLOW_SERVER_ARTIFACT_DESTINATION": "/b"},
			func(c *Config) bool { return c.ArtifactsDestination == "/a" }},
		{"private env used by upstream fixtures", nil, map[string]string{"_MLFLOW_SERVER_ARTIFACT_DESTINATION": "/b"},
			func(c *Config) bool { return c.ArtifactsDestination == "/b" }},
		{"no-serve-artifacts flag", []string{"--no-serve-artifacts"}, nil,
			func(c *Config) bool { return !c.ServeArtifacts && c.DefaultArtifactRoot == "./mlruns" }},
		{"serve-artifacts env false", nil, map[string]string{"MLFLOW_SERVE_ARTIFACTS": "FALSE"},
			func(c *Config) bool { return !c.ServeArtifacts }},
		{"serve-artifacts env 1", nil, map[string]string{"MLFLOW_SERVE_ARTIFACTS": "1"},
			func(c *Config) bool { return c.ServeArtifacts }},
		{"explicit default artifact root kept verbatim", []string{"--default-artifact-root", "s3://b/p"}, nil,
			func(c *Config) bool { return c.DefaultArtifactRoot == "s3://b/p" }},
		{"no serve + local backend root", []string{"--no-serve-artifacts", "--backend-store-uri", "/srv/mlruns"}, nil,
			func(c *Config) bool { return c.DefaultArtifactRoot == "/srv/mlruns" }},
		{"registry defaults to backend", []string{"--backend-store-uri", "postgresql://u@h/db"}, nil,
			func(c *Config) bool { return c.RegistryStoreURI == "postgresql://u@h/db" }},
		{"static prefix from env", nil, map[string]string{"MLFLOW_STATIC_PREFIX": "/mlflow"},
			func(c *Config) bool { return c.StaticPrefix == "/mlflow" }},
		{"-h is host as in mlflow", []string{"-h", "0.0.0.0"}, nil, func(c *Config) bool { return c.Host == "0.0.0.0" }},
		{"ipv6 host is bracketed", []string{"--host", "::1", "-p", "1"}, nil, func(c *Config) bool { return c.Addr() == "[::1]:1" }},
		{"presigned ttl", nil, map[string]string{"MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS": "60"},
			func(c *Config) bool { return c.PresignedDownloadTTL == time.Minute }},
		{"artifacts-only with the default sqlite backend is fine", []string{"--artifacts-only"}, nil,
			func(c *Config) bool { return c.ArtifactsOnly }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := resolve(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", *c)
			}
		})
	}
}

func TestInvalidConfigReportsEveryProblem(t *testing.T) {
	_, err := resolve(t,
		[]string{"--static-prefix", "mlflow/", "--workers", "0", "--log-format", "xml", "--artifacts-only", "--backend-store-uri", "postgresql://h/db"},
		map[string]string{"MLFLOW_SERVE_ARTIFACTS": "yes", "MLFLOW_WORKSPACE": "team-a"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"must begin with a '/'", "should not end with a '/'", "--workers 0", "--log-format", "artifacts-only", "MLFLOW_SERVE_ARTIFACTS", "MLFLOW_WORKSPACE=team-a is client-only"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, "TRUE": true, "1": true, "false": false, "False": false, "0": false} {
		got, err := ParseBool(in)
		if err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"yes", "", "on", "2"} {
		if _, err := ParseBool(in); err == nil {
			t.Errorf("ParseBool(%q) accepted", in)
		}
	}
}

func TestSecurityAndLimitsFromFlagsAndEnv(t *testing.T) {
	env := map[string]string{
		"MLFLOW_SERVER_ALLOWED_HOSTS":               " mlflow.example.com , *.corp.example ,",
		"MLFLOW_SERVER_CORS_ALLOWED_ORIGINS":        "https://ui.example.com",
		"MLFLOW_SERVER_X_FRAME_OPTIONS":             "deny",
		"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "true",
		"FERRY_READ_HEADER_TIMEOUT":                 "5s",
		"FERRY_IDLE_TIMEOUT":                        "7s",
		"FERRY_BODY_STALL_TIMEOUT":                  "9s",
		"FERRY_MAX_JSON_MEMORY":                     "128MiB",
		"FERRY_MAX_TRANSFER_MEMORY":                 "256MiB",
		"FERRY_BODY_MIN_RATE":                       "16KiB",
	}
	c, err := resolve(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	want := Security{Disabled: true, AllowedHosts: []string{"mlflow.example.com", "*.corp.example"},
		CORSAllowedOrigins: []string{"https://ui.example.com"}, XFrameOptions: "DENY"}
	if !reflect.DeepEqual(c.Security, want) {
		t.Errorf("security from env: got %+v, want %+v", c.Security, want)
	}
	if c.ReadHeaderTimeout != 5*time.Second || c.IdleTimeout != 7*time.Second || c.BodyStallTimeout != 9*time.Second || c.JSONMemoryLimit != 128<<20 || c.TransferMemoryLimit != 256<<20 || c.BodyMinRate != 16<<10 {
		t.Errorf("limits from env: %v %v %v %d %d %d", c.ReadHeaderTimeout, c.IdleTimeout, c.BodyStallTimeout, c.JSONMemoryLimit, c.TransferMemoryLimit, c.BodyMinRate)
	}

	// Flags win over the environment.
	c, err = resolve(t, []string{"--allowed-hosts", "a.example", "--cors-allowed-origins", "*",
		"--x-frame-options", "NONE", "--disable-security-middleware=false", "--body-stall-timeout", "1s",
		"--max-json-memory", "1GiB", "--max-transfer-memory", "0", "--body-min-rate", "0"}, env)
	if err != nil {
		t.Fatal(err)
	}
	want = Security{AllowedHosts: []string{"a.example"}, CORSAllowedOrigins: []string{"*"}}
	if !reflect.DeepEqual(c.Security, want) {
		t.Errorf("security from flags: got %+v, want %+v", c.Security, want)
	}
	if c.BodyStallTimeout != time.Second || c.JSONMemoryLimit != 1<<30 || c.TransferMemoryLimit != 0 || c.BodyMinRate != 0 {
		t.Errorf("limits from flags: %v %d %d %d", c.BodyStallTimeout, c.JSONMemoryLimit, c.TransferMemoryLimit, c.BodyMinRate)
	}
	if _, err := resolve(t, []string{"--body-min-rate", "fast"}, nil); err == nil || !strings.Contains(err.Error(), "--body-min-rate") {
		t.Errorf("--body-min-rate fast: %v; want an error naming the flag", err)
	}
}

func TestSecurityAndLimitsValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--x-frame-options", "ALLOWALL"}, "--x-frame-options"},
		{[]string{"--read-header-timeout", "0s"}, "--read-header-timeout"},
		{[]string{"--idle-timeout", "-1s"}, "--idle-timeout"},
		{[]string{"--body-stall-timeout", "0s"}, "--body-stall-timeout"},
		{[]string{"--max-json-memory", "10MiB"}, "below the minimum"},
		{[]string{"--max-json-memory", "lots"}, "--max-json-memory"},
		{[]string{"--max-transfer-memory", "10MiB"}, "--max-transfer-memory 10 MiB is below the minimum"},
		{[]string{"--max-transfer-memory", "lots"}, "--max-transfer-memory"},
	} {
		_, err := resolve(t, tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
	// Every problem is reported at once.
	_, err := resolve(t, []string{"--x-frame-options", "x", "--idle-timeout", "0s"}, map[string]string{"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "maybe"})
	for _, w := range []string{"--x-frame-options", "--idle-timeout", "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("combined error %v lacks %q", err, w)
		}
	}
}

func TestCompileGlobsIsFnmatch(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"localhost:*", []string{"localhost:5000", "LOCALHOST:1", "localhost:"}, []string{"localhost", "localhost.evil:1"}},
		{"[[]::1]:*", []string{"[::1]:5000"}, []string{"::1:5000", "[::2]:1"}},
		{"*.example.com", []string{"a.example.com", "a.b.example.com"}, []string{"example.com", "a.example.com.evil"}},
		{"https://*.example.com", []string{"https://ui.example.com"}, []string{"http://ui.example.com", "https://example.com"}},
		{"host-?", []string{"host-1"}, []string{"host-12", "host-"}},
		{"10.0.0.[1-3]", []string{"10.0.0.2"}, []string{"10.0.0.4", "10x0x0x2"}},
		{"h[!a]", []string{"hb"}, []string{"ha"}},
		{"a[b", []string{"a[b"}, []string{"ab"}},
		{"exact.host", []string{"exact.host", "Exact.Host"}, []string{"exactxhost", "exact.host:1"}},
		{"ünï.example", []string{"ünï.example"}, []string{"uni.example"}},
	} {
		re, err := CompileGlobs([]string{tc.pattern})
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		for _, s := range tc.yes {
			if !re.MatchString(s) {
				t.Errorf("%q does not match %q, want a match", tc.pattern, s)
			}
		}
		for _, s := range tc.no {
			if re.MatchString(s) {
				t.Errorf("%q matches %q, want none", tc.pattern, s)
			}
		}
	}
	re, err := CompileGlobs([]string{"a.example", "b.*"})
	if err != nil || !re.MatchString("a.example") || !re.MatchString("b.x") || re.MatchString("c.example") {
		t.Errorf("a list matches when any pattern does (%v)", err)
	}
}
