// Package replicas holds the black-box tests of Ferry run as several
// processes on one database: replicas started at the same moment on an
// empty PostgreSQL, MariaDB or SQLite database all serve and create the
// schema once, concurrent `ferry db upgrade` runs are safe, and a page
// token from one replica is valid on another. The binary comes from
// $FERRY_BIN, or is built once by TestMain; the database servers are the
// ones test/backends/databases.sh starts on 127.0.0.1 (admin URLs
// FERRY_TEST_PG_ADMIN and FERRY_TEST_MYSQL_ADMIN as in the metadata tests).
//
// All code lives in _test.go files; this file only documents the package.
package replicas
