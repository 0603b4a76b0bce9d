package gcsxml_test

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/ferryml/ferry/test/backends/gcssrv"
	"github.com/ferryml/ferry/test/backends/gcsxml"
)

// sign makes a V4 signed URL with Google's own library (not Ferry's
// code), as GCS clients would receive it.
func sign(t *testing.T, srv *gcsxml.Server, a *gcsxml.Account, method, bucket, object string, ttl time.Duration, q url.Values) string {
	t.Helper()
	u, err := storage.SignedURL(bucket, object, &storage.SignedURLOptions{
		GoogleAccessID: a.Email, PrivateKey: []byte(a.PEM()), Method: method, Expires: time.Now().Add(ttl),
		Scheme: storage.SigningSchemeV4, Hostname: srv.Host, Insecure: true, QueryParameters: q,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func do(t *testing.T, method, u string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// setQuery replaces one query parameter of a signed URL, keeping the rest
// (and the signature) as they were.
func setQuery(t *testing.T, raw, k, v string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestSignedURLsVerified: a signed GET works; every way of breaking one is
// refused, so the signed paths tested through it cannot pass by accident.
func TestSignedURLsVerified(t *testing.T) {
	gcs := gcssrv.Start(t)
	srv := gcsxml.Start(t, gcs.Endpoint)
	a := srv.NewAccount(t, "signer")
	bucket := gcs.Bucket(t)
	gcs.Put(t, bucket, "dir/obj 1+ü.txt", []byte("the content"))
	gcs.Put(t, bucket, "dir/other", []byte("other content"))
	good := sign(t, srv, a, http.MethodGet, bucket, "dir/obj 1+ü.txt", 5*time.Minute, nil)

	if code, b, _ := do(t, http.MethodGet, good, nil); code != http.StatusOK || string(b) != "the content" {
		t.Fatalf("signed GET: %d %q", code, b)
	}
	u, _ := url.Parse(good)
	otherPath := *u
	otherPath.Path = "/" + bucket + "/dir/other"
	otherPath.RawPath = ""
	wrongKey := sign(t, srv, srv.Unregistered(t, a.Email), http.MethodGet, bucket, "dir/obj 1+ü.txt", 5*time.Minute, nil)
	unknown := sign(t, srv, srv.Unregistered(t, "nobody@ferry-test.iam.gserviceaccount.com"), http.MethodGet, bucket, "dir/obj 1+ü.txt", 5*time.Minute, nil)
	refused := []struct {
		name, method, url string
	}{
		{"another object", http.MethodGet, otherPath.String()},
		{"longer expiry", http.MethodGet, setQuery(t, good, "X-Goog-Expires", "604800")},
		{"other date", http.MethodGet, setQuery(t, good, "X-Goog-Date", time.Now().UTC().Add(-time.Minute).Format("20060102T150405Z"))},
		{"extra query parameter", http.MethodGet, good + "&generation=1"},
		{"signature of another URL", http.MethodGet, setQuery(t, good, "X-Goog-Signature", mustQuery(t, sign(t, srv, a, http.MethodGet, bucket, "dir/other", 5*time.Minute, nil)).Get("X-Goog-Signature"))},
		{"flipped signature bit", http.MethodGet, setQuery(t, good, "X-Goog-Signature", flip(mustQuery(t, good).Get("X-Goog-Signature")))},
		{"other method", http.MethodPut, good},
		{"wrong key for the account", http.MethodGet, wrongKey},
		{"unknown account", http.MethodGet, unknown},
		{"HMAC algorithm claimed", http.MethodGet, setQuery(t, good, "X-Goog-Algorithm", "GOOG4-HMAC-SHA256")},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := do(t, tt.method, tt.url, nil)
			if code != http.StatusForbidden {
				t.Fatalf("%s: %d %.200s; want 403", tt.name, code, b)
			}
			if bytes.Contains(b, []byte("the content")) {
				t.Fatal("content served for a refused URL")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		short := sign(t, srv, a, http.MethodGet, bucket, "dir/obj 1+ü.txt", 2*time.Minute, nil)
		srv.Advance(3 * time.Minute)
		defer srv.Advance(-3 * time.Minute)
		if code, b, _ := do(t, http.MethodGet, short, nil); code != http.StatusBadRequest || !bytes.Contains(b, []byte("ExpiredToken")) {
			t.Fatalf("expired URL: %d %.200s; want 400 ExpiredToken", code, b)
		}
		if code, _, _ := do(t, http.MethodGet, good, nil); code != http.StatusOK {
			t.Fatalf("the 5-minute URL after 3 minutes: %d", code)
		}
	})
	if n := srv.SignedRefused.Load(); n < int64(len(refused))+1 {
		t.Fatalf("only %d refusals counted", n)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func flip(hexSig string) string {
	b := []byte(hexSig)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

// TestMultipart runs the XML multipart protocol as a client would, with
// part URLs signed by Google's library: complete gives the object in
// fake-gcs-server byte for byte; abort leaves nothing; a part URL for
// another upload id, or unsigned, is refused; a bad part list is refused.
func TestMultipart(t *testing.T) {
	gcs := gcssrv.Start(t)
	srv := gcsxml.Start(t, gcs.Endpoint)
	a := srv.NewAccount(t, "mpu")
	bucket := gcs.Bucket(t)
	object := "mpu/big file.bin"
	base := srv.URL + "/" + bucket + "/mpu/big%20file.bin"
	initiate := func() string {
		code, b, _ := do(t, http.MethodPost, base+"?uploads", nil)
		var r struct {
			UploadID string `xml:"UploadId"`
		}
		if code != http.StatusOK || xml.Unmarshal(b, &r) != nil || r.UploadID == "" {
			t.Fatalf("initiate: %d %s", code, b)
		}
		return r.UploadID
	}
	parts := [][]byte{make([]byte, gcsxml.MinPartSize), make([]byte, 1<<20+3)}
	for _, p := range parts {
		_, _ = rand.Read(p)
	}
	partURL := func(id string, n int) string {
		return sign(t, srv, a, http.MethodPut, bucket, object, time.Hour, url.Values{"partNumber": {fmt.Sprint(n)}, "uploadId": {id}})
	}

	id := initiate()
	var etags []string
	for i, p := range parts {
		code, b, h := do(t, http.MethodPut, partURL(id, i+1), p)
		if code != http.StatusOK || h.Get("ETag") == "" {
			t.Fatalf("part %d: %d %s", i+1, code, b)
		}
		etags = append(etags, h.Get("ETag"))
	}
	if code, _, _ := do(t, http.MethodPut, setQuery(t, partURL(id, 1), "uploadId", "other"), parts[0]); code != http.StatusForbidden {
		t.Fatalf("part URL with another upload id: %d; want 403", code)
	}
	if code, _, _ := do(t, http.MethodPut, base+"?partNumber=1&uploadId="+url.QueryEscape(id), parts[0]); code != http.StatusNotImplemented && code/100 == 2 {
		t.Fatalf("unsigned part PUT accepted: %d", code)
	}
	list := func(ps ...string) []byte {
		var b strings.Builder
		b.WriteString("<CompleteMultipartUpload>")
		for i := 0; i < len(ps); i += 2 {
			fmt.Fprintf(&b, "<Part><PartNumber>%s</PartNumber><ETag>%s</ETag></Part>", ps[i], ps[i+1])
		}
		b.WriteString("</CompleteMultipartUpload>")
		return []byte(b.String())
	}
	cq := base + "?uploadId=" + url.QueryEscape(id)
	for name, body := range map[string][]byte{
		"wrong etag":  list("1", etags[0], "2", `"0000"`),
		"wrong order": list("2", etags[1], "1", etags[0]),
		"small first": list("2", etags[1]+"x", "1", etags[0]),
	} {
		if code, b, _ := do(t, http.MethodPost, cq, body); code != http.StatusBadRequest {
			t.Fatalf("complete with %s: %d %s; want 400", name, code, b)
		}
	}
	if code, b, _ := do(t, http.MethodPost, cq, list("1", etags[0], "2", etags[1])); code != http.StatusOK {
		t.Fatalf("complete: %d %s", code, b)
	}
	objs := gcs.Objects(t, bucket, "")
	if len(objs) != 1 || objs[0].Name != object || objs[0].Size != int64(len(parts[0])+len(parts[1])) {
		t.Fatalf("objects after complete: %+v", objs)
	}
	got := sign(t, srv, a, http.MethodGet, bucket, object, time.Minute, nil)
	if code, b, _ := do(t, http.MethodGet, got, nil); code != http.StatusOK || !bytes.Equal(b, bytes.Join(parts, nil)) {
		t.Fatalf("read back: %d, %d bytes; content differs", code, len(b))
	}

	id2 := initiate()
	if code, _, _ := do(t, http.MethodPut, partURL(id2, 1), parts[0]); code != http.StatusOK {
		t.Fatalf("part: %d", code)
	}
	if code, _, _ := do(t, http.MethodDelete, base+"?uploadId="+url.QueryEscape(id2), nil); code != http.StatusNoContent {
		t.Fatalf("abort: %d", code)
	}
	if code, _, _ := do(t, http.MethodPut, partURL(id2, 2), parts[1]); code != http.StatusNotFound {
		t.Fatalf("part after abort: %d; want 404", code)
	}
	if n := srv.OpenUploads(); n != 0 {
		t.Fatalf("%d uploads open", n)
	}
	if objs := gcs.Objects(t, bucket, ""); len(objs) != 1 {
		t.Fatalf("abort left objects: %+v", objs)
	}
}

// TestListUploads: GET /bucket?uploads lists open uploads in name order
// (then upload id) with their Initiated time on the server's clock,
// filtered by prefix, rolled up by delimiter, paged by max-uploads with
// NextKeyMarker/NextUploadIdMarker, names URL-encoded on request; an
// aborted upload is no longer listed.
func TestListUploads(t *testing.T) {
	gcs := gcssrv.Start(t)
	srv := gcsxml.Start(t, gcs.Endpoint)
	bucket := gcs.Bucket(t)
	initiate := func(object string) string {
		t.Helper()
		code, b, _ := do(t, http.MethodPost, srv.URL+"/"+bucket+"/"+(&url.URL{Path: object}).EscapedPath()+"?uploads", nil)
		var r struct {
			UploadID string `xml:"UploadId"`
		}
		if code != http.StatusOK || xml.Unmarshal(b, &r) != nil || r.UploadID == "" {
			t.Fatalf("initiate %s: %d %s", object, code, b)
		}
		return r.UploadID
	}
	type upload struct {
		Key          string `xml:"Key"`
		UploadID     string `xml:"UploadId"`
		StorageClass string `xml:"StorageClass"`
		Initiated    string `xml:"Initiated"`
	}
	type result struct {
		NextKeyMarker      string   `xml:"NextKeyMarker"`
		NextUploadIDMarker string   `xml:"NextUploadIdMarker"`
		EncodingType       string   `xml:"EncodingType"`
		IsTruncated        bool     `xml:"IsTruncated"`
		MaxUploads         int      `xml:"MaxUploads"`
		Uploads            []upload `xml:"Upload"`
		CommonPrefixes     []string `xml:"CommonPrefixes>Prefix"`
	}
	list := func(q url.Values) result {
		t.Helper()
		code, b, _ := do(t, http.MethodGet, srv.URL+"/"+bucket+"?uploads&"+q.Encode(), nil)
		var r result
		if code != http.StatusOK {
			t.Fatalf("list %v: %d %s", q, code, b)
		}
		if err := xml.Unmarshal(b, &r); err != nil {
			t.Fatalf("list %v: %v in %s", q, err, b)
		}
		return r
	}

	srv.Advance(-time.Hour)
	before := time.Now().Add(-time.Hour - time.Second)
	b1 := initiate("p/b")
	srv.Advance(time.Hour)
	a1, a2 := initiate("p/a"), initiate("p/a")
	initiate("p/d/x")
	initiate("p/d/y")
	initiate("q/other")
	weird := initiate("p/c &<%.bin")
	if a2 < a1 {
		a1, a2 = a2, a1
	}

	all := list(url.Values{"prefix": {"p/"}})
	var keys []string
	for _, u := range all.Uploads {
		keys = append(keys, u.Key)
	}
	if got := strings.Join(keys, ","); got != "p/a,p/a,p/b,p/c &<%.bin,p/d/x,p/d/y" || all.IsTruncated || all.MaxUploads != 1000 {
		t.Fatalf("prefix p/: %s (truncated %v, max %d)", got, all.IsTruncated, all.MaxUploads)
	}
	if all.Uploads[0].UploadID != a1 || all.Uploads[1].UploadID != a2 || all.Uploads[2].UploadID != b1 || all.Uploads[3].UploadID != weird {
		t.Fatalf("order within a name: %+v", all.Uploads)
	}
	for _, u := range all.Uploads {
		at, err := time.Parse(time.RFC3339Nano, u.Initiated)
		if err != nil || u.StorageClass != "STANDARD" {
			t.Fatalf("upload %+v: %v", u, err)
		}
		if old := u.UploadID == b1; old != at.Before(before.Add(30*time.Minute)) || at.Before(before) {
			t.Fatalf("Initiated of %s = %s (old: %v)", u.Key, u.Initiated, old)
		}
	}

	// Pages of two, continuing from the markers.
	var paged []string
	q := url.Values{"prefix": {"p/"}, "max-uploads": {"2"}}
	for i := 0; ; i++ {
		r := list(q)
		for _, u := range r.Uploads {
			paged = append(paged, u.UploadID)
		}
		if !r.IsTruncated {
			break
		}
		if i > 5 || r.NextKeyMarker == "" || r.NextUploadIDMarker == "" {
			t.Fatalf("page %d: %+v", i, r)
		}
		q.Set("key-marker", r.NextKeyMarker)
		q.Set("upload-id-marker", r.NextUploadIDMarker)
	}
	if len(paged) != 6 || paged[0] != a1 || paged[1] != a2 || paged[2] != b1 {
		t.Fatalf("paged ids %v", paged)
	}
	// key-marker alone skips every upload of that name.
	if r := list(url.Values{"prefix": {"p/"}, "key-marker": {"p/a"}}); len(r.Uploads) != 4 || r.Uploads[0].Key != "p/b" {
		t.Fatalf("after key-marker p/a: %+v", r.Uploads)
	}
	// Delimiter: p/d/ is one common prefix.
	if r := list(url.Values{"prefix": {"p/"}, "delimiter": {"/"}}); len(r.Uploads) != 4 || len(r.CommonPrefixes) != 1 || r.CommonPrefixes[0] != "p/d/" {
		t.Fatalf("delimiter: %+v", r)
	}
	// encoding-type=url.
	r := list(url.Values{"prefix": {"p/c"}, "encoding-type": {"url"}})
	if len(r.Uploads) != 1 || r.EncodingType != "url" {
		t.Fatalf("encoded: %+v", r)
	}
	if k, err := url.QueryUnescape(r.Uploads[0].Key); err != nil || k != "p/c &<%.bin" || r.Uploads[0].Key == k {
		t.Fatalf("encoded key %q", r.Uploads[0].Key)
	}
	// An aborted upload is gone from the list.
	if code, _, _ := do(t, http.MethodDelete, srv.URL+"/"+bucket+"/p/b?uploadId="+url.QueryEscape(b1), nil); code != http.StatusNoContent {
		t.Fatalf("abort: %d", code)
	}
	if r := list(url.Values{"prefix": {"p/b"}}); len(r.Uploads) != 0 {
		t.Fatalf("aborted upload still listed: %+v", r.Uploads)
	}
}
