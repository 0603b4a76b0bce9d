// Package config turns `mlflow server`-style flags and MLflow's environment
// variables into one typed Config, and validates it in one place, reporting
// every problem at once. Flags win over environment variables, which win
// over defaults — the precedence upstream's click CLI gives them.
package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Defaults, as upstream's CLI has them.
const (
	DefaultHost                 = "127.0.0.1"
	DefaultPort                 = 5000
	DefaultBackendStoreURI      = "sqlite:///mlflow.db"
	DefaultArtifactsDestination = "./mlartifacts"
	DefaultWorkers              = 4
	DefaultShutdownTimeout      = 30 * time.Second
	DefaultPresignedTTL         = 300 * time.Second
	// ProxiedArtifactRoot is the default artifact root when artifacts are
	// served: runs get mlflow-artifacts:/<exp>/<run>/artifacts.
	ProxiedArtifactRoot = "mlflow-artifacts:/"
)

// Config is everything `ferry server` needs.
type Config struct {
	Host                 string
	Port                 int
	BackendStoreURI      string
	RegistryStoreURI     string
	DefaultArtifactRoot  string // resolved as upstream's resolve_default_artifact_root
	ServeArtifacts       bool
	ArtifactsDestination string
	ArtifactsOnly        bool
	StaticPrefix         string
	Workers              int // accepted for compatibility; Ferry serves with goroutines
	ShutdownTimeout      time.Duration
	PresignedDownloadTTL time.Duration
	LogLevel             string
	LogFormat            string
}

// Addr is host:port for net.Listen.
func (c *Config) Addr() string {
	host := c.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(c.Port)
}

// envNames maps each flag to the environment variables that set it, first
// match wins. The underscore-prefixed ones are what upstream's CLI passes to
// its workers; honouring them lets upstream test fixtures drive Ferry.
var envNames = map[string][]string{
	"host":                  {"MLFLOW_HOST"},
	"port":                  {"MLFLOW_PORT"},
	"backend-store-uri":     {"MLFLOW_BACKEND_STORE_URI", "_MLFLOW_SERVER_FILE_STORE"},
	"registry-store-uri":    {"MLFLOW_REGISTRY_STORE_URI", "_MLFLOW_SERVER_REGISTRY_STORE"},
	"default-artifact-root": {"MLFLOW_DEFAULT_ARTIFACT_ROOT", "_MLFLOW_SERVER_ARTIFACT_ROOT"},
	"serve-artifacts":       {"MLFLOW_SERVE_ARTIFACTS"},
	"artifacts-destination": {"MLFLOW_ARTIFACTS_DESTINATION", "_MLFLOW_SERVER_ARTIFACT_DESTINATION"},
	"artifacts-only":        {"MLFLOW_ARTIFACTS_ONLY"},
	"static-prefix":         {"MLFLOW_STATIC_PREFIX", "_MLFLOW_STATIC_PREFIX"},
	"workers":               {"MLFLOW_WORKERS"},
	"shutdown-timeout":      {"FERRY_SHUTDOWN_TIMEOUT"},
	"log-level":             {"FERRY_LOG_LEVEL"},
	"log-format":            {"FERRY_LOG_FORMAT"},
}

// Flags holds the raw flag values bound to a FlagSet.
type Flags struct {
	fs  *pflag.FlagSet
	cfg Config
	// noServe is --no-serve-artifacts; click's paired boolean flag.
	noServe bool
}

// BindFlags registers the server flags on fs (upstream's names and help).
func BindFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	c := &f.cfg
	fs.StringVarP(&c.Host, "host", "h", DefaultHost, "The network address to listen on. Use 0.0.0.0 to bind to all addresses. [env MLFLOW_HOST]")
	fs.IntVarP(&c.Port, "port", "p", DefaultPort, "The port to listen on. [env MLFLOW_PORT]")
	fs.StringVar(&c.BackendStoreURI, "backend-store-uri", DefaultBackendStoreURI, "URI of the tracking store: sqlite:///mlflow.db, postgresql://..., mysql://... [env MLFLOW_BACKEND_STORE_URI]")
	fs.StringVar(&c.RegistryStoreURI, "registry-store-uri", "", "URI of the model registry store; defaults to --backend-store-uri. [env MLFLOW_REGISTRY_STORE_URI]")
	fs.StringVar(&c.DefaultArtifactRoot, "default-artifact-root", "", "Root under which new experiments store artifacts; defaults to mlflow-artifacts:/ when serving artifacts. [env MLFLOW_DEFAULT_ARTIFACT_ROOT]")
	fs.BoolVar(&c.ServeArtifacts, "serve-artifacts", true, "Serve the mlflow-artifacts routes, proxying uploads, downloads and listings to --artifacts-destination. [env MLFLOW_SERVE_ARTIFACTS]")
	fs.BoolVar(&f.noServe, "no-serve-artifacts", false, "Disable the mlflow-artifacts routes (they answer 503).")
	fs.StringVar(&c.ArtifactsDestination, "artifacts-destination", DefaultArtifactsDestination, "Where proxied artifacts are stored: a local path, file://, s3://bucket/prefix, gs://bucket/prefix (GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST, MLFLOW_GCS_UPLOAD_CHUNK_SIZE; see the README) [env MLFLOW_ARTIFACTS_DESTINATION]")
	fs.BoolVar(&c.ArtifactsOnly, "artifacts-only", false, "Serve only the artifact routes; tracking and registry routes answer 503. [env MLFLOW_ARTIFACTS_ONLY]")
	fs.StringVar(&c.StaticPrefix, "static-prefix", "", "A prefix for every route (/api, /ajax-api, /health, /version), e.g. /mlflow. Must start with / and not end with /. [env MLFLOW_STATIC_PREFIX]")
	fs.IntVarP(&c.Workers, "workers", "w", DefaultWorkers, "Accepted for compatibility with mlflow server. Ferry is one process that serves every request on its own goroutine and uses all cores, so there is nothing to fork; the value only has to be positive. [env MLFLOW_WORKERS]")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "How long SIGTERM waits for in-flight requests and transfers before closing connections. [env FERRY_SHUTDOWN_TIMEOUT]")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error. [env FERRY_LOG_LEVEL]")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text. [env FERRY_LOG_FORMAT]")
	return f
}

// Resolve applies environment variables to flags the user did not set,
// resolves derived values and validates the result.
func (f *Flags) Resolve(getenv func(string) string) (*Config, error) {
	var problems []error
	for flag, names := range envNames {
		fl := f.fs.Lookup(flag)
		if fl == nil || fl.Changed {
			continue
		}
		for _, n := range names {
			v := getenv(n)
			if v == "" {
				continue
			}
			if fl.Value.Type() == "bool" {
				b, err := ParseBool(v)
				if err != nil {
					problems = append(problems, fmt.Errorf("%s: %w", n, err))
					break
				}
				v = strconv.FormatBool(b)
			}
			if err := fl.Value.Set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s=%q: %w", n, v, err))
			}
			break
		}
	}
	c := f.cfg
	if f.noServe {
		c.ServeArtifacts = false
	}
	if v := getenv("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			problems = append(problems, fmt.Errorf("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS=%q: want a positive number of seconds", v))
		} else {
			c.PresignedDownloadTTL = time.Duration(n) * time.Second
		}
	} else {
		c.PresignedDownloadTTL = DefaultPresignedTTL
	}
	if c.RegistryStoreURI == "" {
		c.RegistryStoreURI = c.BackendStoreURI
	}
	if c.ArtifactsOnly && f.fs.Lookup("backend-store-uri") != nil && !isDefaultBackend(c.BackendStoreURI) {
		problems = append(problems, errors.New("you are starting a tracking server in `--artifacts-only` mode and have provided a value for `--backend_store_uri`: an artifacts-only server cannot have a value set for `--backend_store_uri`"))
	}
	if c.DefaultArtifactRoot == "" {
		c.DefaultArtifactRoot = ResolveDefaultArtifactRoot(c.ServeArtifacts, c.BackendStoreURI)
	}
	problems = append(problems, c.Validate()...)
	if v := getenv("MLFLOW_WORKSPACE"); v != "" {
		problems = append(problems, fmt.Errorf("MLFLOW_WORKSPACE=%s is client-only. Unset it before starting the server", v))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &c, nil
}

// Validate checks the config and returns every problem found.
func (c *Config) Validate() []error {
	var problems []error
	if c.StaticPrefix != "" {
		if !strings.HasPrefix(c.StaticPrefix, "/") {
			problems = append(problems, fmt.Errorf("--static-prefix %q must begin with a '/'", c.StaticPrefix))
		}
		if strings.HasSuffix(c.StaticPrefix, "/") {
			problems = append(problems, fmt.Errorf("--static-prefix %q should not end with a '/'", c.StaticPrefix))
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		problems = append(problems, fmt.Errorf("--port %d is not a TCP port", c.Port))
	}
	if c.Workers <= 0 {
		problems = append(problems, fmt.Errorf("--workers %d must be positive", c.Workers))
	}
	if c.ShutdownTimeout < 0 {
		problems = append(problems, fmt.Errorf("--shutdown-timeout %s must not be negative", c.ShutdownTimeout))
	}
	if c.ServeArtifacts && c.ArtifactsDestination == "" {
		problems = append(problems, errors.New("--artifacts-destination must not be empty when serving artifacts"))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		problems = append(problems, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		problems = append(problems, fmt.Errorf("--log-format %q: want json or text", c.LogFormat))
	}
	return problems
}

// ResolveDefaultArtifactRoot is upstream's resolve_default_artifact_root
// for an unset --default-artifact-root (spec artifacts-api.md §1.2).
func ResolveDefaultArtifactRoot(serveArtifacts bool, backendURI string) string {
	if serveArtifacts {
		return ProxiedArtifactRoot
	}
	if isLocalURI(backendURI) {
		return backendURI
	}
	return "./mlruns"
}

func isLocalURI(uri string) bool {
	if strings.HasPrefix(uri, "file:") {
		return true
	}
	scheme, _, ok := strings.Cut(uri, "://")
	return !ok || scheme == "" || filepath.IsAbs(uri)
}

// isDefaultBackend: both of upstream 3.11's defaults count as "not set".
func isDefaultBackend(uri string) bool {
	return uri == DefaultBackendStoreURI || uri == "./mlruns" || uri == ""
}

// ParseBool accepts what MLflow's boolean env vars accept: true, false, 1,
// 0, case-insensitively. Anything else is an error, as upstream.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: use true, false, 1 or 0", v)
}
