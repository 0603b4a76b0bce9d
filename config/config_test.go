package config

import (
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
	}
	if *c != want {
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
