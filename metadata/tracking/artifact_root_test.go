package tracking

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
)

// TestAppendURIPath pins appendURIPath to upstream's append_to_uri_path
// (the want column is what MLflow 3.11's function answers, computed with
// Python's urllib) for every scheme an artifact root may have: the run
// path goes into the URI's path, before a query or fragment, so that two
// runs of an experiment whose root carries a query get distinct roots.
func TestAppendURIPath(t *testing.T) {
	tests := []struct{ root, want string }{
		// local paths
		{"/srv/mlruns", "/srv/mlruns/1/artifacts"},
		{"/srv/mlruns/", "/srv/mlruns/1/artifacts"},
		{"/srv/x?y=1", "/srv/x?y=1/1/artifacts"}, // no scheme: '?' is part of the name
		{"C:/mlruns", "C:/mlruns/1/artifacts"},   // a drive letter, not a scheme (stores.ParseURI agrees)
		// file:
		{"file:///srv/x", "file:///srv/x/1/artifacts"},
		{"file:///srv/x/", "file:///srv/x/1/artifacts"},
		{"file:/srv/x", "file:///srv/x/1/artifacts"},
		{"file://localhost/srv/x", "file://localhost/srv/x/1/artifacts"},
		// s3
		{"s3://bucket", "s3://bucket/1/artifacts"},
		{"s3://bucket/prefix", "s3://bucket/prefix/1/artifacts"},
		{"s3://bucket/prefix?x=", "s3://bucket/prefix/1/artifacts?x="},
		{"s3://bucket/prefix/?x=#f", "s3://bucket/prefix/1/artifacts?x=#f"},
		{"s3://b?x", "s3://b/1/artifacts?x"},
		{"s3://b#f", "s3://b/1/artifacts#f"},
		{"s3://b/p//", "s3://b/p//1/artifacts"},
		{"S3://Bucket/p", "s3://Bucket/p/1/artifacts"},
		{"s3:///x", "s3:/x/1/artifacts"},
		// gs, wasbs
		{"gs://b/p?a=1&b=2", "gs://b/p/1/artifacts?a=1&b=2"},
		{"wasbs://c@acct.blob.core.windows.net/p?sv=1", "wasbs://c@acct.blob.core.windows.net/p/1/artifacts?sv=1"},
		// mlflow-artifacts: and the proxy's http form
		{"mlflow-artifacts:/", "mlflow-artifacts:/1/artifacts"},
		{"mlflow-artifacts:/?x=", "mlflow-artifacts:/1/artifacts?x="},
		{"mlflow-artifacts:?x=", "mlflow-artifacts:1/artifacts?x="},
		{"mlflow-artifacts:/exp", "mlflow-artifacts:/exp/1/artifacts"},
		{"mlflow-artifacts:exp", "mlflow-artifacts:exp/1/artifacts"},
		{"mlflow-artifacts://host:5000/exp?x", "mlflow-artifacts://host:5000/exp/1/artifacts?x"},
		{"http://h:5000/api/2.0/mlflow-artifacts/artifacts/x?y", "http://h:5000/api/2.0/mlflow-artifacts/artifacts/x/1/artifacts?y"},
		// sftp, ftp, hdfs
		{"sftp://u@h:22/p?x", "sftp://u@h:22/p/1/artifacts?x"},
		{"sftp:/p", "sftp:///p/1/artifacts"},
		{"ftp://u:pw@h/p/", "ftp://u:pw@h/p/1/artifacts"},
		{"ftp://h/p?type=i", "ftp://h/p/1/artifacts?type=i"},
		{"hdfs://nn:8020/p?x=1", "hdfs://nn:8020/p/1/artifacts?x=1"},
		{"hdfs:/p", "hdfs:/p/1/artifacts"},
	}
	for _, tt := range tests {
		if got := appendURIPath(appendURIPath(tt.root, "1"), "artifacts"); got != tt.want {
			t.Errorf("appendURIPath(appendURIPath(%q, \"1\"), \"artifacts\") = %q, want %q", tt.root, got, tt.want)
		}
	}
	// A leading slash on the segment is dropped, as upstream's join does.
	if got := appendURIPath("s3://b/p?q", "/run"); got != "s3://b/p/run?q" {
		t.Errorf("leading slash: %q", got)
	}
}

// testOpener is APIConfig.OpenStore as the server wires it: a real
// stores.Opener, closed when the test ends.
func testOpener(t *testing.T) func(ctx context.Context, uri string) (stores.Store, func(), error) {
	o := stores.NewOpener(stores.NewMetrics(prometheus.NewRegistry()), quiet)
	t.Cleanup(func() { o.Close() })
	return func(ctx context.Context, uri string) (stores.Store, func(), error) {
		return o.Acquire(ctx, uri)
	}
}
