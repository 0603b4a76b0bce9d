package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestUploadDownload covers PUT and GET on both API mounts: 200 {} for
// uploads (overwrite, empty body), exact Content-Type per spec §6,
// Content-Disposition with the raw basename, nosniff, Content-Length.
func TestUploadDownload(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	cases := []struct {
		path, ct, filename string
	}{
		{"run/a.txt", "text/plain", "a.txt"},
		{"run/model/MLmodel", "text/plain", "MLmodel"},
		{"run/b.pkl", "application/octet-stream", "b.pkl"},
		{"run/c.png", "image/png", "c.png"},
		{"run/d.pdf", "application/pdf", "d.pdf"},
		{"run/deep/er/m.tar.gz", "application/x-tar", "m.tar.gz"},
		{"run/mlproject", "text/plain", "mlproject"},
		{"run/conf.yaml", "text/plain", "conf.yaml"},
		{"run/data.parquet", "application/octet-stream", "data.parquet"},
		{"run/images/dog+step+20+timestamp+100.png", "image/png", "dog+step+20+timestamp+100.png"},
	}
	for _, api := range apis {
		for _, c := range cases {
			t.Run(api+"/"+c.path, func(t *testing.T) {
				data := []byte(fmt.Sprintf("content of %s via %s\n", c.path, api))
				r := put(t, f.Art(api, "/artifacts/"+c.path), data, "Content-Type", c.ct)
				expectBody(t, "PUT", r, 200, jsonCT, emptyJSON)

				r = get(t, f.Art(api, "/artifacts/"+c.path))
				if r.Status != 200 || !bytes.Equal(r.Body, data) {
					t.Fatalf("GET: %s, want 200 with the uploaded bytes", r)
				}
				want := map[string]string{
					"Content-Type":           c.ct,
					"Content-Disposition":    "attachment; filename=" + c.filename,
					"X-Content-Type-Options": "nosniff",
					"Content-Length":         strconv.Itoa(len(data)),
				}
				for k, v := range want {
					if got := r.Header.Get(k); got != v {
						t.Errorf("GET %s: header %s = %q, want %q", c.path, k, got, v)
					}
				}
				onDisk, err := os.ReadFile(filepath.Join(f.Dest, filepath.FromSlash(c.path)))
				if err != nil || !bytes.Equal(onDisk, data) {
					t.Errorf("object on disk: %q, %v; want the uploaded bytes", onDisk, err)
				}
			})
		}
	}

	t.Run("overwrite", func(t *testing.T) {
		u := f.Art("/api", "/artifacts/run/over.bin")
		mustPut(t, u, bytes.Repeat([]byte("long old content "), 1000))
		mustPut(t, u, []byte("new"))
		if r := get(t, u); r.Status != 200 || string(r.Body) != "new" {
			t.Fatalf("after overwrite: %s, want 200 \"new\"", r)
		}
	})

	t.Run("empty body", func(t *testing.T) {
		u := f.Art("/api", "/artifacts/run/empty.txt")
		expectBody(t, "PUT empty", put(t, u, nil), 200, jsonCT, emptyJSON)
		r := get(t, u)
		if r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-Length") != "0" {
			t.Fatalf("GET empty object: %s (Content-Length %q), want 200 with no bytes", r, r.Header.Get("Content-Length"))
		}
		if fi, err := os.Stat(filepath.Join(f.Dest, "run", "empty.txt")); err != nil || fi.Size() != 0 {
			t.Fatalf("empty object on disk: %v %v", fi, err)
		}
	})

	t.Run("percent sequences in names", func(t *testing.T) {
		// Spec §3/§4.1: "%XX" sequences are decoded, control characters
		// re-escaped, so upstream's dog%step%100%timestamp%100.png survives.
		name := "dog%step%100%timestamp%100.png"
		u := f.Art("/api", "/artifacts/run/images/"+strings.ReplaceAll(name, "%", "%25"))
		mustPut(t, u, []byte("png"))
		r := get(t, u)
		if r.Status != 200 || string(r.Body) != "png" {
			t.Fatalf("GET: %s", r)
		}
		if got := r.Header.Get("Content-Disposition"); got != "attachment; filename="+name {
			t.Errorf("Content-Disposition %q, want raw basename %q", got, name)
		}
		if _, err := os.Stat(filepath.Join(f.Dest, "run", "images", name)); err != nil {
			t.Errorf("object not stored under its decoded name: %v", err)
		}
	})

	t.Run("accept header ignored", func(t *testing.T) {
		u := f.Art("/api", "/artifacts/run/c.png")
		r := get(t, u, "Accept", "application/json")
		if r.Status != 200 || r.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET with Accept: %d %q, want 200 image/png", r.Status, r.Header.Get("Content-Type"))
		}
	})
}

// TestDownloadErrorsAndHead covers a missing object (404
// RESOURCE_DOES_NOT_EXIST, no attachment header), HEAD on objects and on a
// missing object, and the route without a path.
func TestDownloadErrorsAndHead(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	data := randomBytes(12345)
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			mustPut(t, f.Art(api, "/artifacts/h/x.bin"), data)

			r := get(t, f.Art(api, "/artifacts/h/nope.txt"))
			if r.Status != 404 || r.Header.Get("Content-Type") != jsonCT {
				t.Fatalf("missing object: %s (%s), want 404 JSON", r, r.Header.Get("Content-Type"))
			}
			e := decodeErr(t, r)
			if e.ErrorCode != "RESOURCE_DOES_NOT_EXIST" || !strings.Contains(e.Message, "No such artifact") || !strings.Contains(e.Message, "h/nope.txt") {
				t.Errorf("missing object body: %+v", e)
			}
			if cd := r.Header.Get("Content-Disposition"); cd != "" {
				t.Errorf("error response carries Content-Disposition %q", cd)
			}

			h := do(t, http.MethodHead, f.Art(api, "/artifacts/h/x.bin"), nil)
			if h.Status != 200 || len(h.Body) != 0 {
				t.Fatalf("HEAD: %s, want 200 without body", h)
			}
			for k, v := range map[string]string{
				"Content-Length":      strconv.Itoa(len(data)),
				"Content-Type":        "application/octet-stream",
				"Content-Disposition": "attachment; filename=x.bin",
			} {
				if got := h.Header.Get(k); got != v {
					t.Errorf("HEAD header %s = %q, want %q", k, got, v)
				}
			}
			if h := do(t, http.MethodHead, f.Art(api, "/artifacts/h/nope.txt"), nil); h.Status != 404 {
				t.Errorf("HEAD missing: %s, want 404", h)
			}
			// The route needs a path: ".../artifacts/" matches no download rule.
			if r := get(t, f.Art(api, "/artifacts/")); r.Status != 404 {
				t.Errorf("GET .../artifacts/: %s, want 404", r)
			}
		})
	}
}

// TestRanges covers single ranges, suffix and open-ended ranges,
// unsatisfiable ranges (416 with Content-Range bytes */size), and ranges
// that must be ignored (several ranges, other units, garbage).
func TestRanges(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	data := randomBytes(1000)
	u := f.Art("/api", "/artifacts/r/blob.bin")
	mustPut(t, u, data)
	mustPut(t, f.Art("/api", "/artifacts/r/zero.bin"), nil)

	cases := []struct {
		name, rng    string
		status       int
		from, to     int // inclusive, for 206
		contentRange string
	}{
		{"first ten", "bytes=0-9", 206, 0, 9, "bytes 0-9/1000"},
		{"middle", "bytes=100-199", 206, 100, 199, "bytes 100-199/1000"},
		{"one byte", "bytes=999-999", 206, 999, 999, "bytes 999-999/1000"},
		{"end past size", "bytes=990-5000", 206, 990, 999, "bytes 990-999/1000"},
		{"open ended", "bytes=500-", 206, 500, 999, "bytes 500-999/1000"},
		{"suffix", "bytes=-100", 206, 900, 999, "bytes 900-999/1000"},
		{"suffix larger than object", "bytes=-5000", 206, 0, 999, "bytes 0-999/1000"},
		{"start at size", "bytes=1000-", 416, 0, 0, "bytes */1000"},
		{"start past size", "bytes=5000-6000", 416, 0, 0, "bytes */1000"},
		{"empty suffix", "bytes=-0", 416, 0, 0, "bytes */1000"},
		{"multi range ignored", "bytes=0-9,20-29", 200, 0, 999, ""},
		{"other unit ignored", "items=0-9", 200, 0, 999, ""},
		{"garbage ignored", "bytes=abc", 200, 0, 999, ""},
		{"reversed ignored", "bytes=9-3", 200, 0, 999, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, u, "Range", c.rng)
			if r.Status != c.status {
				t.Fatalf("Range %q: %s, want %d", c.rng, r, c.status)
			}
			if got := r.Header.Get("Content-Range"); got != c.contentRange {
				t.Errorf("Content-Range %q, want %q", got, c.contentRange)
			}
			switch c.status {
			case 206, 200:
				want := data[c.from : c.to+1]
				if !bytes.Equal(r.Body, want) {
					t.Errorf("body: %d bytes, want bytes %d-%d (%d)", len(r.Body), c.from, c.to, len(want))
				}
				if r.Header.Get("Content-Length") != strconv.Itoa(len(want)) {
					t.Errorf("Content-Length %q, want %d", r.Header.Get("Content-Length"), len(want))
				}
				if r.Header.Get("Content-Type") != "application/octet-stream" {
					t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
				}
			case 416:
				if bytes.Contains(r.Body, data[:16]) {
					t.Errorf("416 carries object bytes")
				}
				if cd := r.Header.Get("Content-Disposition"); cd != "" {
					t.Errorf("416 error body presented as the file: Content-Disposition %q", cd)
				}
			}
		})
	}

	t.Run("head with range", func(t *testing.T) {
		r := do(t, http.MethodHead, u, nil, "Range", "bytes=10-19")
		if r.Status != 206 || r.Header.Get("Content-Length") != "10" || r.Header.Get("Content-Range") != "bytes 10-19/1000" || len(r.Body) != 0 {
			t.Fatalf("HEAD Range: %s %v", r, r.Header)
		}
	})
	t.Run("range on empty object", func(t *testing.T) {
		r := get(t, f.Art("/api", "/artifacts/r/zero.bin"), "Range", "bytes=0-")
		if r.Status != 416 || r.Header.Get("Content-Range") != "bytes */0" {
			t.Fatalf("Range on zero-byte object: %s (Content-Range %q), want 416 bytes */0", r, r.Header.Get("Content-Range"))
		}
	})
	t.Run("range on missing object", func(t *testing.T) {
		if r := get(t, f.Art("/api", "/artifacts/r/none.bin"), "Range", "bytes=0-1"); r.Status != 404 {
			t.Fatalf("Range on missing object: %s, want 404", r)
		}
	})
}

// TestList covers the list route: basenames only, is_dir always present,
// file_size as a JSON number omitted for directories and empty files,
// sorting, {} for empty, missing and file paths, hidden temporary uploads,
// and listings longer than one store page.
func TestList(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	mustPut(t, f.Art("/api", "/artifacts/0/run/artifacts/b.txt"), []byte("12345"))
	mustPut(t, f.Art("/api", "/artifacts/0/run/artifacts/A.bin"), []byte("xyz"))
	mustPut(t, f.Art("/api", "/artifacts/0/run/artifacts/empty.txt"), nil)
	mustPut(t, f.Art("/api", "/artifacts/0/run/artifacts/model/MLmodel"), []byte("flavors: {}\n"))
	mustPut(t, f.Art("/api", "/artifacts/0/run/artifacts/gone/x"), []byte("x"))
	expectBody(t, "DELETE", do(t, http.MethodDelete, f.Art("/api", "/artifacts/0/run/artifacts/gone/x"), nil), 200, jsonCT, emptyJSON)
	// A crash can leave an in-progress upload behind; listings hide it.
	if err := os.WriteFile(filepath.Join(f.Dest, "0", "run", "artifacts", ".ferry-upload-deadbeef"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	want := `{"files":[{"path":"A.bin","is_dir":false,"file_size":3},{"path":"b.txt","is_dir":false,"file_size":5},{"path":"empty.txt","is_dir":false},{"path":"gone","is_dir":true},{"path":"model","is_dir":true}]}`
	cases := []struct{ name, query, want string }{
		{"run root", "?path=0/run/artifacts", want},
		{"encoded path", "?path=0%2Frun%2Fartifacts", want},
		{"trailing slash", "?path=0/run/artifacts/", want},
		{"subdir", "?path=0/run/artifacts/model", `{"files":[{"path":"MLmodel","is_dir":false,"file_size":12}]}`},
		{"destination root", "", `{"files":[{"path":"0","is_dir":true}]}`},
		{"empty path param", "?path=", `{"files":[{"path":"0","is_dir":true}]}`},
		{"empty directory", "?path=0/run/artifacts/gone", emptyJSON},
		{"missing directory", "?path=0/nope", emptyJSON},
		{"path names a file", "?path=0/run/artifacts/b.txt", emptyJSON},
	}
	for _, api := range apis {
		for _, c := range cases {
			t.Run(api+"/"+c.name, func(t *testing.T) {
				expectBody(t, "list "+c.query, get(t, f.Art(api, "/artifacts"+c.query)), 200, jsonCT, c.want)
			})
		}
	}

	t.Run("more than one page", func(t *testing.T) {
		dir := filepath.Join(f.Dest, "many")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := 0; i < 2500; i++ {
			n := fmt.Sprintf("f%05d.txt", (i*7919)%2500)
			names = append(names, n)
			if err := os.WriteFile(filepath.Join(dir, n), []byte("ab"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString(`{"files":[`)
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"path":%q,"is_dir":false,"file_size":2}`, n)
		}
		b.WriteString(`]}`)
		r := get(t, f.Art("/api", "/artifacts?path=many"))
		if r.Status != 200 || string(r.Body) != b.String() {
			t.Fatalf("listing of 2500 files: %d, %d bytes; want all 2500 sorted (%d bytes)", r.Status, len(r.Body), b.Len())
		}
	})
}

// TestDelete covers recursive deletes, deleting a missing path (200 {})
// and deleting a single object.
func TestDelete(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			base := "/artifacts/del" + strings.ReplaceAll(api, "/", "_")
			for _, p := range []string{"/a.txt", "/sub/b.txt", "/sub/deeper/c.txt", "/keep/k.txt"} {
				mustPut(t, f.Art(api, base+p), []byte(p))
			}
			expectBody(t, "DELETE file", do(t, http.MethodDelete, f.Art(api, base+"/a.txt"), nil), 200, jsonCT, emptyJSON)
			if r := get(t, f.Art(api, base+"/a.txt")); r.Status != 404 {
				t.Errorf("deleted file still served: %s", r)
			}
			expectBody(t, "DELETE dir", do(t, http.MethodDelete, f.Art(api, base+"/sub"), nil), 200, jsonCT, emptyJSON)
			if _, err := os.Stat(filepath.Join(f.Dest, filepath.FromSlash(strings.TrimPrefix(base, "/artifacts/")), "sub")); !os.IsNotExist(err) {
				t.Errorf("directory still on disk after recursive delete: %v", err)
			}
			if r := get(t, f.Art(api, base+"/sub/deeper/c.txt")); r.Status != 404 {
				t.Errorf("file under deleted dir still served: %s", r)
			}
			if r := get(t, f.Art(api, base+"/keep/k.txt")); r.Status != 200 || string(r.Body) != "/keep/k.txt" {
				t.Errorf("sibling lost: %s", r)
			}
			expectBody(t, "list after delete", get(t, f.Art(api, "/artifacts?path="+strings.TrimPrefix(base, "/artifacts/"))), 200, jsonCT,
				`{"files":[{"path":"keep","is_dir":true}]}`)
			expectBody(t, "DELETE missing", do(t, http.MethodDelete, f.Art(api, base+"/never/was"), nil), 200, jsonCT, emptyJSON)
			expectBody(t, "DELETE with body", do(t, http.MethodDelete, f.Art(api, base+"/keep"), strings.NewReader(`{"ignored":1}`)), 200, jsonCT, emptyJSON)
		})
	}
}

// TestMultipartAndPresignNotSupported covers mpu/create|complete|abort and
// presigned/ on the local store: the Content-Type checks and the required
// fields come first (multipart.md §3), then upstream's exact 501 bodies.
func TestMultipartAndPresignNotSupported(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	mustPut(t, f.Art("/api", "/artifacts/0/r/artifacts/w/big.bin"), []byte("x"))
	const (
		noCT   = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Bad Request. Content-Type header is missing.","sqlstate":"KAM00","error_class":"INVALID_PARAMETER_VALUE"}`
		badCT  = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Bad Request. Content-Type must be one of ['application/json'].","sqlstate":"KAM00","error_class":"INVALID_PARAMETER_VALUE"}`
		noPath = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Missing value for required parameter 'path'. See the API docs for more information about request parameters.","sqlstate":"KAM00","error_class":"INVALID_PARAMETER_VALUE"}`
		noPart = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Missing value for required parameter 'parts'. See the API docs for more information about request parameters.","sqlstate":"KAM00","error_class":"INVALID_PARAMETER_VALUE"}`
	)
	type step struct {
		name, ct, body string
		status         int
		want           string
	}
	ops := map[string][]step{
		"create": {
			{"no content type", "", `{"path":"/data/big.bin","num_parts":3}`, 400, noCT},
			{"text content type", "text/plain", `{"path":"/data/big.bin","num_parts":3}`, 400, badCT},
			{"form content type", "application/x-www-form-urlencoded", `path=x`, 400, badCT},
			{"no body", jsonCT, ``, 400, noPath},
			{"empty path", jsonCT, `{"path":"","num_parts":3}`, 400, noPath},
			{"null path", jsonCT, `{"path":null}`, 400, noPath},
			{"ok", jsonCT, `{"path":"/data/big.bin","num_parts":60}`, 501, mpuNotSupported},
			{"numeric string parts", jsonCT, `{"path":"/data/big.bin","num_parts":"60"}`, 501, mpuNotSupported},
			{"charset parameter", "application/json; charset=utf-8", `{"path":"C:\\data\\big.bin","num_parts":1}`, 501, mpuNotSupported},
			{"json string holding json", jsonCT, `"{\"path\": \"big.bin\"}"`, 501, mpuNotSupported},
		},
		"complete": {
			{"no content type", "", `{"path":"big.bin","upload_id":"u","parts":[]}`, 400, noCT},
			{"text content type", "text/plain", `{"path":"big.bin","upload_id":"u","parts":[]}`, 400, badCT},
			{"no path", jsonCT, `{"upload_id":"u","parts":[]}`, 400, noPath},
			{"no parts", jsonCT, `{"path":"big.bin","upload_id":"u"}`, 400, noPart},
			{"null parts", jsonCT, `{"path":"big.bin","upload_id":"u","parts":null}`, 400, noPart},
			{"ok", jsonCT, `{"path":"big.bin","upload_id":"u","parts":[{"part_number":1,"etag":"\"e\"","url":"http://x"}]}`, 501, mpuNotSupported},
			{"no upload id", jsonCT, `{"path":"big.bin","parts":[]}`, 501, mpuNotSupported},
		},
		"abort": {
			{"no content type", "", `{"path":"big.bin","upload_id":"u"}`, 400, noCT},
			{"text content type", "text/plain", `{"path":"big.bin","upload_id":"u"}`, 400, badCT},
			{"no path", jsonCT, `{"upload_id":"u"}`, 400, noPath},
			{"ok", jsonCT, `{"path":"big.bin","upload_id":"u"}`, 501, mpuNotSupported},
		},
	}
	for _, api := range apis {
		for op, steps := range ops {
			for _, s := range steps {
				t.Run(api+"/"+op+"/"+s.name, func(t *testing.T) {
					var hdr []string
					if s.ct != "" {
						hdr = []string{"Content-Type", s.ct}
					}
					r := do(t, http.MethodPost, f.Art(api, "/mpu/"+op+"/0/r/artifacts/w"), strings.NewReader(s.body), hdr...)
					expectBody(t, "POST mpu/"+op, r, s.status, jsonCT, s.want)
				})
			}
		}
		t.Run(api+"/mpu without path", func(t *testing.T) {
			for _, op := range []string{"create", "complete", "abort"} {
				r := do(t, http.MethodPost, f.Art(api, "/mpu/"+op+"/"), strings.NewReader(`{"path":"a"}`), "Content-Type", jsonCT)
				if r.Status != 404 {
					t.Errorf("mpu/%s/ without a directory: %s, want 404", op, r)
				}
			}
		})
		t.Run(api+"/presigned", func(t *testing.T) {
			expectBody(t, "presigned existing", get(t, f.Art(api, "/presigned/0/r/artifacts/w/big.bin")), 501, jsonCT, presignNotSupport)
			expectBody(t, "presigned missing", get(t, f.Art(api, "/presigned/0/r/artifacts/w/none.bin")), 501, jsonCT, presignNotSupport)
		})
	}
	// Nothing was created by the refused calls.
	expectBody(t, "list", get(t, f.Art("/api", "/artifacts?path=0/r/artifacts/w")), 200, jsonCT,
		`{"files":[{"path":"big.bin","is_dir":false,"file_size":1}]}`)
}
