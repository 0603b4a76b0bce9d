package dburi

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
)

// mysqlTLS builds the TLS configuration upstream passes to the MySQL
// driver as ssl_ca / ssl_cert / ssl_key: from MLFLOW_MYSQL_SSL_CA,
// MLFLOW_MYSQL_SSL_CERT and MLFLOW_MYSQL_SSL_KEY, or the same names as
// URI query parameters. nil means no TLS.
func mysqlTLS(q url.Values, env Env) (*tls.Config, error) {
	get := func(envName, param string) string {
		if v, ok := env(envName); ok && v != "" {
			return v
		}
		return q.Get(param)
	}
	ca := get("MLFLOW_MYSQL_SSL_CA", "ssl_ca")
	cert := get("MLFLOW_MYSQL_SSL_CERT", "ssl_cert")
	key := get("MLFLOW_MYSQL_SSL_KEY", "ssl_key")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("MLFLOW_MYSQL_SSL_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("MLFLOW_MYSQL_SSL_CA: no PEM certificate in %s", ca)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("MLFLOW_MYSQL_SSL_CERT and MLFLOW_MYSQL_SSL_KEY must be set together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("MLFLOW_MYSQL_SSL_CERT/KEY: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
