package stores

import "testing"

func TestListBound(t *testing.T) {
	t.Parallel()
	tests := []struct{ full, prefix, want string }{
		{"p/b", "p/", "p/b/"},
		{"p/a.txt", "p/", "p/a/"}, // a directory "a" (listed as "a/") sorts before "a.txt"
		{"p/a-b-c", "p/", "p/a/"},
		{"p/zz", "p/", "p/zz/"},
		{"a.b", "", "a/"},
	}
	for _, tt := range tests {
		if got := ListBound(tt.full, tt.prefix); got != tt.want {
			t.Errorf("ListBound(%q, %q) = %q, want %q", tt.full, tt.prefix, got, tt.want)
		}
	}
}
