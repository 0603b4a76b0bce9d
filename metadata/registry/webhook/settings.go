package webhook

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment variables (upstream's names and defaults).
const (
	EnvAllowedSchemes = "MLFLOW_WEBHOOK_ALLOWED_SCHEMES"
	EnvAllowPrivate   = "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"
	EnvMaxWorkers     = "MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS"
	EnvTimeout        = "MLFLOW_WEBHOOK_REQUEST_TIMEOUT"
	EnvMaxRetries     = "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES"
	EnvCacheTTL       = "MLFLOW_WEBHOOK_CACHE_TTL"
	EnvEncryptionKey  = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
)

// Settings configure webhook validation and delivery.
type Settings struct {
	// Schemes a webhook URL may use (default https).
	Schemes []string
	// AllowPrivate lifts the SSRF rule (tests, private networks).
	AllowPrivate bool
	// Workers deliver concurrently (default 10).
	Workers int
	// QueueSize bounds the deliveries waiting for a worker; past it new
	// ones are dropped with a log line instead of blocking the registry
	// call (upstream's executor queue is unbounded). Default 1000.
	QueueSize int
	// Timeout bounds one HTTP attempt, connect to last byte (default 30 s).
	Timeout time.Duration
	// MaxRetries after the first attempt (default 3).
	MaxRetries int
	// Backoff is urllib3's backoff_factor: no wait before the first retry,
	// then Backoff*2^(n-1) before retry n, plus up to Jitter, at most
	// BackoffMax (defaults 1 s, 1 s, 60 s, as upstream).
	Backoff, Jitter, BackoffMax time.Duration
	// CacheTTL is how long the webhooks of an event are cached (default
	// 60 s; 0 disables the cache).
	CacheTTL time.Duration
	// EncryptionKey is the Fernet key for secrets at rest ("" = a random
	// key for this process only).
	EncryptionKey string
}

// DefaultSettings are upstream's defaults with no variable set.
func DefaultSettings() Settings {
	return Settings{
		Schemes: []string{"https"}, Workers: 10, QueueSize: 1000, Timeout: 30 * time.Second,
		MaxRetries: 3, Backoff: time.Second, Jitter: time.Second, BackoffMax: 60 * time.Second,
		CacheTTL: 60 * time.Second,
	}
}

// SettingsFromEnv reads the MLFLOW_WEBHOOK_* variables through getenv
// over DefaultSettings; a malformed value is an error (upstream fails on
// first use instead).
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := DefaultSettings()
	if v := getenv(EnvAllowedSchemes); v != "" {
		s.Schemes = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				s.Schemes = append(s.Schemes, strings.ToLower(p))
			}
		}
	}
	if v := getenv(EnvAllowPrivate); v != "" {
		switch strings.ToLower(v) {
		case "true", "1":
			s.AllowPrivate = true
		case "false", "0":
		default:
			return s, fmt.Errorf("%s value must be one of ['true', 'false', '1', '0'] (case-insensitive), but got %s", EnvAllowPrivate, v)
		}
	}
	for _, iv := range []struct {
		env string
		dst *int
		min int
	}{{EnvMaxWorkers, &s.Workers, 1}, {EnvMaxRetries, &s.MaxRetries, 0}} {
		if v := getenv(iv.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < iv.min {
				return s, fmt.Errorf("%s: want an integer >= %d, got %q", iv.env, iv.min, v)
			}
			*iv.dst = n
		}
	}
	for _, dv := range []struct {
		env string
		dst *time.Duration
		min float64
	}{{EnvTimeout, &s.Timeout, 0.001}, {EnvCacheTTL, &s.CacheTTL, 0}} {
		if v := getenv(dv.env); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < dv.min || f > 1e6 {
				return s, fmt.Errorf("%s: want seconds >= %g, got %q", dv.env, dv.min, v)
			}
			*dv.dst = time.Duration(f * float64(time.Second))
		}
	}
	s.EncryptionKey = getenv(EnvEncryptionKey)
	if s.EncryptionKey != "" {
		if _, err := NewCipher(s.EncryptionKey); err != nil {
			return s, fmt.Errorf("%s: %w", EnvEncryptionKey, err)
		}
	}
	return s, nil
}
