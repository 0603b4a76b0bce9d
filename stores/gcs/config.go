package gcs

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/stores"
)

// Limits and defaults, with the source of each number.
const (
	// ChunkAlign is the granularity of resumable upload chunks (GCS:
	// "multiples of 256 KiB"); MLflow refuses other chunk sizes.
	ChunkAlign = 256 << 10
	// DefaultUploadChunkSize is Ferry's resumable upload chunk when
	// MLFLOW_GCS_UPLOAD_CHUNK_SIZE is unset: 8 MiB, Google's recommended
	// minimum. The Writer allocates one chunk per upload on the Go heap,
	// so memory follows it: with the Go library's default 16 MiB Ferry's
	// peak RssAnon was 43 MiB, with 8 MiB 27 MiB, at the same upload speed
	// (test/bench/gcs, 256 MiB). MLflow's Python library uses 100 MiB.
	DefaultUploadChunkSize = 8 << 20
	// DefaultMultipartThreshold is MLflow's
	// MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE default (500 MiB): from
	// this size on an upload goes in retryable chunks, below it (and from
	// one chunk up) as one streamed request.
	DefaultMultipartThreshold = 500 << 20
	// DefaultTimeout is MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT's default
	// for GCS: the Python library's 60 s.
	DefaultTimeout = 60 * time.Second
	// PartURLTTL is how long presigned part URLs live: upstream signs
	// them for 60 minutes (gcs_artifact_repo.py).
	PartURLTTL = time.Hour
	// MaxParts is the XML API's limit on parts per multipart upload.
	MaxParts = 10000
	// MaxSignedURLTTL is the longest a V4 signed URL may live (7 days).
	MaxSignedURLTTL = 7 * 24 * time.Hour
	// DefaultXMLHost is where the XML API (multipart uploads, signed URLs)
	// lives when no emulator is configured.
	DefaultXMLHost = "storage.googleapis.com"
	// DefaultIAMEndpoint is the IAM Credentials API, which signs for
	// credentials that hold no private key (signBlob).
	DefaultIAMEndpoint = "https://iamcredentials.googleapis.com/"
)

// Config is everything the driver needs, as upstream MLflow users set it
// through the environment (see ConfigFromEnv).
type Config struct {
	// Bucket and Prefix come from gs://bucket/prefix; Prefix has no
	// leading or trailing slash.
	Bucket, Prefix string
	// EmulatorHost is STORAGE_EMULATOR_HOST (host:port or a URL): every
	// request goes there, over http unless the value says https. As with
	// Google's libraries, requests are then unauthenticated unless
	// CredentialsFile is set.
	EmulatorHost string
	// CredentialsFile is GOOGLE_APPLICATION_CREDENTIALS. Without it (and
	// without an emulator) Application Default Credentials are searched
	// (gcloud's file, then the metadata server); when none are found the
	// client is anonymous, as upstream's.
	CredentialsFile string
	// UploadChunkSize is MLFLOW_GCS_UPLOAD_CHUNK_SIZE: the chunk of a
	// resumable upload, and the memory one such upload holds.
	UploadChunkSize int
	// MultipartThreshold is MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE:
	// uploads of a known size from UploadChunkSize up to below it stream
	// as one request holding no chunk; larger ones, and those of unknown
	// size, go in chunks of UploadChunkSize, each retried on its own (0:
	// DefaultMultipartThreshold).
	MultipartThreshold int64
	// DownloadChunkSize is MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE, validated as
	// upstream does. Ferry streams a download in one request, so it does
	// not split downloads by it.
	DownloadChunkSize int
	// Timeout is MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT: how long one GCS
	// request may wait for its response (0 = no limit, from -1).
	Timeout time.Duration

	// detectADC searches for Application Default Credentials even with an
	// emulator configured (tests of the metadata-server path only).
	detectADC bool
	// iamEndpoint replaces DefaultIAMEndpoint (tests only).
	iamEndpoint string
}

// ConfigFromEnv builds the configuration for the gs:// URI u from the
// environment variables upstream MLflow (and Google's libraries) read.
// Invalid values are reported all at once.
func ConfigFromEnv(u *url.URL, getenv func(string) string) (Config, error) {
	c := Config{
		Bucket:             u.Host,
		Prefix:             strings.Trim(u.Path, "/"),
		EmulatorHost:       strings.TrimSpace(getenv("STORAGE_EMULATOR_HOST")),
		CredentialsFile:    strings.TrimSpace(getenv("GOOGLE_APPLICATION_CREDENTIALS")),
		UploadChunkSize:    DefaultUploadChunkSize,
		MultipartThreshold: DefaultMultipartThreshold,
		Timeout:            DefaultTimeout,
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if c.Bucket == "" {
		bad("%q names no bucket (want gs://bucket/prefix)", u.String())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		bad("gs URIs carry no user, query or fragment; credentials come from GOOGLE_APPLICATION_CREDENTIALS or ADC")
	}
	if c.EmulatorHost != "" {
		if _, _, err := emulatorURL(c.EmulatorHost); err != nil {
			bad("STORAGE_EMULATOR_HOST=%q: %v", c.EmulatorHost, err)
		}
	}
	var err error
	if c.UploadChunkSize, err = chunkSize(getenv, "MLFLOW_GCS_UPLOAD_CHUNK_SIZE", DefaultUploadChunkSize); err != nil {
		bad("%v", err)
	}
	if c.MultipartThreshold, err = stores.EnvSize(getenv, "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", DefaultMultipartThreshold); err != nil {
		bad("%v", err)
	}
	if c.DownloadChunkSize, err = chunkSize(getenv, "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", 0); err != nil {
		bad("%v", err)
	}
	if v := strings.TrimSpace(getenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT")); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n == 0 || n < -1:
			bad("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT=%q: want a positive number of seconds, or -1 for none", v)
		case n == -1:
			c.Timeout = 0
		default:
			c.Timeout = time.Duration(n) * time.Second
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("gcs store: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// chunkSize reads a chunk-size variable: a positive multiple of 256 KiB
// (MLflow raises otherwise), or def when unset.
func chunkSize(getenv func(string) string, name string, def int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n%ChunkAlign != 0 || n > 1<<30 {
		return 0, fmt.Errorf("%s=%q: want a positive multiple of 256 KiB (262144 bytes), at most 1 GiB", name, v)
	}
	return n, nil
}

// emulatorURL turns STORAGE_EMULATOR_HOST (host:port, or a URL with a
// scheme as Google's libraries also accept) into the scheme and host.
func emulatorURL(v string) (scheme, host string, err error) {
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return "", "", fmt.Errorf("want host:port or http(s)://host:port")
	}
	return u.Scheme, u.Host, nil
}

// getenv reads the process environment (a variable so tests need not
// touch it).
var getenv = os.Getenv
