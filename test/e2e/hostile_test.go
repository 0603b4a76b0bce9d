package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostilePath is a crafted artifact path, written exactly as it goes on
// the wire. "{abs}" stands for the sentinel's absolute path without its
// leading slash and "{absenc}" for the same with every '/' as %2F.
type hostilePath struct {
	name string
	raw  string
	// readOnly payloads name real system files: they are only sent on
	// routes that cannot write.
	readOnly bool
}

// encodeN percent-encodes s n times (every byte the first time).
func encodeN(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	s = b.String()
	for i := 1; i < n; i++ {
		s = strings.ReplaceAll(s, "%", "%25")
	}
	return s
}

var hostilePaths = []hostilePath{
	{name: "dotdot", raw: "../sentinel.txt"},
	{name: "dotdot alone", raw: ".."},
	{name: "dotdot last", raw: "a/.."},
	{name: "dotdot deep", raw: "a/b/../../../sentinel.txt"},
	{name: "dotdot upstream example", raw: "path/../to/file"},
	{name: "encoded slash", raw: "..%2Fsentinel.txt"},
	{name: "encoded dots", raw: "%2E%2E/sentinel.txt"},
	{name: "encoded all", raw: "%2E%2E%2Fsentinel.txt"},
	{name: "encoded upstream example", raw: "%2E%2E%2F%2E%2E%2Fpath"},
	{name: "lower case", raw: "%2e%2e%2fsentinel.txt"},
	{name: "mixed case", raw: "%2e%2E%2fsentinel.txt"},
	{name: "half encoded", raw: ".%2E/sentinel.txt"},
	{name: "double encoded", raw: "%252E%252E%252Fsentinel.txt"},
	{name: "double encoded slash", raw: "..%252Fsentinel.txt"},
	{name: "triple encoded", raw: "%25252E%25252E%25252Fsentinel.txt"},
	{name: "triple encoded mixed case", raw: "%25252e%25252E%25252fsentinel.txt"},
	{name: "encoded five times", raw: encodeN("../sentinel.txt", 5)},
	{name: "encoded twelve times", raw: encodeN("../sentinel.txt", 12)},
	{name: "encoded backslash", raw: "..%5Csentinel.txt"},
	{name: "double encoded backslash", raw: "..%255Csentinel.txt"},
	{name: "raw backslash", raw: `..\sentinel.txt`},
	{name: "backslash in name", raw: "a%5Cb.txt"},
	{name: "absolute", raw: "/{abs}"},
	{name: "absolute encoded", raw: "%2F{absenc}"},
	{name: "absolute double encoded", raw: "%252F{absenc}"},
	{name: "etc passwd", raw: "/etc/passwd", readOnly: true},
	{name: "etc passwd encoded", raw: "%2Fetc%2Fpasswd", readOnly: true},
	{name: "etc passwd nul", raw: "/etc/passwd%00.jpg", readOnly: true},
	{name: "etc passwd file uri upstream example", raw: "%2Ffile:%2F%2Fetc%2Fpasswd", readOnly: true},
	{name: "windows drive backslash", raw: "C:%5CWindows%5Cwin.ini"},
	{name: "windows drive slash", raw: "C:/Windows/win.ini"},
	{name: "windows drive encoded", raw: "c%3A%2FWindows%2Fwin.ini"},
	{name: "unc encoded", raw: "%5C%5Cserver%5Cshare%5Cx"},
	{name: "unc raw", raw: `\\server\share\x`},
	{name: "unc slashes", raw: "//server/share/x"},
	{name: "nul", raw: "a%00.txt"},
	{name: "nul double encoded", raw: "a%2500.txt"},
	{name: "nul before dotdot", raw: "..%00/sentinel.txt"},
	{name: "fragment", raw: "a%23b.txt"},
	{name: "fragment double encoded", raw: "a%2523b.txt"},
	{name: "query", raw: "a%3Fb.txt"},
	{name: "query double encoded", raw: "a%253Fpath%3D..%2Fsentinel.txt"},
	{name: "file uri", raw: "file:///{abs}"},
	{name: "file uri encoded", raw: "file%3A%2F%2F%2F{absenc}"},
	{name: "file uri dotdot", raw: "file:../sentinel.txt"},
	{name: "file uri host", raw: "file://localhost/etc/passwd", readOnly: true},
	{name: "file uri upper case", raw: "FILE:///{abs}"},
}

// hostileRoute is one route a hostile path is sent to; %s is the path.
type hostileRoute struct {
	method, tmpl string
	body         string
	writes       bool
}

var hostileRoutes = []hostileRoute{
	{http.MethodGet, "/artifacts/%s", "", false},
	{http.MethodHead, "/artifacts/%s", "", false},
	{http.MethodGet, "/artifacts?path=%s", "", false},
	{http.MethodGet, "/presigned/%s", "", false},
	{http.MethodPut, "/artifacts/%s", "pwned by the e2e test", true},
	{http.MethodDelete, "/artifacts/%s", "", true},
	{http.MethodPost, "/mpu/create/%s", `{"path":"sentinel.txt","num_parts":1}`, true},
	{http.MethodPost, "/mpu/complete/%s", `{"path":"sentinel.txt","upload_id":"u","parts":[{"part_number":1,"etag":"e","url":"u"}]}`, true},
	{http.MethodPost, "/mpu/abort/%s", `{"path":"sentinel.txt","upload_id":"u"}`, true},
}

// TestHostilePaths sends every traversal encoding to every route on both
// mounts, byte for byte on a raw connection: each answer is 400 Invalid
// path, no response carries a byte from outside the artifact root, and
// nothing outside it is created, changed or deleted.
func TestHostilePaths(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	abs := strings.TrimPrefix(f.Sentinel, "/")
	absenc := strings.ReplaceAll(abs, "/", "%2F")
	passwd, _ := os.ReadFile("/etc/passwd")
	passwdLine := ""
	if lines := strings.SplitN(string(passwd), "\n", 2); len(lines) > 0 && len(lines[0]) > 8 {
		passwdLine = lines[0]
	}
	for _, hp := range hostilePaths {
		raw := strings.NewReplacer("{abs}", abs, "{absenc}", absenc).Replace(hp.raw)
		t.Run(hp.name, func(t *testing.T) {
			for _, api := range apis {
				for _, rt := range hostileRoutes {
					if hp.readOnly && rt.writes {
						continue
					}
					target := f.Prefix + api + "/2.0/mlflow-artifacts" + fmt.Sprintf(rt.tmpl, raw)
					var body []byte
					var hdr []string
					if rt.body != "" {
						body = []byte(rt.body)
						hdr = append(hdr, "Content-Type: application/json")
					}
					r := rawRequest(t, f.Addr(), rt.method, target, body, hdr...)
					want := invalidPathJSON
					if rt.method == http.MethodHead {
						want = ""
					}
					if r.Status != 400 || string(r.Body) != want || r.Header.Get("Content-Type") != jsonCT {
						t.Errorf("%s %s: %s (%s), want 400 %s", rt.method, target, r, r.Header.Get("Content-Type"), want)
					}
					if bytes.Contains(r.Body, []byte(f.SentinelContent)) || (passwdLine != "" && bytes.Contains(r.Body, []byte(passwdLine))) {
						t.Fatalf("%s %s leaked a file from outside the artifact root: %q", rt.method, target, r.Body)
					}
				}
			}
		})
	}
	t.Run("nothing outside the root changed", func(t *testing.T) {
		got, err := os.ReadFile(f.Sentinel)
		if err != nil || string(got) != f.SentinelContent {
			t.Fatalf("sentinel after the attack: %q, %v", got, err)
		}
		entries, err := os.ReadDir(f.Root)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, ",") != "artifacts,sentinel.txt,work" {
			t.Errorf("files next to the artifact root: %v, want only artifacts, sentinel.txt, work", names)
		}
		var inside []string
		_ = filepath.WalkDir(f.Dest, func(p string, d os.DirEntry, err error) error {
			if p != f.Dest {
				inside = append(inside, p)
			}
			return nil
		})
		if len(inside) != 0 {
			t.Errorf("refused requests created %v", inside)
		}
		if len(f.FindLogs(func(l logLine) bool { return l.Str("level") == "ERROR" })) != 0 {
			t.Errorf("hostile paths produced error-level logs")
		}
	})
}

// TestSymlinkEscapes: symlinks planted inside the artifact root that point
// outside it are refused (400) on every route and hidden from listings;
// a symlink that stays inside the root works.
func TestSymlinkEscapes(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	mustPut(t, f.Art("/api", "/artifacts/real/x.txt"), []byte("inside"))
	for link, target := range map[string]string{
		"escape":   f.Root,     // a directory outside the root
		"leak.txt": f.Sentinel, // a file outside the root
		"etc":      "/etc",
		"rel":      "../",  // relative, climbing out
		"inside":   "real", // relative, stays inside: allowed
	} {
		if err := os.Symlink(target, filepath.Join(f.Dest, link)); err != nil {
			t.Fatal(err)
		}
	}
	refused := []struct {
		method, path string
		hdr          []string
	}{
		{http.MethodGet, "/artifacts/escape/sentinel.txt", nil},
		{http.MethodGet, "/artifacts/rel/sentinel.txt", nil},
		{http.MethodGet, "/artifacts/leak.txt", nil},
		{http.MethodGet, "/artifacts/leak.txt", []string{"Range", "bytes=0-3"}},
		{http.MethodHead, "/artifacts/leak.txt", nil},
		{http.MethodGet, "/artifacts/etc/passwd", nil},
		{http.MethodGet, "/artifacts?path=escape", nil},
		{http.MethodGet, "/artifacts?path=etc", nil},
		{http.MethodGet, "/artifacts?path=rel", nil},
		{http.MethodPut, "/artifacts/escape/planted.txt", nil},
		{http.MethodPut, "/artifacts/rel/planted.txt", nil},
		{http.MethodDelete, "/artifacts/escape/sentinel.txt", nil},
		{http.MethodDelete, "/artifacts/rel/sentinel.txt", nil},
	}
	for _, api := range apis {
		for _, rq := range refused {
			var body io.Reader
			if rq.method == http.MethodPut {
				body = strings.NewReader("planted")
			}
			r := do(t, rq.method, f.Art(api, rq.path), body, rq.hdr...)
			if r.Status != 400 {
				t.Errorf("%s %s: %s, want 400", rq.method, rq.path, r)
				continue
			}
			if rq.method != http.MethodHead {
				if e := decodeErr(t, r); e.ErrorCode != "INVALID_PARAMETER_VALUE" || !strings.HasPrefix(e.Message, "Invalid path") {
					t.Errorf("%s %s: %+v, want INVALID_PARAMETER_VALUE Invalid path...", rq.method, rq.path, e)
				}
			}
			if bytes.Contains(r.Body, []byte(f.SentinelContent)) {
				t.Fatalf("%s %s leaked the sentinel", rq.method, rq.path)
			}
		}
		// Listing the root shows neither escaping link.
		expectBody(t, "list root", get(t, f.Art(api, "/artifacts")), 200, jsonCT,
			`{"files":[{"path":"inside","is_dir":true},{"path":"real","is_dir":true}]}`)
		expectBody(t, "GET through inside link", get(t, f.Art(api, "/artifacts/inside/x.txt")), 200, "text/plain", "inside")
	}
	// Uploading onto the file link may replace the link itself, never the
	// file it points to.
	r := put(t, f.Art("/api", "/artifacts/leak.txt"), []byte("replaced"))
	if r.Status != 200 && r.Status != 400 {
		t.Errorf("PUT onto an escaping file link: %s, want 200 or 400", r)
	}
	if got, err := os.ReadFile(f.Sentinel); err != nil || string(got) != f.SentinelContent {
		t.Fatalf("the file outside the root changed: %q %v", got, err)
	}
	if r.Status == 200 {
		expectBody(t, "GET after replacing the link", get(t, f.Art("/api", "/artifacts/leak.txt")), 200, "text/plain", "replaced")
	}
	if _, err := os.Stat(filepath.Join(f.Root, "planted.txt")); !os.IsNotExist(err) {
		t.Errorf("a file was planted outside the root through a symlink: %v", err)
	}
	// Deleting the link removes the link, not what it points to.
	expectBody(t, "DELETE link", do(t, http.MethodDelete, f.Art("/api", "/artifacts/escape"), nil), 200, jsonCT, emptyJSON)
	if got, err := os.ReadFile(f.Sentinel); err != nil || string(got) != f.SentinelContent {
		t.Fatalf("sentinel after deleting the link: %q %v", got, err)
	}
}

// TestHugeJSONBodies: JSON bodies above the 32 MiB cap on the mpu routes are
// refused with 400, with a length or chunked, without the server dying or
// buffering without bound.
func TestHugeJSONBodies(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	const size = 33 << 20
	for _, api := range apis {
		for _, op := range []string{"create", "complete", "abort"} {
			for _, mode := range []string{"length", "chunked", "absurd length"} {
				t.Run(api+"/"+op+"/"+mode, func(t *testing.T) {
					target := f.Prefix + api + "/2.0/mlflow-artifacts/mpu/" + op + "/big"
					r := sendBody(t, f.Addr(), "POST", target, mode, size, "Content-Type: application/json")
					if r.Status != 400 {
						t.Fatalf("%s body of %d bytes: %s, want 400", mode, size, r)
					}
					if e := decodeErr(t, r); e.ErrorCode != "INVALID_PARAMETER_VALUE" || !strings.HasPrefix(e.Message, "Request body too large") {
						t.Errorf("%s: %+v", mode, e)
					}
				})
			}
		}
	}
	expectBody(t, "health after huge bodies", get(t, f.URL("/health")), 200, "", "OK")
	if rss, err := peakRSS(f.PID()); err != nil || rss > 256<<20 {
		t.Errorf("peak RSS after huge JSON bodies: %d MiB (%v), want well under 256 MiB", rss>>20, err)
	}
}

// sendBody writes a request whose JSON-looking body of size bytes is
// generated on the fly: mode "length" announces it, "chunked" streams it
// in chunks, "absurd length" announces 10 GiB and sends size bytes. The
// body is written from a goroutine (the server may answer early) and the
// response is read concurrently.
func sendBody(t testing.TB, addr, method, target, mode string, size int, extra ...string) result {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	var h strings.Builder
	fmt.Fprintf(&h, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for _, x := range extra {
		h.WriteString(x + "\r\n")
	}
	switch mode {
	case "length":
		fmt.Fprintf(&h, "Content-Length: %d\r\n", size)
	case "absurd length":
		fmt.Fprintf(&h, "Content-Length: %d\r\n", int64(10)<<30)
	case "chunked":
		h.WriteString("Transfer-Encoding: chunked\r\n")
	}
	h.WriteString("\r\n")
	go func() {
		w := bufio.NewWriterSize(conn, 64<<10)
		_, _ = w.WriteString(h.String())
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		copy(chunk, `{"path":"x.bin","pad":"`)
		for sent := 0; sent < size; sent += len(chunk) {
			var err error
			if mode == "chunked" {
				_, err = fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
			} else {
				_, err = w.Write(chunk)
			}
			if err != nil {
				return
			}
			chunk = bytes.Repeat([]byte("a"), 64<<10)
		}
		if mode == "chunked" {
			_, _ = w.WriteString("0\r\n\r\n")
		}
		_ = w.Flush()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s (%s): %v", method, target, mode, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return result{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// TestMalformedJSON: wrong JSON types and unparsable bodies on the mpu
// routes answer 400 INVALID_PARAMETER_VALUE naming the offending field
// (upstream: unparsable bodies count as {}, so "path" is missing).
func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	cases := []struct {
		name, op, body string
		wantInMessage  string // "" means any INVALID_PARAMETER_VALUE message
		notInMessage   string
	}{
		{"path number", "create", `{"path":5}`, "parameter 'path'", ""},
		{"path list", "create", `{"path":["a"]}`, "parameter 'path'", ""},
		{"path object", "create", `{"path":{"a":1}}`, "parameter 'path'", ""},
		{"path bool", "abort", `{"path":true}`, "parameter 'path'", ""},
		{"num_parts word", "create", `{"path":"a","num_parts":"x"}`, "parameter 'num_parts'", ""},
		{"num_parts object", "create", `{"path":"a","num_parts":{}}`, "parameter 'num_parts'", ""},
		{"num_parts bool", "create", `{"path":"a","num_parts":true}`, "parameter 'num_parts'", ""},
		{"parts string", "complete", `{"path":"a","parts":"x"}`, "parameter 'parts'", ""},
		{"parts numbers", "complete", `{"path":"a","parts":[1,2]}`, "parts", ""},
		{"part_number word", "complete", `{"path":"a","parts":[{"part_number":"x","etag":"e"}]}`, "part_number", "num_parts"},
		{"upload_id number", "complete", `{"path":"a","upload_id":7,"parts":[]}`, "parameter 'upload_id'", ""},
		{"upload_id list", "abort", `{"path":"a","upload_id":[]}`, "parameter 'upload_id'", ""},
		{"truncated object", "create", `{"path": `, "Missing value for required parameter 'path'", ""},
		{"trailing comma", "abort", `{"path":"a",`, "Missing value for required parameter 'path'", ""},
		{"text garbage", "create", "<<<not json>>>", "Missing value for required parameter 'path'", ""},
		{"binary garbage", "create", "\xff\xfe\x00\x01", "", ""},
		{"json null", "complete", `null`, "Missing value for required parameter 'path'", ""},
		{"json string", "create", `"just words"`, "Missing value for required parameter 'path'", ""},
		{"json array", "create", `[1,2]`, "", ""},
		{"json number", "abort", `42`, "", ""},
		{"deep nesting", "create", `{"path":` + deep + `}`, "", ""},
		{"deep nesting alone", "complete", deep, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, api := range apis {
				r := do(t, http.MethodPost, f.Art(api, "/mpu/"+c.op+"/d"), strings.NewReader(c.body), "Content-Type", jsonCT)
				if r.Status != 400 {
					t.Fatalf("POST mpu/%s %q: %s, want 400", c.op, truncate(c.body, 60), r)
				}
				e := decodeErr(t, r)
				if e.ErrorCode != "INVALID_PARAMETER_VALUE" {
					t.Errorf("error_code %q, want INVALID_PARAMETER_VALUE", e.ErrorCode)
				}
				if c.wantInMessage != "" && !strings.Contains(e.Message, c.wantInMessage) {
					t.Errorf("message %q does not contain %q", e.Message, c.wantInMessage)
				}
				if c.notInMessage != "" && strings.Contains(e.Message, c.notInMessage) {
					t.Errorf("message %q names %q, a field the request does not have", e.Message, c.notInMessage)
				}
			}
		})
	}
	expectBody(t, "health", get(t, f.URL("/health")), 200, "", "OK")
}

// storeCounters returns ferry_store_operations_total for op (all outcomes,
// and all but success) and ferry_store_in_flight_operations for op.
func storeCounters(t testing.TB, f *ferry, op string) (total, failed, inFlight float64) {
	m := f.Metrics(t)
	return m.Sum("ferry_store_operations_total", "op="+op),
		m.Sum("ferry_store_operations_total", "op="+op, "outcome=!success"),
		m.Sum("ferry_store_in_flight_operations", "op="+op)
}

// TestTruncatedUploads: a client that announces more than it sends (with a
// length or chunked) and hangs up leaves no object, no temporary file, a
// log line and a failed put in the metrics; an existing object survives.
func TestTruncatedUploads(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	old := randomBytes(100 << 10)
	mustPut(t, f.Art("/api", "/artifacts/t/existing.bin"), old)
	cases := []struct {
		name, path string
		chunked    bool
		midChunk   bool   // hang up inside a chunk rather than between chunks
		keep       []byte // content the path must still have; nil: absent
	}{
		{"length fresh path", "t/fresh.bin", false, false, nil},
		{"length over existing object", "t/existing.bin", false, false, old},
		{"chunked fresh path", "t/chunked.bin", true, false, nil},
		{"chunked over existing object", "t/existing.bin", true, false, old},
		{"chunked cut inside a chunk", "t/midchunk.bin", true, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			totalBefore, failedBefore, _ := storeCounters(t, f, "put")
			conn, err := net.Dial("tcp", f.Addr())
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriterSize(conn, 256<<10)
			fmt.Fprintf(w, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n", f.Prefix+"/api/2.0/mlflow-artifacts/artifacts/"+c.path, f.Addr())
			if c.chunked {
				fmt.Fprintf(w, "Transfer-Encoding: chunked\r\n\r\n")
			} else {
				fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", 64<<20)
			}
			chunk := randomBytes(256 << 10)
			for sent := 0; sent < 8<<20; sent += len(chunk) {
				if c.chunked {
					fmt.Fprintf(w, "%x\r\n", len(chunk))
				}
				if _, err := w.Write(chunk); err != nil {
					t.Fatal(err)
				}
				if c.chunked {
					_, _ = w.WriteString("\r\n")
				}
			}
			if c.midChunk {
				fmt.Fprintf(w, "%x\r\n", len(chunk))
				_, _ = w.Write(chunk[:len(chunk)/2])
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			conn.Close()

			eventually(t, 30*time.Second, "server finished handling the cut-off upload", func() (bool, string) {
				total, _, inFlight := storeCounters(t, f, "put")
				return total > totalBefore && inFlight == 0, fmt.Sprintf("puts %v (before %v), in flight %v", total, totalBefore, inFlight)
			})
			if _, failed, _ := storeCounters(t, f, "put"); failed != failedBefore+1 {
				t.Errorf("ferry_store_operations_total{op=\"put\",outcome!=\"success\"} went from %v to %v, want +1: the cut-off upload was counted as a success", failedBefore, failed)
			}
			r := get(t, f.Art("/api", "/artifacts/"+c.path))
			if c.keep == nil && r.Status != 404 {
				t.Errorf("after a cut-off upload the path answers %d with %d bytes, want 404", r.Status, len(r.Body))
			}
			if c.keep != nil && (r.Status != 200 || !bytes.Equal(r.Body, c.keep)) {
				t.Errorf("a cut-off upload damaged the existing object: %d, %d bytes", r.Status, len(r.Body))
			}
			if tmp := tempFiles(t, f.Dest); len(tmp) != 0 {
				t.Errorf("temporary upload files left behind: %v", tmp)
			}
			logs := f.FindLogs(func(l logLine) bool {
				return l.Msg() == "store operation refused or cut off" && l.Str("op") == "put" && l.Str("key") == c.path
			})
			if len(logs) == 0 {
				t.Errorf("no log line about the cut-off upload of %s", c.path)
			}
		})
	}
	m := f.Metrics(t)
	if got := m.Sum("ferry_store_operations_total", "op=put", "outcome=error"); got != 0 {
		t.Errorf("cut-off uploads counted as store errors (%v); they are the client's doing", got)
	}
}

// TestDownloadClientDisconnects: a client that hangs up in the middle of a
// large download does not hurt the server, is counted as a canceled get,
// and the object still downloads whole afterwards.
func TestDownloadClientDisconnects(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	data := randomBytes(32 << 20)
	mustPut(t, f.Art("/api", "/artifacts/dl/big.bin"), data)
	before := f.Metrics(t).Sum("ferry_store_operations_total", "op=get", "outcome=canceled")
	for i, rng := range []string{"", "Range: bytes=1000-"} {
		conn, err := net.Dial("tcp", f.Addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s/api/2.0/mlflow-artifacts/artifacts/dl/big.bin HTTP/1.1\r\nHost: %s\r\n%s\r\n", f.Prefix, f.Addr(), rangeLine(rng))
		if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		eventually(t, 30*time.Second, "abandoned download counted", func() (bool, string) {
			m := f.Metrics(t)
			got := m.Sum("ferry_store_operations_total", "op=get", "outcome=canceled")
			inFlight := m.Sum("ferry_store_in_flight_operations", "op=get")
			return got == before+float64(i+1) && inFlight == 0, fmt.Sprintf("canceled gets %v (before %v), in flight %v", got, before, inFlight)
		})
	}
	if f.exited() {
		t.Fatalf("ferry died after a client hung up")
	}
	expectBody(t, "health", get(t, f.URL("/health")), 200, "", "OK")
	r := get(t, f.Art("/api", "/artifacts/dl/big.bin"))
	if r.Status != 200 || sha256.Sum256(r.Body) != sha256.Sum256(data) {
		t.Fatalf("download after abandoned ones: %d, %d bytes", r.Status, len(r.Body))
	}
	if errs := f.FindLogs(func(l logLine) bool { return l.Str("level") == "ERROR" }); len(errs) != 0 {
		t.Errorf("a client hanging up was logged as an error: %v", errs)
	}
}

func rangeLine(h string) string {
	if h == "" {
		return ""
	}
	return h + "\r\n"
}

// onlyReader hides Len/WriteTo so net/http sends a chunked body.
type onlyReader struct{ io.Reader }

// TestChunkedUploads: uploads with Transfer-Encoding: chunked and no
// length are stored whole (also an empty one, and one in tiny chunks).
func TestChunkedUploads(t *testing.T) {
	t.Parallel()
	f := startFerry(t)
	data := randomBytes(5<<20 + 123)
	req, err := http.NewRequest(http.MethodPut, f.Art("/api", "/artifacts/ch/a.bin"), onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "{}" {
		t.Fatalf("chunked PUT: %d %q", resp.StatusCode, body)
	}
	if r := get(t, f.Art("/api", "/artifacts/ch/a.bin")); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Fatalf("GET after chunked PUT: %d, %d bytes, want %d", r.Status, len(r.Body), len(data))
	}

	// Tiny chunks with extensions and a trailer, written by hand.
	var b strings.Builder
	small := "hello, chunked world"
	for i := 0; i < len(small); i += 3 {
		end := min(i+3, len(small))
		fmt.Fprintf(&b, "%x;ext=1\r\n%s\r\n", end-i, small[i:end])
	}
	b.WriteString("0\r\nX-Trailer: t\r\n\r\n")
	r := rawChunked(t, f, "/api/2.0/mlflow-artifacts/artifacts/ch/small.txt", b.String())
	expectBody(t, "tiny chunks", r, 200, jsonCT, emptyJSON)
	expectBody(t, "GET tiny chunks", get(t, f.Art("/api", "/artifacts/ch/small.txt")), 200, "text/plain", small)

	r = rawChunked(t, f, "/ajax-api/2.0/mlflow-artifacts/artifacts/ch/empty.bin", "0\r\n\r\n")
	expectBody(t, "empty chunked", r, 200, jsonCT, emptyJSON)
	r = get(t, f.Art("/ajax-api", "/artifacts/ch/empty.bin"))
	if r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("GET empty chunked upload: %s", r)
	}
	expectBody(t, "list", get(t, f.Art("/api", "/artifacts?path=ch")), 200, jsonCT,
		`{"files":[{"path":"a.bin","is_dir":false,"file_size":`+strconv.Itoa(len(data))+`},{"path":"empty.bin","is_dir":false},{"path":"small.txt","is_dir":false,"file_size":20}]}`)
}

// rawChunked sends a PUT whose chunked body framing is given verbatim.
func rawChunked(t testing.TB, f *ferry, path, framed string) result {
	t.Helper()
	conn, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n%s", f.Prefix+path, f.Addr(), framed)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodPut})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return result{Status: resp.StatusCode, Header: resp.Header, Body: data}
}
