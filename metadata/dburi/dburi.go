// Package dburi turns an MLflow backend-store URI (sqlite:///, postgresql://,
// postgresql+psycopg2://, mysql://, mysql+pymysql://, ...) into what Go's
// database/sql needs: a dialect, a driver name and a driver DSN. It is
// pure: it reads the environment only through the Env function it is
// given, and never opens a connection.
package dburi

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferryml/ferry/metadata/schema"
)

// Driver names registered by the drivers Ferry links.
const (
	DriverSQLite   = "sqlite3"
	DriverPostgres = "pgx"
	DriverMySQL    = "mysql"
)

// Config is a parsed backend-store URI.
type Config struct {
	Dialect schema.Dialect
	Driver  string
	// DSN is the driver's connection string. For SQLite it is the
	// "file:" URI without Ferry's pragmas (see SQLitePath).
	DSN string
	// SQLitePath is the database file ("" for an in-memory database).
	SQLitePath string
	// Memory is true for sqlite:///:memory: (and sqlite://).
	Memory bool
	// MySQL is the parsed MySQL configuration (TLS from MLFLOW_MYSQL_SSL_*
	// already applied), nil for other dialects.
	MySQL *mysql.Config
	// Pool settings from MLFLOW_SQLALCHEMYSTORE_* (zero = driver default).
	Pool Pool
	// Redacted is the URI with any password replaced by "***", for logs
	// and error messages.
	Redacted string
}

// Pool mirrors SQLAlchemy's QueuePool knobs.
type Pool struct {
	Size        int           // MLFLOW_SQLALCHEMYSTORE_POOL_SIZE (SQLAlchemy default 5)
	MaxOverflow int           // MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW (default 10)
	Recycle     time.Duration // MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE (seconds; 0 = never)
}

// ErrUnsupported marks URIs Ferry recognises but does not serve (mssql,
// file stores).
var ErrUnsupported = errors.New("unsupported backend store")

// Env looks up an environment variable; os.LookupEnv in production.
type Env func(string) (string, bool)

// Parse parses uri with the process environment.
func Parse(uri string) (*Config, error) { return ParseEnv(uri, os.LookupEnv) }

// ParseEnv parses uri, reading pool and MySQL TLS settings through env.
func ParseEnv(uri string, env Env) (*Config, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || scheme == "" {
		if !strings.Contains(uri, ":") || filepath.IsAbs(uri) || strings.HasPrefix(uri, "file:") {
			return nil, fmt.Errorf("%w: the filesystem tracking backend (e.g., './mlruns') is no longer supported; use a database backend such as sqlite:///mlflow.db (upstream converts one with 'mlflow migrate-filestore')", ErrUnsupported)
		}
		return nil, fmt.Errorf("invalid database URI %q", redact(uri))
	}
	if scheme == "file" {
		return ParseEnv(strings.TrimPrefix(uri, "file://"), env)
	}
	engine, _, _ := strings.Cut(scheme, "+")
	if strings.Count(scheme, "+") > 1 {
		return nil, fmt.Errorf("Invalid database URI: '%s'.", redact(uri)) //nolint:staticcheck // upstream's message
	}
	pool, err := parsePool(env)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Pool: pool, Redacted: redact(uri)}
	switch engine {
	case "sqlite":
		return parseSQLite(cfg, rest)
	case "postgresql", "postgres":
		return parsePostgres(cfg, rest)
	case "mysql":
		return parseMySQL(cfg, rest, env)
	case "mssql":
		return nil, fmt.Errorf("%w: SQL Server (mssql://) is not supported by Ferry; use PostgreSQL, MySQL/MariaDB or SQLite", ErrUnsupported)
	}
	return nil, fmt.Errorf("Invalid database engine: '%s'. Supported database engines are postgresql, mysql, sqlite, mssql", engine) //nolint:staticcheck // upstream's message
}

func parsePool(env Env) (Pool, error) {
	var p Pool
	for _, v := range []struct {
		name string
		dst  *int
	}{
		{"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", &p.Size},
		{"MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", &p.MaxOverflow},
	} {
		if s, ok := env(v.name); ok && strings.TrimSpace(s) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 {
				return p, fmt.Errorf("%s must be a non-negative integer, got %q", v.name, s)
			}
			*v.dst = n
		}
	}
	if s, ok := env("MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE"); ok && strings.TrimSpace(s) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return p, fmt.Errorf("MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE must be an integer number of seconds, got %q", s)
		}
		if n > 0 { // SQLAlchemy: -1 (default) disables recycling
			p.Recycle = time.Duration(n) * time.Second
		}
	}
	return p, nil
}

// parseSQLite follows SQLAlchemy: sqlite:///rel/path, sqlite:////abs/path,
// sqlite:///:memory: and sqlite:// (memory). Query parameters are ignored.
func parseSQLite(cfg *Config, rest string) (*Config, error) {
	cfg.Dialect, cfg.Driver = schema.SQLite, DriverSQLite
	rest, _, _ = strings.Cut(rest, "?")
	if rest != "" && !strings.HasPrefix(rest, "/") {
		return nil, fmt.Errorf("invalid SQLite URI %q: expected sqlite:///relative/path or sqlite:////absolute/path", cfg.Redacted)
	}
	path := strings.TrimPrefix(rest, "/")
	if path == "" || path == ":memory:" {
		cfg.Memory = true
		cfg.DSN = "file::memory:"
		return cfg, nil
	}
	cfg.SQLitePath = path
	cfg.DSN = "file:" + escapeSQLitePath(path)
	return cfg, nil
}

// escapeSQLitePath escapes the characters that end or escape the path part
// of an SQLite file: URI.
func escapeSQLitePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

func parsePostgres(cfg *Config, rest string) (*Config, error) {
	cfg.Dialect, cfg.Driver = schema.Postgres, DriverPostgres
	u, err := url.Parse("postgres://" + rest)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL URI %q: %v", cfg.Redacted, err)
	}
	cfg.DSN = u.String()
	return cfg, nil
}

func parseMySQL(cfg *Config, rest string, env Env) (*Config, error) {
	cfg.Dialect, cfg.Driver = schema.MySQL, DriverMySQL
	u, err := url.Parse("mysql://" + rest)
	if err != nil {
		return nil, fmt.Errorf("invalid MySQL URI %q: %v", cfg.Redacted, err)
	}
	mc := mysql.NewConfig()
	mc.User = u.User.Username()
	mc.Passwd, _ = u.User.Password()
	mc.DBName = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	if sock := q.Get("unix_socket"); sock != "" {
		mc.Net, mc.Addr = "unix", sock
	} else {
		host := u.Hostname()
		if host == "" {
			host = "localhost"
		}
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		mc.Net, mc.Addr = "tcp", host+":"+port
	}
	cs := q.Get("charset")
	if cs == "" {
		cs = "utf8mb4"
	}
	if err := mc.Apply(mysql.Charset(cs, "")); err != nil {
		return nil, fmt.Errorf("invalid MySQL charset %q: %v", cs, err)
	}
	tls, err := mysqlTLS(q, env)
	if err != nil {
		return nil, err
	}
	if tls != nil {
		mc.TLS = tls
	}
	// Ferry's queries compare timestamps as integers; no time parsing.
	mc.ParseTime = false
	cfg.MySQL = mc
	cfg.DSN = mc.FormatDSN()
	return cfg, nil
}

func redact(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	at := strings.LastIndex(rest, "@")
	slash := strings.Index(rest, "/")
	if at < 0 || (slash >= 0 && slash < at) {
		return uri
	}
	userinfo := rest[:at]
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":***" + rest[at:]
	}
	return uri
}
