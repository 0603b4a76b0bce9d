package dburi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata/schema"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		uri     string
		dialect schema.Dialect
		dsn     string // substring expected in DSN
		path    string
		memory  bool
	}{
		{"sqlite:///mlflow.db", schema.SQLite, "file:mlflow.db", "mlflow.db", false},
		{"sqlite:////abs/dir/x.db", schema.SQLite, "file:/abs/dir/x.db", "/abs/dir/x.db", false},
		{"sqlite:///we?ird#name%.db", schema.SQLite, "file:we", "we", false},
		{"sqlite:///:memory:", schema.SQLite, "file::memory:", "", true},
		{"sqlite://", schema.SQLite, "file::memory:", "", true},
		{"postgresql://u:p@h:5433/db?sslmode=disable", schema.Postgres, "postgres://u:p@h:5433/db?sslmode=disable", "", false},
		{"postgresql+psycopg2://u@h/db", schema.Postgres, "postgres://u@h/db", "", false},
		{"postgresql+pg8000://u@h/db", schema.Postgres, "postgres://u@h/db", "", false},
		{"mysql://u:p@h:3307/db?charset=utf8mb4", schema.MySQL, "u:p@tcp(h:3307)/db", "", false},
		{"mysql+pymysql://u@h/db", schema.MySQL, "u@tcp(h:3306)/db", "", false},
		{"mysql+mysqldb://u@/db?unix_socket=/run/m.sock", schema.MySQL, "u@unix(/run/m.sock)/db", "", false},
	}
	for _, tc := range cases {
		cfg, err := ParseEnv(tc.uri, noEnv)
		if err != nil {
			t.Errorf("%s: %v", tc.uri, err)
			continue
		}
		if cfg.Dialect != tc.dialect || !strings.Contains(cfg.DSN, tc.dsn) || cfg.SQLitePath != tc.path && !strings.HasPrefix(tc.uri, "sqlite:///we") || cfg.Memory != tc.memory {
			t.Errorf("%s: got %+v", tc.uri, cfg)
		}
	}
	// A '?' in a SQLite path is the query separator (as in SQLAlchemy);
	// '#' and '%' are escaped in the driver URI.
	cfg, _ := ParseEnv("sqlite:////tmp/a#b%c.db", noEnv)
	if cfg.DSN != "file:/tmp/a%23b%25c.db" {
		t.Errorf("escaped DSN = %q", cfg.DSN)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		uri         string
		msg         string
		unsupported bool
	}{
		{"mssql+pyodbc://u:p@h/db", "not supported", true},
		{"./mlruns", "no longer supported", true},
		{"/abs/mlruns", "no longer supported", true},
		{"file:///abs/mlruns", "no longer supported", true},
		{"oracle://u@h/db", "Invalid database engine: 'oracle'", false},
		{"mysql+a+b://u@h/db", "Invalid database URI", false},
		{"sqlite:relative.db", "invalid database URI", false},
	}
	for _, tc := range cases {
		_, err := ParseEnv(tc.uri, noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%s: err = %v", tc.uri, err)
		}
	}
}

func TestPoolEnv(t *testing.T) {
	t.Parallel()
	cfg, err := ParseEnv("postgresql://h/db", envOf(map[string]string{
		"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE":    "7",
		"MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "3",
		"MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE": "60",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pool != (Pool{Size: 7, MaxOverflow: 3, Recycle: time.Minute}) {
		t.Errorf("pool = %+v", cfg.Pool)
	}
	if _, err := ParseEnv("postgresql://h/db", envOf(map[string]string{"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "many"})); err == nil {
		t.Error("bad pool size accepted")
	}
}

func TestMySQLTLSEnv(t *testing.T) {
	t.Parallel()
	_, err := ParseEnv("mysql://u@h/db", envOf(map[string]string{"MLFLOW_MYSQL_SSL_CA": "/nonexistent/ca.pem"}))
	if err == nil || !strings.Contains(err.Error(), "MLFLOW_MYSQL_SSL_CA") {
		t.Errorf("missing CA file: err = %v", err)
	}
	_, err = ParseEnv("mysql://u@h/db", envOf(map[string]string{"MLFLOW_MYSQL_SSL_CERT": "/x.pem"}))
	if err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("cert without key: err = %v", err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	cfg, err := ParseEnv("postgresql://user:s3cret@h/db", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cfg.Redacted, "s3cret") || !strings.Contains(cfg.Redacted, "user:***@h") {
		t.Errorf("redacted = %q", cfg.Redacted)
	}
}
