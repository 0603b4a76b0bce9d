// Package hostiletest checks that a store refuses hostile keys before any
// backend call: drivers run Check against an instrumented store whose
// server has been stopped, so a key that reached the driver would fail
// with ErrUnavailable instead of ErrInvalidKey.
package hostiletest

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// RawPaths are the crafted artifact paths of test/e2e's hostile test, as a
// client sends them (percent-encoded up to twelve times).
var RawPaths = []string{
	"../sentinel.txt", "..", "a/..", "a/b/../../../sentinel.txt", "path/../to/file",
	"..%2Fsentinel.txt", "%2E%2E/sentinel.txt", "%2E%2E%2Fsentinel.txt", "%2E%2E%2F%2E%2E%2Fpath",
	"%2e%2e%2fsentinel.txt", "%2e%2E%2fsentinel.txt", ".%2E/sentinel.txt", "%252E%252E%252Fsentinel.txt",
	"..%252Fsentinel.txt", "%25252E%25252E%25252Fsentinel.txt", "%25252e%25252E%25252fsentinel.txt",
	encodeN("../sentinel.txt", 5), encodeN("../sentinel.txt", 12),
	"..%5Csentinel.txt", "..%255Csentinel.txt", `..\sentinel.txt`, "a%5Cb.txt",
	"/srv/abs", "%2Fsrv%2Fabs", "%252Fsrv%252Fabs",
	"/etc/passwd", "%2Fetc%2Fpasswd", "/etc/passwd%00.jpg", "%2Ffile:%2F%2Fetc%2Fpasswd",
	"C:%5CWindows%5Cwin.ini", "C:/Windows/win.ini", "c%3A%2FWindows%2Fwin.ini",
	"%5C%5Cserver%5Cshare%5Cx", `\\server\share\x`, "//server/share/x",
	"a%00.txt", "a%2500.txt", "..%00/sentinel.txt",
	"a%23b.txt", "a%2523b.txt", "a%3Fb.txt", "a%253Fpath%3D..%2Fsentinel.txt",
	"file:///srv/abs", "file%3A%2F%2F%2Fsrv%2Fabs", "file:../sentinel.txt",
	"file://localhost/etc/passwd", "FILE:///srv/abs",
	strings.Repeat("k", stores.MaxKeyLength+1),
}

func encodeN(s string, n int) string {
	for range n {
		s = url.PathEscape(s)
	}
	return s
}

// decode percent-decodes s until it stops changing (or cannot decode).
func decode(s string) string {
	for range 20 {
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			return s
		}
		s = d
	}
	return s
}

// Check sends every hostile path to every method of s (an instrumented
// store whose backend is down): the proxy's SafePath must refuse the raw
// form, and s must refuse the decoded form with ErrInvalidKey without
// reading a Put body.
func Check(t *testing.T, s stores.Store) {
	t.Helper()
	ctx := context.Background()
	for _, raw := range RawPaths {
		if _, err := stores.SafePath(raw); !errors.Is(err, stores.ErrInvalidKey) {
			t.Errorf("SafePath(%q) = %v; want ErrInvalidKey", raw, err)
		}
		key := decode(raw)
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, stores.ErrInvalidKey) {
				t.Errorf("%s(%.60q) = %v; want ErrInvalidKey before any backend call", op, key, err)
			}
		}
		_, err := s.Stat(ctx, key)
		check("Stat", err)
		rc, _, err := s.Open(ctx, key, 0, -1)
		if rc != nil {
			rc.Close()
		}
		check("Open", err)
		_, err = s.List(ctx, key, stores.ListPage{})
		check("List", err)
		check("Delete", s.Delete(ctx, key))
		body := &countingReader{r: strings.NewReader("data")}
		check("Put", s.Put(ctx, key, body, 4))
		if body.n != 0 {
			t.Errorf("Put(%q) read the body before refusing the key", key)
		}
	}
}

type countingReader struct {
	r *strings.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) { c.n++; return c.r.Read(p) }
