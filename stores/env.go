package stores

import (
	"fmt"
	"strconv"
	"strings"
)

// EnvSize reads the byte-count variable name through getenv (os.Getenv
// outside tests): def when unset or blank, else a positive integer, as
// MLflow's own size variables (MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE,
// MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE) are read. The error names the
// variable and its value.
func EnvSize(getenv func(string) string, name string, def int64) (int64, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of bytes", name, v)
	}
	return n, nil
}
