package s3

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/ferryml/ferry/stores"
)

// Limits and defaults, with the source of each number.
const (
	// MinPartSize is S3's smallest part (except the last): 5 MiB.
	MinPartSize = 5 << 20
	// MaxPartSize is S3's largest part: 5 GiB.
	MaxPartSize = 5 << 30
	// MaxSinglePut is S3's largest single PUT: 5 GiB.
	MaxSinglePut = 5 << 30
	// MaxParts is S3's limit on parts per upload.
	MaxParts = 10000
	// DefaultMultipartThreshold is MLflow's MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE default (500 MiB).
	DefaultMultipartThreshold = 500 << 20
	// DefaultPartSize is MLflow's MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE default (10 MiB).
	DefaultPartSize = 10 << 20
	// DefaultPartURLTTL is how long presigned UploadPart URLs live: boto3's
	// generate_presigned_url default (3600 s), which upstream uses.
	DefaultPartURLTTL = time.Hour
	// OwnerHeader is the header S3 checks against the bucket owner's
	// account id (ExpectedBucketOwner in the AWS SDKs).
	OwnerHeader = "x-amz-expected-bucket-owner"
)

// Config is everything the driver needs, as upstream MLflow users set it
// through the environment (see ConfigFromEnv).
type Config struct {
	// Bucket and Prefix come from s3://bucket/prefix; Prefix has no
	// leading or trailing slash.
	Bucket, Prefix string
	// Endpoint is MLFLOW_S3_ENDPOINT_URL ("" = AWS).
	Endpoint string
	// PresignEndpoint is FERRY_S3_PRESIGN_ENDPOINT_URL (Ferry's own, not
	// MLflow's): the endpoint presigned URLs name, for deployments where
	// Ferry reaches S3 by a name its clients cannot ("" = Endpoint). Ferry
	// sends no request to it (presign.go).
	PresignEndpoint string
	// IgnoreTLS is MLFLOW_S3_IGNORE_TLS: skip certificate verification.
	IgnoreTLS bool
	// CABundle is AWS_CA_BUNDLE: a PEM file of trusted roots.
	CABundle string
	// Region is AWS_REGION or AWS_DEFAULT_REGION; "" asks the bucket.
	Region string
	// AccessKey, SecretKey and SessionToken are AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Without an access key
	// the shared files (~/.aws/credentials and ~/.aws/config, profile
	// AWS_PROFILE) and then IAM roles (web identity, ECS, EC2) are tried.
	AccessKey, SecretKey, SessionToken string
	// Profile is AWS_PROFILE.
	Profile string
	// Anonymous is MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned.
	Anonymous bool
	// ExpectedBucketOwner is MLFLOW_S3_EXPECTED_BUCKET_OWNER: sent with
	// every request and signed into every presigned URL.
	ExpectedBucketOwner string
	// AddressingStyle is MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE: auto, path
	// or virtual.
	AddressingStyle string
	// Upload is MLFLOW_S3_UPLOAD_EXTRA_ARGS, parsed.
	Upload UploadArgs
	// Timeout is MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT: how long one S3
	// request may wait for the response headers (0 = no limit).
	Timeout time.Duration
	// MultipartThreshold is MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE: a
	// proxied PUT of at least this many bytes goes to S3 as a multipart
	// upload.
	MultipartThreshold int64
	// PartSize is MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE: the part size of
	// those uploads (raised to S3's minimum, and as needed to stay within
	// 10,000 parts).
	PartSize int64
	// PartURLTTL is the lifetime of presigned UploadPart URLs.
	PartURLTTL time.Duration

	// imdsEndpoint is the EC2 instance metadata endpoint the IAM
	// credentials provider asks ("" = its default, 169.254.169.254);
	// tests only.
	imdsEndpoint string
}

// ConfigFromEnv builds the configuration for the s3:// URI u from the
// environment variables upstream MLflow reads (getenv is os.Getenv in
// production). Invalid values are reported all at once.
func ConfigFromEnv(u *url.URL, getenv func(string) string) (Config, error) {
	c := Config{
		Bucket:              u.Host,
		Prefix:              strings.Trim(u.Path, "/"),
		Endpoint:            strings.TrimSpace(getenv("MLFLOW_S3_ENDPOINT_URL")),
		PresignEndpoint:     strings.TrimSpace(getenv("FERRY_S3_PRESIGN_ENDPOINT_URL")),
		CABundle:            getenv("AWS_CA_BUNDLE"),
		Region:              firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		AccessKey:           firstNonEmpty(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_ACCESS_KEY")),
		SecretKey:           firstNonEmpty(getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SECRET_KEY")),
		SessionToken:        getenv("AWS_SESSION_TOKEN"),
		Profile:             getenv("AWS_PROFILE"),
		AddressingStyle:     strings.ToLower(firstNonEmpty(getenv("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE"), "auto")),
		ExpectedBucketOwner: strings.TrimSpace(getenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER")),
		MultipartThreshold:  DefaultMultipartThreshold,
		PartSize:            DefaultPartSize,
		PartURLTTL:          DefaultPartURLTTL,
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	if c.Bucket == "" {
		bad("%q names no bucket (want s3://bucket/prefix)", u.String())
	}
	if u.User != nil {
		bad("s3 URIs carry no credentials; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if c.Endpoint != "" {
		if _, _, err := parseEndpoint(c.Endpoint, false); err != nil {
			bad("MLFLOW_S3_ENDPOINT_URL=%q: %v", c.Endpoint, err)
		}
	}
	if c.PresignEndpoint != "" {
		if _, _, err := parseEndpoint(c.PresignEndpoint, true); err != nil {
			bad("FERRY_S3_PRESIGN_ENDPOINT_URL=%q: %v", c.PresignEndpoint, err)
		}
	}
	var err error
	if c.IgnoreTLS, err = parseBool(getenv("MLFLOW_S3_IGNORE_TLS")); err != nil {
		bad("MLFLOW_S3_IGNORE_TLS: %v", err)
	}
	switch c.AddressingStyle {
	case "auto", "path", "virtual":
	default:
		bad("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE=%q: want auto, path or virtual", c.AddressingStyle)
	}
	switch v := strings.ToLower(getenv("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION")); v {
	case "", "s3v4":
	case "unsigned":
		c.Anonymous = true
	default:
		bad("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=%q: Ferry supports s3v4 and unsigned", v)
	}
	if raw := getenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS"); strings.TrimSpace(raw) != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			bad("MLFLOW_S3_UPLOAD_EXTRA_ARGS is not a JSON object: %v", err)
		} else if c.Upload, err = ParseUploadArgs(m); err != nil {
			bad("MLFLOW_S3_UPLOAD_EXTRA_ARGS: %v", err)
		}
	}
	if v := strings.TrimSpace(getenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT")); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			bad("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT=%q is not a whole number of seconds", v)
		case n > 0:
			c.Timeout = time.Duration(n) * time.Second
		}
	}
	if c.MultipartThreshold, err = stores.EnvSize(getenv, "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", DefaultMultipartThreshold); err != nil {
		bad("%v", err)
	}
	if c.PartSize, err = stores.EnvSize(getenv, "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", DefaultPartSize); err != nil {
		bad("%v", err)
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("s3 store: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// parseEndpoint checks an endpoint URL, http(s)://host[:port], and returns
// its host (with the port) and whether it is https. strict also refuses
// what the driver would silently drop: user info, a path, a query or a
// fragment (for FERRY_S3_PRESIGN_ENDPOINT_URL; MLFLOW_S3_ENDPOINT_URL keeps
// the lenient check it always had).
func parseEndpoint(v string, strict bool) (host string, secure bool, err error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, errors.New("want http(s)://host[:port]")
	}
	if strict && (u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "") {
		return "", false, errors.New("want http(s)://host[:port] without user, path, query or fragment")
	}
	if err := checkHost(url.URL{Scheme: u.Scheme, Host: u.Host}); err != nil {
		return "", false, err
	}
	return u.Host, u.Scheme == "https", nil
}

// checkHost refuses the hosts minio.New refuses, so that ConfigFromEnv
// reports them with every other problem instead of newStore failing on
// them alone later. It is minio-go's isValidEndpointURL (utils.go, not
// exported) for the URL minio.New builds from the host newStore passes
// (scheme://host, no path), made of the s3utils helpers it uses.
func checkHost(u url.URL) error {
	host := u.Hostname()
	switch {
	case !s3utils.IsValidIP(host) && !s3utils.IsValidDomain(host):
		return fmt.Errorf("host %q is neither an IP address nor a domain name", u.Host)
	case strings.Contains(host, ".s3.amazonaws.com") && !s3utils.IsAmazonEndpoint(u):
		return fmt.Errorf("host %q: the Amazon S3 endpoint is s3.amazonaws.com or s3.REGION.amazonaws.com", u.Host)
	case strings.Contains(host, ".googleapis.com") && !s3utils.IsGoogleEndpoint(u):
		return fmt.Errorf("host %q: the Google Cloud Storage endpoint is storage.googleapis.com", u.Host)
	case strings.Contains(host, "s3-outposts") && !s3utils.IsAmazonOutpostsEndpoint(u):
		return fmt.Errorf("host %q: an S3 on Outposts endpoint is PREFIX.s3-outposts.REGION.amazonaws.com", u.Host)
	}
	return nil
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

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// partSizeFor is the part size for a multipart upload of size bytes
// (size < 0: unknown): the configured size, at least S3's minimum, and
// large enough that a known size fits in MaxParts parts.
func partSizeFor(configured, size int64) int64 {
	p := max(configured, MinPartSize)
	if size > 0 {
		if need := (size + MaxParts - 1) / MaxParts; need > p {
			// Round up to a whole MiB, as tools usually do.
			p = (need + (1<<20 - 1)) &^ (1<<20 - 1)
		}
	}
	return min(p, MaxPartSize)
}
