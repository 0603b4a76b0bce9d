package stores

import (
	"context"
	"strings"
	"testing"
)

// secret is the password every case hides; no output may contain it.
const secret = "s3cr3tPW"

func TestRedactURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ftp://alice:" + secret + "@host:21/srv/a", "ftp://alice:***@host:21/srv/a"},
		{"sftp://alice:" + secret + "@host/srv", "sftp://alice:***@host/srv"},
		{"hdfs://alice:" + secret + "@nn:8020/p", "hdfs://alice:***@nn:8020/p"},
		{"postgresql://u:" + secret + "@db:5432/mlflow", "postgresql://u:***@db:5432/mlflow"},
		{"mysql://u:" + secret + "@db/mlflow?x=1", "mysql://u:***@db/mlflow?x=1"},
		{"s3://u:" + secret + "@bucket/prefix", "s3://u:***@bucket/prefix"},
		// An '@' in the password, escaped or not.
		{"ftp://alice:p@" + secret + "@host/x", "ftp://alice:***@host/x"},
		{"ftp://alice:p%40" + secret + "@host/x", "ftp://alice:***@host/x"},
		// A '/' in the password ends the authority early; still hidden.
		{"ftp://alice:a/" + secret + "@host/x", "ftp://alice:***@host/x"},
		{"ftp://alice:" + secret + "@host", "ftp://alice:***@host"},
		{"ftp://:" + secret + "@host/", "ftp://:***@host/"},
		// Nothing to hide.
		{"sftp://alice@host:2222/srv", "sftp://alice@host:2222/srv"},
		{"ftp://host:21/srv/a@b", "ftp://host:21/srv/a@b"},
		{"s3://bucket/path/with@at:colon", "s3://bucket/path/with@at:colon"},
		{"./mlartifacts", "./mlartifacts"},
		{"/srv/a:b@c", "/srv/a:b@c"},
		{"sqlite:///mlflow.db", "sqlite:///mlflow.db"},
	}
	for _, tt := range tests {
		if got := RedactURI(tt.in); got != tt.want {
			t.Errorf("RedactURI(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestOpenErrorsHidePasswords: the errors of Open itself (unknown scheme,
// unparsable URI) name the URI redacted. Drivers' own connection errors
// are tested in their packages.
func TestOpenErrorsHidePasswords(t *testing.T) {
	for _, uri := range []string{
		"ftpx://alice:" + secret + "@host/srv",
		"hdfsx://alice:" + secret + "@nn:8020/p",
		"sftpx://alice:" + secret + "@host:22/p",
		"unknown://alice:" + secret + "@host/p",
		"ftp://alice:" + secret + "%zz@host/p", // bad escape: url.Parse fails
		"ftp://alice:" + secret + "@host:notaport/p",
		"file://alice:" + secret + "@remote/p",
	} {
		_, err := Open(context.Background(), uri)
		if err == nil {
			t.Errorf("Open(%q) succeeded", uri)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open error repeats the password: %v", err)
		}
		if !strings.Contains(err.Error(), "***") {
			t.Errorf("Open error does not name the redacted URI: %v", err)
		}
	}
}
