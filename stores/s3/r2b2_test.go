package s3

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ferryml/ferry/stores"
)

func TestEndpointURIs(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		return map[string]string{"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "MLFLOW_S3_ENDPOINT_URL": "http://ignored:9000"}[k]
	}
	ok := []struct {
		uri, bucket, prefix, endpoint, style, region string
	}{
		{"r2://my-bucket@0123abcd.r2.cloudflarestorage.com/mlflow/art", "my-bucket", "mlflow/art", "https://0123abcd.r2.cloudflarestorage.com", "virtual", ""},
		{"b2://my-bucket@s3.us-west-004.backblazeb2.com/mlflow", "my-bucket", "mlflow", "https://s3.us-west-004.backblazeb2.com", "path", "us-west-004"},
		{"b2://b@s3.eu-central-003.backblazeb2.com", "b", "", "https://s3.eu-central-003.backblazeb2.com", "path", "eu-central-003"},
	}
	for _, tt := range ok {
		u, _ := url.Parse(tt.uri)
		c, err := ConfigFromEndpointURI(u, env)
		if err != nil {
			t.Errorf("%s: %v", tt.uri, err)
			continue
		}
		if c.Bucket != tt.bucket || c.Prefix != tt.prefix || c.Endpoint != tt.endpoint || c.AddressingStyle != tt.style || c.Region != tt.region || c.AccessKey != "ak" {
			t.Errorf("%s: %+v", tt.uri, c)
		}
	}
	for _, bad := range []string{
		"r2://0123abcd.r2.cloudflarestorage.com/x", // no bucket
		"r2://b:secret@0123abcd.r2.cloudflarestorage.com/x",
		"b2://b@backblazeb2.com/x", // no region in the host
		"b2://b@s3.us-west-004.example.com/x",
		"b2://b@s3.us-west-004.backblazeb2.com:8443/x",
	} {
		u, _ := url.Parse(bad)
		if _, err := ConfigFromEndpointURI(u, env); err == nil {
			t.Errorf("%s accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", bad, err)
		}
	}
}

// TestEndpointStoresHaveNoPresign: as upstream's R2 and B2 repositories,
// the stores offer neither presigning nor multipart uploads (the proxy
// answers 501). Building them sends no request.
func TestEndpointStoresHaveNoPresign(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "ak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sk")
	t.Setenv("AWS_DEFAULT_REGION", "auto")
	for _, uri := range []string{"r2://bkt@0123abcd.r2.cloudflarestorage.com/p", "b2://bkt@s3.us-west-004.backblazeb2.com/p"} {
		s, err := stores.Open(t.Context(), uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		if _, ok := stores.As[stores.Presigner](s); ok {
			t.Errorf("%s offers presigned URLs", uri)
		}
		if _, ok := stores.As[stores.Multiparter](s); ok {
			t.Errorf("%s offers multipart uploads", uri)
		}
		if d, ok := s.(stores.Driver); !ok || d.DriverName() != uri[:2] {
			t.Errorf("%s: driver name %v", uri, d)
		}
		s.(*EndpointStore).Close()
	}
}
