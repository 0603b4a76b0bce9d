package s3

import (
	"testing"

	"github.com/ferryml/ferry/stores"
)

// TestScopeSharesTheClient: a scoped store serves the prefix below its
// parent's with the parent's client, buffers and janitor, and closing it
// leaves the parent working.
func TestScopeSharesTheClient(t *testing.T) {
	parent, err := New(t.Context(), Config{Bucket: "b", Prefix: "p", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	for dir, want := range map[string]string{"1/run/artifacts": "p/1/run/artifacts", "": "p", "a//b": "p/a//b"} {
		sc, err := parent.Scope(dir)
		if err != nil {
			t.Fatal(err)
		}
		s := sc.(*Store)
		if s.cfg.Prefix != want || s.cfg.Bucket != "b" {
			t.Errorf("Scope(%q): bucket %q prefix %q, want b %q", dir, s.cfg.Bucket, s.cfg.Prefix, want)
		}
		if s.client != parent.client || s.janitor != parent.janitor || s.buffers != parent.buffers {
			t.Errorf("Scope(%q) does not share the parent's client, janitor and buffers", dir)
		}
		if got := s.objectKey("x"); got != stores.JoinKey(want, "x") {
			t.Errorf("objectKey = %q", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	parent.janitor.mu.Lock()
	closed := parent.janitor.closed
	parent.janitor.mu.Unlock()
	if closed {
		t.Fatal("closing a scoped store closed the parent's janitor")
	}
	// With no prefix on the parent (the Opener's per-bucket store), the
	// scoped prefix is the URI path, as ConfigFromEnv takes it.
	root, err := New(t.Context(), Config{Bucket: "b", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	sc, _ := root.Scope("prefix/1/r/artifacts")
	if p := sc.(*Store).cfg.Prefix; p != "prefix/1/r/artifacts" {
		t.Errorf("prefix %q", p)
	}
}
