package serve

import "testing"

// TestAttachment pins werkzeug's send_file(as_attachment=True) header for
// the names artifacts have: tokens bare, others quoted and escaped,
// non-ASCII names with an ASCII fallback and an RFC 5987 filename*.
func TestAttachment(t *testing.T) {
	for name, want := range map[string]string{
		"MLmodel":                  "attachment; filename=MLmodel",
		"model.pkl":                "attachment; filename=model.pkl",
		"dog+step+20.png":          "attachment; filename=dog+step+20.png",
		"a%00.txt":                 "attachment; filename=a%00.txt",
		"my file.txt":              `attachment; filename="my file.txt"`,
		`a"b\c;d.txt`:              `attachment; filename="a\"b\\c;d.txt"`,
		"x,y=z":                    `attachment; filename="x,y=z"`,
		"ünï.txt":                  "attachment; filename=uni.txt; filename*=UTF-8''%C3%BCn%C3%AF.txt",
		"数据.csv":                   "attachment; filename=.csv; filename*=UTF-8''%E6%95%B0%E6%8D%AE.csv",
		"été 1.txt":                `attachment; filename="ete 1.txt"; filename*=UTF-8''%C3%A9t%C3%A9%201.txt`,
		"ﬁle.txt":                  "attachment; filename=file.txt; filename*=UTF-8''%EF%AC%81le.txt",
		"日本":                       `attachment; filename=""; filename*=UTF-8''%E6%97%A5%E6%9C%AC`,
		"a!#$&+-.^_`|~b\u00e9.txt": "attachment; filename=a!#$&+-.^_`|~be.txt; filename*=UTF-8''a!#$&+-.^_`|~b%C3%A9.txt",
	} {
		if got := Attachment(name); got != want {
			t.Errorf("Attachment(%q) = %q, want %q", name, got, want)
		}
	}
}
