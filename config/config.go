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

	"github.com/dustin/go-humanize"
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
	// DefaultXFrameOptions is upstream's MLFLOW_SERVER_X_FRAME_OPTIONS default.
	DefaultXFrameOptions = "SAMEORIGIN"
	// DefaultReadHeaderTimeout bounds how long a client may take to send a
	// request's headers (slowloris), counted from its first byte, or from
	// the connection's opening for its first request.
	DefaultReadHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultBodyStallTimeout aborts an upload (or any request body) from
	// which no byte arrives for this long. Time Ferry itself spends not
	// reading (a slow backend) does not count.
	DefaultBodyStallTimeout = 60 * time.Second
	// DefaultBodyMinRate is the slowest a request body may arrive, in
	// bytes per second averaged over each BodyStallTimeout of waiting for
	// it: 4 KiB/s (32 kbit/s), far below any real uploader's link, but a
	// body trickled to dodge the stall timeout (and hold its upload's
	// memory reservation, its store connection and temp file) ends within
	// two windows. Apache's mod_reqtimeout defaults to 500 bytes/s.
	DefaultBodyMinRate = 4 << 10
	// DefaultJSONMemoryLimit caps the memory all buffered JSON request
	// bodies may hold at once (see Config.JSONMemoryLimit).
	DefaultJSONMemoryLimit = 128 << 20
	// DefaultTransferMemoryLimit caps the memory all artifact uploads may
	// hold in part buffers at once (see Config.TransferMemoryLimit): 17
	// S3 multipart uploads at MLflow's 10 MiB chunk, 42 Azure ones at the
	// default 4 MiB block, 64 GCS ones at the default 8 MiB chunk.
	DefaultTransferMemoryLimit = 512 << 20
	// MinTransferMemoryLimit is what one S3 multipart upload at MLflow's
	// default chunk holds, with room to spare.
	MinTransferMemoryLimit = 64 << 20
	// MinJSONMemoryLimit is twice the largest JSON body Ferry accepts
	// (wire.MaxJSONBody, 32 MiB), so one such body always fits.
	MinJSONMemoryLimit = 64 << 20
	// DefaultTempFileMaxAge is how old (since its last write) an upload's
	// temporary file in a local destination must be before the sweep at
	// start removes it. Each write of an upload refreshes its file's
	// modification time, so the age is the longest an upload may go
	// without writing; a day is far beyond any live upload.
	DefaultTempFileMaxAge = 24 * time.Hour
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
	TempFileMaxAge       time.Duration // 0: no sweep of stale upload temp files at start
	PresignedDownloadTTL time.Duration
	LogLevel             string
	LogFormat            string

	// Security is the Host / Origin checking of upstream MLflow's
	// security middleware (3.5+).
	Security Security

	// ReadHeaderTimeout, IdleTimeout and BodyStallTimeout bound how long a
	// connection may hold the server without sending (see the defaults).
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	BodyStallTimeout  time.Duration
	// BodyMinRate is the slowest, in bytes per second, a request body may
	// arrive, averaged over each BodyStallTimeout of time spent waiting
	// for it (time Ferry spends not reading does not count); 0: no rule
	// (also in a Config built without Parse: unlike the timeouts, the
	// proxy gives a zero no default).
	BodyMinRate int64
	// JSONMemoryLimit caps the bytes held by buffered JSON request bodies
	// across all requests, each counted at twice its size (the bytes and
	// what they decode into). Requests beyond it wait, then get 503.
	JSONMemoryLimit int64
	// TransferMemoryLimit caps the bytes artifact uploads hold in memory
	// at once across all requests: the part buffers a store needs to
	// upload in parts (S3 multipart, Azure blocks, GCS chunks), as each
	// driver declares (stores.PutBufferer). An upload beyond it waits,
	// then gets 503. 0: unbounded.
	TransferMemoryLimit int64
}

// Security configures the DNS-rebinding and cross-origin protection.
type Security struct {
	// Disabled turns the Host and Origin checks and the CORS headers off
	// (--disable-security-middleware).
	Disabled bool
	// AllowedHosts are the Host header values accepted: exact names or
	// fnmatch patterns with *, ? and [...]; "*" accepts any. Empty means
	// the defaults: localhost, loopback, private and unspecified
	// addresses, and the --host Ferry binds, each with any port.
	AllowedHosts []string
	// CORSAllowedOrigins are the origins (besides localhost ones) allowed
	// to make state-changing cross-origin requests and given CORS
	// headers; exact or fnmatch patterns; "*" allows every origin.
	CORSAllowedOrigins []string
	// XFrameOptions is sent on every response; "" when NONE was given.
	XFrameOptions string
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
	"temp-file-max-age":     {"FERRY_TEMP_FILE_MAX_AGE"},
	"log-level":             {"FERRY_LOG_LEVEL"},
	"log-format":            {"FERRY_LOG_FORMAT"},

	"allowed-hosts":               {"MLFLOW_SERVER_ALLOWED_HOSTS"},
	"cors-allowed-origins":        {"MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"},
	"x-frame-options":             {"MLFLOW_SERVER_X_FRAME_OPTIONS"},
	"disable-security-middleware": {"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE"},
	"read-header-timeout":         {"FERRY_READ_HEADER_TIMEOUT"},
	"idle-timeout":                {"FERRY_IDLE_TIMEOUT"},
	"body-stall-timeout":          {"FERRY_BODY_STALL_TIMEOUT"},
	"max-json-memory":             {"FERRY_MAX_JSON_MEMORY"},
	"max-transfer-memory":         {"FERRY_MAX_TRANSFER_MEMORY"},
	"body-min-rate":               {"FERRY_BODY_MIN_RATE"},
}

// Flags holds the raw flag values bound to a FlagSet.
type Flags struct {
	fs  *pflag.FlagSet
	cfg Config
	// noServe is --no-serve-artifacts; click's paired boolean flag.
	noServe bool
	// The raw comma lists and size, split and parsed by Resolve.
	allowedHosts, corsOrigins, xFrame, jsonMemory, transferMemory, bodyMinRate string
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
	fs.StringVar(&c.ArtifactsDestination, "artifacts-destination", DefaultArtifactsDestination, "Where proxied artifacts are stored: a local path, file://, s3://bucket/prefix, r2://, b2://, gs://bucket/prefix, wasbs://container@account.blob.core.windows.net/prefix, abfss://filesystem@account.dfs.core.windows.net/path, sftp://user@host/path, ftp://user:pass@host/path, hdfs://namenode:port/path, viewfs://cluster/path (each scheme's variables: see the README) [env MLFLOW_ARTIFACTS_DESTINATION]")
	fs.BoolVar(&c.ArtifactsOnly, "artifacts-only", false, "Serve only the artifact routes; tracking and registry routes answer 503. [env MLFLOW_ARTIFACTS_ONLY]")
	fs.StringVar(&c.StaticPrefix, "static-prefix", "", "A prefix for every route (/api, /ajax-api, /health, /version), e.g. /mlflow. Must start with / and not end with /. [env MLFLOW_STATIC_PREFIX]")
	fs.IntVarP(&c.Workers, "workers", "w", DefaultWorkers, "Accepted for compatibility with mlflow server. Ferry is one process that serves every request on its own goroutine and uses all cores, so there is nothing to fork; the value only has to be positive. [env MLFLOW_WORKERS]")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "How long SIGTERM waits for in-flight requests and transfers before closing connections. [env FERRY_SHUTDOWN_TIMEOUT]")
	fs.DurationVar(&c.TempFileMaxAge, "temp-file-max-age", DefaultTempFileMaxAge, "At start, in the background, remove what uploads cut off by a crash left in --artifacts-destination (temporary files of a local, sftp:// or ftp:// store, S3 multipart uploads under the prefix; see ferry gc) once they were last written this long ago (safe for several servers sharing one NFS folder when longer than any upload's pause between writes); 0 disables. [env FERRY_TEMP_FILE_MAX_AGE]")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error. [env FERRY_LOG_LEVEL]")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text. [env FERRY_LOG_FORMAT]")
	fs.StringVar(&f.allowedHosts, "allowed-hosts", "", "Comma-separated Host header values to accept (fnmatch patterns with *; '*' accepts any), against DNS rebinding. Default: localhost, loopback, private and unspecified addresses and the --host address, with any port. [env MLFLOW_SERVER_ALLOWED_HOSTS]")
	fs.StringVar(&f.corsOrigins, "cors-allowed-origins", "", "Comma-separated origins allowed to make cross-origin state-changing requests and given CORS headers (fnmatch patterns with *; '*' allows all). localhost origins are always allowed. [env MLFLOW_SERVER_CORS_ALLOWED_ORIGINS]")
	fs.StringVar(&f.xFrame, "x-frame-options", DefaultXFrameOptions, "X-Frame-Options sent on every response: SAMEORIGIN, DENY, or NONE to send none. [env MLFLOW_SERVER_X_FRAME_OPTIONS]")
	fs.BoolVar(&c.Security.Disabled, "disable-security-middleware", false, "Turn off the Host and cross-origin checks and the CORS headers. [env MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE]")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", DefaultReadHeaderTimeout, "How long a client may take to send a request's headers. [env FERRY_READ_HEADER_TIMEOUT]")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "How long a keep-alive connection may wait for its next request. [env FERRY_IDLE_TIMEOUT]")
	fs.DurationVar(&c.BodyStallTimeout, "body-stall-timeout", DefaultBodyStallTimeout, "Abort an upload or request body from which no byte arrives for this long. [env FERRY_BODY_STALL_TIMEOUT]")
	fs.StringVar(&f.bodyMinRate, "body-min-rate", humanize.IBytes(DefaultBodyMinRate), "Abort an upload or request body that arrives slower than this many bytes per second, averaged over each --body-stall-timeout spent waiting for it. 0 for no minimum. [env FERRY_BODY_MIN_RATE]")
	fs.StringVar(&f.transferMemory, "max-transfer-memory", humanize.IBytes(DefaultTransferMemoryLimit), "Memory all artifact uploads may hold in part buffers at once (S3 multipart parts, Azure blocks, GCS chunks; other stores stream without them); uploads beyond it wait, then get 503. 0 for no bound; else at least 64 MiB. [env FERRY_MAX_TRANSFER_MEMORY]")
	fs.StringVar(&f.jsonMemory, "max-json-memory", humanize.IBytes(DefaultJSONMemoryLimit), "Memory all buffered JSON request bodies may hold at once (each counted at twice its size); requests beyond it wait, then get 503. At least 64 MiB. [env FERRY_MAX_JSON_MEMORY]")
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
	c.Security.AllowedHosts = splitList(f.allowedHosts)
	c.Security.CORSAllowedOrigins = splitList(f.corsOrigins)
	c.Security.XFrameOptions = strings.ToUpper(strings.TrimSpace(f.xFrame))
	if c.Security.XFrameOptions == "NONE" {
		c.Security.XFrameOptions = ""
	}
	if n, err := humanize.ParseBytes(f.jsonMemory); err != nil || n > 1<<50 {
		problems = append(problems, fmt.Errorf("--max-json-memory %q: want a size such as 256MiB", f.jsonMemory))
	} else {
		c.JSONMemoryLimit = int64(n)
	}
	if n, err := humanize.ParseBytes(f.bodyMinRate); err != nil || n > 1<<40 {
		problems = append(problems, fmt.Errorf("--body-min-rate %q: want bytes per second such as 4KiB, or 0", f.bodyMinRate))
	} else {
		c.BodyMinRate = int64(n)
	}
	if n, err := humanize.ParseBytes(f.transferMemory); err != nil || n > 1<<50 {
		problems = append(problems, fmt.Errorf("--max-transfer-memory %q: want a size such as 1GiB", f.transferMemory))
	} else {
		c.TransferMemoryLimit = int64(n)
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
	if c.TempFileMaxAge < 0 {
		problems = append(problems, fmt.Errorf("--temp-file-max-age %s must not be negative", c.TempFileMaxAge))
	}
	if c.ServeArtifacts && c.ArtifactsDestination == "" {
		problems = append(problems, errors.New("--artifacts-destination must not be empty when serving artifacts"))
	}
	for name, d := range map[string]time.Duration{"--read-header-timeout": c.ReadHeaderTimeout,
		"--idle-timeout": c.IdleTimeout, "--body-stall-timeout": c.BodyStallTimeout} {
		if d <= 0 {
			problems = append(problems, fmt.Errorf("%s %s must be positive", name, d))
		}
	}
	if c.JSONMemoryLimit != 0 && c.JSONMemoryLimit < MinJSONMemoryLimit {
		problems = append(problems, fmt.Errorf("--max-json-memory %s is below the minimum of %s",
			humanize.IBytes(uint64(c.JSONMemoryLimit)), humanize.IBytes(MinJSONMemoryLimit)))
	}
	if c.TransferMemoryLimit != 0 && c.TransferMemoryLimit < MinTransferMemoryLimit {
		problems = append(problems, fmt.Errorf("--max-transfer-memory %s is below the minimum of %s",
			humanize.IBytes(uint64(c.TransferMemoryLimit)), humanize.IBytes(MinTransferMemoryLimit)))
	}
	switch c.Security.XFrameOptions {
	case "", "SAMEORIGIN", "DENY":
	default:
		problems = append(problems, fmt.Errorf("--x-frame-options %q: want SAMEORIGIN, DENY or NONE", c.Security.XFrameOptions))
	}
	for _, p := range c.Security.AllowedHosts {
		if _, err := CompileGlobs([]string{p}); err != nil {
			problems = append(problems, fmt.Errorf("--allowed-hosts: %w", err))
		}
	}
	for _, p := range c.Security.CORSAllowedOrigins {
		if _, err := CompileGlobs([]string{p}); err != nil {
			problems = append(problems, fmt.Errorf("--cors-allowed-origins: %w", err))
		}
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
