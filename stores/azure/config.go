package azure

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/stores"
)

// Limits and defaults, with the source of each number.
const (
	// MaxBlockSize is Azure's largest block (service version 2019-12-12
	// and later): 4000 MiB.
	MaxBlockSize = 4000 << 20
	// MinBlockSize is the smallest block Ferry stages: the SDK's minimum
	// for streamed uploads (1 MiB).
	MinBlockSize = 1 << 20
	// MaxBlocks is Azure's limit on committed blocks per blob.
	MaxBlocks = 50000
	// DefaultBlockSize is the block size of proxied uploads when
	// MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE is unset: 4 MiB, the Python
	// SDK's max_block_size that upstream's upload_blob uses. Ferry keeps
	// blocksInFlight of them in memory per upload: 4 MiB blocks kept the
	// 1 GiB benchmark at 58 MiB peak RSS where 10 MiB (MLflow's chunk
	// default, used before) took 76, at the same speed on Azurite. A
	// stream of unknown length fits MaxBlocks·4 MiB = 195 GiB; known
	// lengths raise the block size as needed (blockSizeFor).
	DefaultBlockSize = 4 << 20
	// DefaultTimeout is upstream's Azure default for
	// MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT (600 s).
	DefaultTimeout = 600 * time.Second
	// DefaultPartURLTTL is how long presigned block URLs live: upstream's
	// one-hour SAS expiry.
	DefaultPartURLTTL = time.Hour
)

// Credential names how the driver authenticates.
type Credential string

// The credential kinds, in upstream's order of precedence.
const (
	// CredConnectionString is AZURE_STORAGE_CONNECTION_STRING (account
	// key or SAS inside).
	CredConnectionString Credential = "connection-string"
	// CredAccountKey is AZURE_STORAGE_ACCESS_KEY.
	CredAccountKey Credential = "account-key"
	// CredSAS is AZURE_STORAGE_SAS_TOKEN.
	CredSAS Credential = "sas"
	// CredDefault is azidentity's DefaultAzureCredential (environment,
	// workload identity, managed identity, Azure CLI, ...).
	CredDefault Credential = "default"
)

// Config is everything the driver needs, as upstream MLflow users set it
// through the environment (see ConfigFromEnv).
type Config struct {
	// Scheme is "wasbs" or "abfss".
	Scheme string
	// Container is the container (ADLS: file system) and Account the
	// storage account, from container@account.<suffix>.
	Container, Account string
	// Host is the URI's host (account.blob.core.windows.net, or for abfss
	// account.dfs.core.windows.net).
	Host string
	// Prefix is the URI path without leading or trailing slash.
	Prefix string
	// Endpoint is the blob service URL requests go to:
	// FERRY_AZURE_BLOB_ENDPOINT_URL when set (Ferry's own: emulators,
	// private endpoints), else https://<account>.blob.<suffix>. A
	// connection string's own endpoint wins over both.
	Endpoint string
	// Cred is the credential kind in use; ConnectionString, AccountKey and
	// SASToken hold its secret.
	Cred                                   Credential
	ConnectionString, AccountKey, SASToken string
	// InsecureTLS is MLFLOW_TRACKING_INSECURE_TLS (upstream applies
	// MLflow's host-credential verify setting to the Azure client);
	// CABundle is MLFLOW_TRACKING_SERVER_CERT_PATH.
	InsecureTLS bool
	CABundle    string
	// Timeout is MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT: how long one
	// request may wait for the response headers.
	Timeout time.Duration
	// BlockSize is MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE: the block size of
	// proxied uploads (raised as needed to stay within MaxBlocks).
	BlockSize int64
	// PartURLTTL is the lifetime of presigned block URLs.
	PartURLTTL time.Duration

	// dial replaces the transport's dialer; tests only.
	dial dialer
}

// ConfigFromEnv builds the configuration for the wasbs:// or abfss:// URI
// u from the environment variables upstream MLflow reads (getenv is
// os.Getenv in production). Invalid values are reported all at once.
//
// Credentials, as upstream: wasbs takes AZURE_STORAGE_CONNECTION_STRING,
// else AZURE_STORAGE_ACCESS_KEY, else DefaultAzureCredential; abfss takes
// AZURE_STORAGE_SAS_TOKEN, else DefaultAzureCredential. Ferry also
// accepts AZURE_STORAGE_SAS_TOKEN for wasbs (after the access key), and a
// connection string or access key for abfss (before the SAS token).
func ConfigFromEnv(u *url.URL, getenv func(string) string) (Config, error) {
	c := Config{
		Scheme:     u.Scheme,
		Prefix:     strings.Trim(u.Path, "/"),
		Endpoint:   strings.TrimRight(strings.TrimSpace(getenv("FERRY_AZURE_BLOB_ENDPOINT_URL")), "/"),
		CABundle:   strings.TrimSpace(getenv("MLFLOW_TRACKING_SERVER_CERT_PATH")),
		Timeout:    DefaultTimeout,
		BlockSize:  DefaultBlockSize,
		PartURLTTL: DefaultPartURLTTL,
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	var err error
	if c.Container, c.Account, c.Host, err = parseHost(u); err != nil {
		bad("%v", err)
	}
	if c.Endpoint != "" {
		if e, err := url.Parse(c.Endpoint); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.RawQuery != "" || e.User != nil {
			bad("FERRY_AZURE_BLOB_ENDPOINT_URL=%q: want http(s)://host[:port][/path]", c.Endpoint)
		}
	} else if c.Account != "" {
		c.Endpoint = "https://" + c.Account + ".blob." + blobSuffix(c.Host)
	}

	conn := strings.TrimSpace(getenv("AZURE_STORAGE_CONNECTION_STRING"))
	key := strings.TrimSpace(getenv("AZURE_STORAGE_ACCESS_KEY"))
	sasTok := strings.TrimPrefix(strings.TrimSpace(getenv("AZURE_STORAGE_SAS_TOKEN")), "?")
	switch {
	case conn != "":
		c.Cred, c.ConnectionString = CredConnectionString, conn
	case key != "":
		c.Cred, c.AccountKey = CredAccountKey, key
	case sasTok != "":
		if _, err := url.ParseQuery(sasTok); err != nil {
			bad("AZURE_STORAGE_SAS_TOKEN is not a query string")
		}
		c.Cred, c.SASToken = CredSAS, sasTok
	default:
		c.Cred = CredDefault
	}

	if c.InsecureTLS, err = parseBool(getenv("MLFLOW_TRACKING_INSECURE_TLS")); err != nil {
		bad("MLFLOW_TRACKING_INSECURE_TLS: %v", err)
	}
	if v := strings.TrimSpace(getenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT")); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			bad("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT=%q is not a whole number of seconds", v)
		case n > 0:
			c.Timeout = time.Duration(n) * time.Second
		default:
			c.Timeout = 0 // no limit
		}
	}
	if n, err := stores.EnvSize(getenv, "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", c.BlockSize); err != nil {
		bad("%v", err)
	} else {
		c.BlockSize = n
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("azure store: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// blobHostSuffixes are the clouds upstream accepts in wasbs URIs.
var blobHostSuffixes = []string{"blob.core.windows.net", "blob.core.chinacloudapi.cn", "blob.core.usgovcloudapi.net"}

// parseHost splits container@account.<suffix>. wasbs accepts exactly
// upstream's blob hosts; abfss, as upstream, any suffix.
func parseHost(u *url.URL) (container, account, host string, err error) {
	form := "wasbs://<container>@<account>.blob.core.windows.net/<path>"
	if u.Scheme == "abfss" {
		form = "abfss://<filesystem>@<account>.dfs.core.windows.net/<path>"
	}
	if u.User == nil || u.User.Username() == "" {
		return "", "", "", fmt.Errorf("%s URI must be of the form %s", u.Scheme, form)
	}
	if _, hasPw := u.User.Password(); hasPw {
		return "", "", "", fmt.Errorf("%s URIs carry no credentials: use the AZURE_STORAGE_* variables", u.Scheme)
	}
	container, host = u.User.Username(), strings.ToLower(u.Host)
	account, suffix, ok := strings.Cut(host, ".")
	if !ok || account == "" || !validContainer(container) {
		return "", "", "", fmt.Errorf("%s URI must be of the form %s", u.Scheme, form)
	}
	if u.Scheme == "wasbs" {
		found := false
		for _, s := range blobHostSuffixes {
			found = found || suffix == s
		}
		if !found {
			return "", "", "", fmt.Errorf("WASBS URI must be of the form %s (or the China and US Government clouds' blob hosts)", form)
		}
	}
	return container, account, host, nil
}

// blobSuffix is the blob endpoint's domain for a URI host: the part
// after "<account>.blob." or "<account>.dfs." (ADLS reaches the same
// data through the blob endpoint), else core.windows.net.
func blobSuffix(host string) string {
	_, rest, _ := strings.Cut(host, ".")
	for _, p := range []string{"blob.", "dfs."} {
		if s, ok := strings.CutPrefix(rest, p); ok {
			return s
		}
	}
	return "core.windows.net"
}

// validContainer checks Azure's container naming rules: 3-63 lower-case
// letters, digits and single hyphens, starting and ending alphanumeric
// ("$root" and "$web" are also valid).
func validContainer(name string) bool {
	if name == "$root" || name == "$web" {
		return true
	}
	if len(name) < 3 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// parseBool accepts what MLflow's boolean env vars accept: true/false/1/0,
// any case; empty is false.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("%q is not one of true, false, 1, 0", v)
}

// blockSizeFor is the block size for an upload of size bytes (size < 0:
// unknown): the configured size within Azure's limits, large enough that
// a known size fits in MaxBlocks blocks.
func blockSizeFor(configured, size int64) int64 {
	b := max(configured, MinBlockSize)
	if size > 0 {
		if need := (size + MaxBlocks - 1) / MaxBlocks; need > b {
			b = (need + (1<<20 - 1)) &^ (1<<20 - 1)
		}
	}
	return min(b, MaxBlockSize)
}
