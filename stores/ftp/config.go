package ftp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/stores"
)

// Environment variables the driver reads (upstream MLflow has none for
// FTP; these are Ferry's).
const (
	// EnvTLS selects FTPS: "explicit" (AUTH TLS on the plain port, also
	// "?tls=explicit" in the URI), "implicit" (TLS from the first byte,
	// usually port 990) or "" / "off". Data connections are protected too
	// (PROT P).
	EnvTLS = "FERRY_FTP_TLS"
	// EnvTLSCAFile is a PEM file of CA certificates trusted for the
	// server's certificate instead of the system's.
	EnvTLSCAFile = "FERRY_FTP_TLS_CA_FILE"
	// EnvTLSInsecureSkipVerify ("true"/"1") accepts any server
	// certificate. Only for throw-away test servers.
	EnvTLSInsecureSkipVerify = "FERRY_FTP_TLS_INSECURE_SKIP_VERIFY"
	// EnvMaxConnections bounds the control connections to one server
	// (default 8); FTP carries one transfer per control connection, so
	// this is also the bound on concurrent transfers.
	EnvMaxConnections = "FERRY_FTP_MAX_CONNECTIONS"
	// EnvKeepAlive is how long a pooled control connection may stay
	// quiet before it is sent a NOOP (a Go duration such as "30s";
	// default DefaultKeepAlive; "0" or "off" sends none). Servers drop
	// idle control connections (vsftpd's idle_session_timeout, 300 s by
	// default, often set lower), and NATs forget quiet ones.
	EnvKeepAlive = "FERRY_FTP_KEEPALIVE"
)

// DefaultKeepAlive is the keep-alive period when EnvKeepAlive is unset.
const DefaultKeepAlive = 30 * time.Second

// TLSMode is how a connection is protected.
type TLSMode string

// The TLS modes.
const (
	TLSOff      TLSMode = ""
	TLSExplicit TLSMode = "explicit"
	TLSImplicit TLSMode = "implicit"
)

// Config is everything needed to reach one FTP store.
type Config struct {
	Host     string
	Port     int
	User     string
	Password string
	// Root is the store's directory on the server.
	Root string
	TLS  TLSMode
	// TLSConfig is used when TLS is not TLSOff.
	TLSConfig *tls.Config
	// MaxConnections bounds the pool (default 8).
	MaxConnections int
	// Timeout bounds connecting, and every wait for the server's reply
	// or data (default 60 s).
	Timeout time.Duration
	// KeepAlive is how long a pooled connection may stay quiet before it
	// is sent a NOOP (0: DefaultKeepAlive; negative: never). Pooled
	// connections are closed after two minutes idle whatever it is.
	KeepAlive time.Duration
}

// Addr is "host:port".
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// ConfigFromURL builds the configuration for
// ftp://[user[:password]@]host[:port]/path as upstream does: port 21,
// host localhost, and ftplib's anonymous login when no user is given.
func ConfigFromURL(u *url.URL) (Config, error) {
	c := Config{Host: u.Hostname(), Port: 21, Root: u.Path, Timeout: 60 * time.Second, MaxConnections: 8}
	if c.Host == "" {
		c.Host = "localhost"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("ftp URI: invalid port %q: %w", p, stores.ErrInvalidKey)
		}
		c.Port = n
	}
	if c.Root == "" {
		c.Root = "/"
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if c.User == "" {
		// What Python's ftplib.login does with an empty user.
		c.User = "anonymous"
	}
	if c.User == "anonymous" && (c.Password == "" || c.Password == "-") {
		c.Password += "anonymous@"
	}
	mode := os.Getenv(EnvTLS)
	if q := u.Query().Get("tls"); q != "" {
		mode = q
	}
	switch strings.ToLower(mode) {
	case "", "off", "false", "0":
		c.TLS = TLSOff
	case "explicit", "true", "1":
		c.TLS = TLSExplicit
	case "implicit":
		c.TLS = TLSImplicit
	default:
		return c, fmt.Errorf("%s=%q: want explicit, implicit or off", EnvTLS, mode)
	}
	if c.TLS != TLSOff {
		tc := &tls.Config{
			ServerName: c.Host,
			MinVersion: tls.VersionTLS12,
			// Servers such as vsftpd (require_ssl_reuse) accept a data
			// connection only when it resumes the control connection's
			// TLS session.
			ClientSessionCache: tls.NewLRUClientSessionCache(16),
		}
		if f := os.Getenv(EnvTLSCAFile); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return c, fmt.Errorf("%s: %w", EnvTLSCAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("%s=%s: no PEM certificate in it", EnvTLSCAFile, f)
			}
			tc.RootCAs = pool
		}
		skip, err := parseBool(EnvTLSInsecureSkipVerify)
		if err != nil {
			return c, err
		}
		tc.InsecureSkipVerify = skip
		c.TLSConfig = tc
	}
	if v := os.Getenv(EnvMaxConnections); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			return c, fmt.Errorf("%s=%q: want a number from 1 to 1024", EnvMaxConnections, v)
		}
		c.MaxConnections = n
	}
	switch v := strings.ToLower(os.Getenv(EnvKeepAlive)); v {
	case "":
	case "0", "off":
		c.KeepAlive = -1
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("%s=%q: want a duration of at least 1s (such as 30s), or off", EnvKeepAlive, v)
		}
		c.KeepAlive = d
	}
	return c, nil
}

// parseBool reads a boolean env var the way MLflow does: true/false/1/0,
// case-insensitive, anything else is an error.
func parseBool(name string) (bool, error) {
	switch strings.ToLower(os.Getenv(name)) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: want true, false, 1 or 0", name, os.Getenv(name))
}
