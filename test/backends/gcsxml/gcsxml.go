// Package gcsxml is a test server that stands in front of a real
// fake-gcs-server (test/backends/gcssrv) and adds what it lacks, so the
// GCS driver's presigned paths can be tested end to end:
//
//   - V4 signed URLs, VERIFIED (GOOG4-RSA-SHA256 against the service
//     account's public key; Ferry signs with RSA keys only, as upstream,
//     so HMAC-signed URLs are refused here): method, path,
//     query, signed headers, credential scope, date and expiry. A tampered,
//     expired, wrong-key or unknown-account URL is refused with 403 (400
//     for an expired one, as GCS answers).
//   - the XML API's multipart uploads: POST ?uploads, PUT ?partNumber&uploadId
//     (signed URLs only), POST ?uploadId with the part list, DELETE ?uploadId,
//     and the bucket's listing of open uploads, GET /bucket?uploads (prefix,
//     delimiter, key-marker, upload-id-marker, max-uploads, encoding-type;
//     each upload with its Initiated time on the server's clock).
//     Parts are kept on disk in the test's temp dir; a completed upload is
//     streamed into fake-gcs-server as one object.
//   - OAuth: a token endpoint for service-account keys (JWT bearer grant,
//     the JWT's RS256 signature verified), a GCE metadata server (token and
//     e-mail of one account, for GCE_METADATA_HOST) and IAM signBlob.
//     With RequireAuth, every other request needs a valid bearer token.
//
// Everything else (JSON API, XML reads) is passed to fake-gcs-server.
// It is a fake only for what no real server here can do; the README says so.
package gcsxml

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// MinPartSize is the XML API's smallest part but the last (5 MiB).
const MinPartSize = 5 << 20

// Account is a service account the server knows, with its key pair.
type Account struct {
	Email string
	Key   *rsa.PrivateKey
	srv   *Server
}

// Server is one running gcsxml server.
type Server struct {
	// URL is "http://127.0.0.1:PORT"; Host is "127.0.0.1:PORT" (the value
	// for STORAGE_EMULATOR_HOST and GCE_METADATA_HOST).
	URL, Host string
	// RequireAuth makes every unsigned request need a bearer token the
	// server issued.
	RequireAuth atomic.Bool

	upstream *url.URL
	proxy    *httputil.ReverseProxy
	dir      string
	clock    atomic.Int64 // offset added to time.Now, in ns (tests of expiry)

	mu       sync.Mutex
	accounts map[string]*Account
	tokens   map[string]string // access token -> e-mail
	metaAcct *Account
	uploads  map[string]*upload
	seq      int

	// Counters for tests.
	SignedOK, SignedRefused, PartBytes atomic.Int64
	// Stats, when set, answers GET /_gcsxml/stats (cmd/gcsxml).
	Stats func(http.ResponseWriter)
}

type upload struct {
	bucket, object, contentType string
	initiated                   time.Time
	parts                       map[int]part
}

type part struct {
	path, etag string
	size       int64
}

// Start starts a server in front of the fake-gcs-server at upstream
// (http://host:port) and stops it when the test ends.
func Start(t testing.TB, upstream string) *Server {
	t.Helper()
	s, stop, err := Listen(upstream, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// Listen starts a server in front of the fake-gcs-server at upstream on
// a free 127.0.0.1 port, keeping parts in dir, and returns it with the
// function that stops it (for cmd/gcsxml, outside go test).
func Listen(upstream, dir string) (*Server, func(), error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, nil, err
	}
	s := &Server{
		upstream: u, dir: dir,
		accounts: map[string]*Account{}, tokens: map[string]string{}, uploads: map[string]*upload{},
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
			pr.Out.Header.Del("Authorization")
		},
		BufferPool: bufPool{},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	s.Host = l.Addr().String()
	s.URL = "http://" + s.Host
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	return s, func() { hs.Close() }, nil
}

// bufPool gives the reverse proxy 256 KiB copy buffers.
type bufPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (bufPool) Get() []byte  { return *(copyBufs.Get().(*[]byte)) }
func (bufPool) Put(b []byte) { copyBufs.Put(&b) }

// Advance moves the server's clock (for expiry tests).
func (s *Server) Advance(d time.Duration) { s.clock.Add(int64(d)) }

func (s *Server) now() time.Time { return time.Now().Add(time.Duration(s.clock.Load())) }

// NewAccount registers a service account with a fresh 2048-bit key.
func (s *Server) NewAccount(t testing.TB, name string) *Account {
	t.Helper()
	a, err := s.AddAccount(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// AddAccount is NewAccount outside a test.
func (s *Server) AddAccount(name string) (*Account, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	a := &Account{Email: name + "@ferry-test.iam.gserviceaccount.com", Key: k, srv: s}
	s.mu.Lock()
	s.accounts[a.Email] = a
	s.mu.Unlock()
	return a, nil
}

// Unregistered is an account with the given e-mail whose key the server
// does not know (a wrong key for a known e-mail, or an unknown account).
func (s *Server) Unregistered(t testing.TB, email string) *Account {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Account{Email: email, Key: k, srv: s}
}

// SetMetadataAccount makes a the account of the metadata server
// (GCE_METADATA_HOST=Host).
func (s *Server) SetMetadataAccount(a *Account) {
	s.mu.Lock()
	s.metaAcct = a
	s.mu.Unlock()
}

// PEM is the account's private key, PKCS#8 PEM as in key files.
func (a *Account) PEM() string {
	der, _ := x509.MarshalPKCS8PrivateKey(a.Key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// CredentialsFile writes a service-account key file whose token_uri is
// this server, and returns its path (for GOOGLE_APPLICATION_CREDENTIALS).
func (a *Account) CredentialsFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := a.WriteCredentials(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteCredentials writes the account's key file to path.
func (a *Account) WriteCredentials(path string) error {
	b, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "ferry-test", "private_key_id": "k1",
		"private_key": a.PEM(), "client_email": a.Email, "client_id": "1",
		"token_uri": a.srv.URL + "/token",
	}, "", "  ")
	return os.WriteFile(path, b, 0o600)
}

// OpenUploads is the number of multipart uploads neither completed nor
// aborted.
func (s *Server) OpenUploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// OpenUploadIDs maps the id of every multipart upload neither completed
// nor aborted to its bucket/object.
func (s *Server) OpenUploadIDs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.uploads))
	for id, u := range s.uploads {
		m[id] = u.bucket + "/" + u.object
	}
	return m
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/_gcsxml/stats" && s.Stats != nil:
		s.Stats(w)
		return
	case r.URL.Path == "/token" && r.Method == http.MethodPost:
		s.serveToken(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/computeMetadata/"):
		s.serveMetadata(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/") && strings.HasSuffix(r.URL.Path, ":signBlob"):
		s.serveSignBlob(w, r)
		return
	case q.Has("X-Goog-Signature") || q.Has("X-Goog-Algorithm"):
		if err := s.verify(r); err != nil {
			s.SignedRefused.Add(1)
			status, code := http.StatusForbidden, "SignatureDoesNotMatch"
			if errors.Is(err, errExpired) {
				status, code = http.StatusBadRequest, "ExpiredToken"
			}
			xmlErr(w, status, code, err.Error())
			return
		}
		s.SignedOK.Add(1)
		s.serveSigned(w, r, q)
		return
	}
	if s.RequireAuth.Load() {
		if _, ok := s.bearer(r); !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}`)
			return
		}
	}
	jsonAPI := strings.HasPrefix(r.URL.Path, "/storage/v1/") || strings.HasPrefix(r.URL.Path, "/upload/") || strings.HasPrefix(r.URL.Path, "/download/")
	if !jsonAPI && r.Method == http.MethodGet && q.Has("uploads") {
		// GET /bucket?uploads (a GET ?uploads on an object is no call).
		if bucket := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/"); bucket != "" && !strings.Contains(bucket, "/") {
			s.listUploads(w, bucket, q)
			return
		}
	}
	if !jsonAPI && (q.Has("uploads") || q.Has("uploadId")) {
		s.serveMultipart(w, r, q)
		return
	}
	s.proxy.ServeHTTP(w, r)
}

// bearer returns the account of the request's bearer token.
func (s *Server) bearer(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	email, ok := s.tokens[tok]
	return email, ok
}

func (s *Server) issueToken(email string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "ya29.test-" + hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = email
	s.mu.Unlock()
	return tok
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func xmlErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message></Error>", code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// serveToken is the OAuth token endpoint for service-account keys: the
// JWT bearer grant, with the assertion's RS256 signature checked against
// the account's registered key.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	refuse := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": msg})
	}
	if err := r.ParseForm(); err != nil {
		refuse("bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		refuse("unsupported grant_type")
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		refuse("malformed assertion")
		return
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	if err1 != nil || err2 != nil || json.Unmarshal(payload, &claims) != nil {
		refuse("malformed assertion")
		return
	}
	s.mu.Lock()
	a := s.accounts[claims.Iss]
	s.mu.Unlock()
	if a == nil {
		refuse("Invalid grant: account not found")
		return
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&a.Key.PublicKey, crypto.SHA256, h[:], sig) != nil {
		refuse("Invalid JWT Signature.")
		return
	}
	if claims.Exp < s.now().Unix() {
		refuse("Invalid JWT: Token must be a short-lived token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": s.issueToken(a.Email), "token_type": "Bearer", "expires_in": 3599})
}

// serveMetadata is the part of the GCE metadata server Google's auth
// libraries use: the default account's token and e-mail.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	a := s.metaAcct
	s.mu.Unlock()
	w.Header().Set("Metadata-Flavor", "Google")
	switch strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/") {
	case "instance/service-accounts/default/token":
		if a == nil {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": s.issueToken(a.Email), "token_type": "Bearer", "expires_in": 3599})
	case "instance/service-accounts/default/email":
		if a == nil {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, a.Email)
	case "project/project-id":
		io.WriteString(w, "ferry-test")
	case "universe/universe-domain":
		io.WriteString(w, "googleapis.com")
	default:
		http.NotFound(w, r)
	}
}

// serveSignBlob is IAM Credentials' signBlob: an account signs with its
// own key, for a caller holding one of its tokens.
func (s *Server) serveSignBlob(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.bearer(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "message": "no valid token"}})
		return
	}
	email, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/"), ":signBlob"))
	s.mu.Lock()
	a := s.accounts[email]
	s.mu.Unlock()
	if a == nil || caller != email {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{"code": 403, "message": "Permission 'iam.serviceAccounts.signBlob' denied"}})
		return
	}
	var req struct {
		Payload string `json:"payload"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400, "message": err.Error()}})
		return
	}
	payload, err := base64.StdEncoding.DecodeString(req.Payload)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400, "message": err.Error()}})
		return
	}
	h := sha256.Sum256(payload)
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.Key, crypto.SHA256, h[:])
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]any{"code": 500, "message": err.Error()}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"keyId": "k1", "signedBlob": base64.StdEncoding.EncodeToString(sig)})
}

var errExpired = errors.New("the signed URL has expired")

// verify checks a V4 signed URL (query-string authentication) as GCS
// documents it: the canonical request is rebuilt from what arrived, the
// string to sign hashed, and the signature checked with the public key of
// the account the credential names.
func (s *Server) verify(r *http.Request) error {
	q := r.URL.Query()
	get := func(k string) (string, error) {
		if len(q[k]) != 1 || q[k][0] == "" {
			return "", fmt.Errorf("%s missing or repeated", k)
		}
		return q[k][0], nil
	}
	var vals [6]string
	for i, k := range []string{"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders", "X-Goog-Signature"} {
		v, err := get(k)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	alg, cred, date, expires, signedHeaders, sigHex := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	if alg != "GOOG4-RSA-SHA256" {
		return fmt.Errorf("algorithm %q not supported here", alg)
	}
	email, scope, ok := strings.Cut(cred, "/")
	if !ok {
		return errors.New("malformed credential")
	}
	t, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return errors.New("malformed X-Goog-Date")
	}
	if scope != t.Format("20060102")+"/auto/storage/goog4_request" {
		return fmt.Errorf("credential scope %q does not match the date", scope)
	}
	exp, err := strconv.Atoi(expires)
	if err != nil || exp <= 0 || exp > 604800 {
		return errors.New("X-Goog-Expires must be 1..604800")
	}
	now := s.now()
	if t.After(now.Add(15 * time.Minute)) {
		return errors.New("X-Goog-Date is in the future")
	}
	if now.After(t.Add(time.Duration(exp) * time.Second)) {
		return errExpired
	}
	s.mu.Lock()
	a := s.accounts[email]
	s.mu.Unlock()
	if a == nil {
		return fmt.Errorf("unknown account %q", email)
	}
	// Canonical request.
	rawPath := r.RequestURI
	if i := strings.IndexByte(rawPath, '?'); i >= 0 {
		rawPath = rawPath[:i]
	}
	var pairs []string
	for k, vs := range q {
		if k == "X-Goog-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(pairs)
	var hdrs strings.Builder
	for _, h := range strings.Split(signedHeaders, ";") {
		v := r.Header.Get(h)
		if h == "host" {
			// Google's signers sign the host name without the port
			// (storage.SignedURL: "host:"+u.Hostname()); on GCS's own
			// port 443 the two agree.
			v = r.Host
			if hn, _, err := net.SplitHostPort(v); err == nil {
				v = hn
			}
		}
		if v == "" {
			return fmt.Errorf("signed header %q not sent", h)
		}
		hdrs.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	if !strings.Contains(";"+signedHeaders+";", ";host;") {
		return errors.New("host is not signed")
	}
	canonical := strings.Join([]string{r.Method, rawPath, strings.Join(pairs, "&"), hdrs.String(), signedHeaders, "UNSIGNED-PAYLOAD"}, "\n")
	ch := sha256.Sum256([]byte(canonical))
	toSign := alg + "\n" + date + "\n" + scope + "\n" + hex.EncodeToString(ch[:])
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return errors.New("malformed signature")
	}
	h := sha256.Sum256([]byte(toSign))
	if err := rsa.VerifyPKCS1v15(&a.Key.PublicKey, crypto.SHA256, h[:], sig); err != nil {
		return errors.New("the request signature we calculated does not match the signature you provided")
	}
	return nil
}

// uriEncode is the V4 URI encoding: everything but A-Z a-z 0-9 - . _ ~
// as %XX.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// bucketObject splits /bucket/object.
func bucketObject(r *http.Request) (bucket, object string, ok bool) {
	bucket, object, ok = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return bucket, object, ok && bucket != "" && object != ""
}

// serveSigned serves a request whose signature checked out: a part
// upload, or a read passed on to fake-gcs-server without the signature.
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request, q url.Values) {
	bucket, object, ok := bucketObject(r)
	if !ok {
		xmlErr(w, http.StatusBadRequest, "InvalidURI", "want /bucket/object")
		return
	}
	switch {
	case r.Method == http.MethodPut && q.Has("uploadId"):
		s.putPart(w, r, bucket, object, q)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && !q.Has("uploadId"):
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		r2.RequestURI = ""
		s.proxy.ServeHTTP(w, r2)
	default:
		xmlErr(w, http.StatusNotImplemented, "NotImplemented", "gcsxml serves signed GET, HEAD and part PUT only")
	}
}

func (s *Server) lookup(w http.ResponseWriter, bucket, object, id string) *upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	if u == nil || u.bucket != bucket || u.object != object {
		xmlErr(w, http.StatusNotFound, "NoSuchUpload", "The requested upload was not found.")
		return nil
	}
	return u
}

func (s *Server) putPart(w http.ResponseWriter, r *http.Request, bucket, object string, q url.Values) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > 10000 {
		xmlErr(w, http.StatusBadRequest, "InvalidArgument", "partNumber must be 1..10000")
		return
	}
	id := q.Get("uploadId")
	if s.lookup(w, bucket, object, id) == nil {
		return
	}
	f, err := os.CreateTemp(s.dir, "part-*")
	if err != nil {
		xmlErr(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	h := md5.New()
	size, err := io.Copy(io.MultiWriter(f, h), r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && r.ContentLength >= 0 && size != r.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", size, r.ContentLength)
	}
	if err != nil {
		os.Remove(f.Name())
		xmlErr(w, http.StatusBadRequest, "IncompleteBody", err.Error())
		return
	}
	s.PartBytes.Add(size)
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	s.mu.Lock()
	u := s.uploads[id]
	if u == nil { // aborted meanwhile
		s.mu.Unlock()
		os.Remove(f.Name())
		xmlErr(w, http.StatusNotFound, "NoSuchUpload", "The requested upload was not found.")
		return
	}
	if old, ok := u.parts[n]; ok {
		os.Remove(old.path)
	}
	u.parts[n] = part{path: f.Name(), etag: etag, size: size}
	s.mu.Unlock()
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
}

// serveMultipart serves the bearer-authenticated multipart calls.
func (s *Server) serveMultipart(w http.ResponseWriter, r *http.Request, q url.Values) {
	bucket, object, ok := bucketObject(r)
	if !ok {
		xmlErr(w, http.StatusBadRequest, "InvalidURI", "want /bucket/object")
		return
	}
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		s.mu.Lock()
		s.seq++
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		id := fmt.Sprintf("ABPnzm%d-%s", s.seq, hex.EncodeToString(b))
		s.uploads[id] = &upload{bucket: bucket, object: object, contentType: r.Header.Get("Content-Type"), initiated: s.now(), parts: map[int]part{}}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>",
			xmlEscape(bucket), xmlEscape(object), id)
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		id := q.Get("uploadId")
		if s.lookup(w, bucket, object, id) == nil {
			return
		}
		s.drop(id)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		s.complete(w, r, bucket, object, q.Get("uploadId"))
	default:
		xmlErr(w, http.StatusNotImplemented, "NotImplemented", "not implemented by gcsxml")
	}
}

// drop forgets an upload and deletes its parts.
func (s *Server) drop(id string) {
	s.mu.Lock()
	u := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if u != nil {
		for _, p := range u.parts {
			os.Remove(p.path)
		}
	}
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, bucket, object, id string) {
	u := s.lookup(w, bucket, object, id)
	if u == nil {
		return
	}
	var req struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil || len(req.Parts) == 0 {
		xmlErr(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed.")
		return
	}
	s.mu.Lock()
	var files []part
	var total int64
	var bad string
	for i, p := range req.Parts {
		have, ok := u.parts[p.PartNumber]
		switch {
		case i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber:
			bad = "InvalidPartOrder"
		case !ok || strings.Trim(have.etag, `"`) != strings.Trim(p.ETag, `"`):
			bad = "InvalidPart"
		case i < len(req.Parts)-1 && have.size < MinPartSize:
			bad = "EntityTooSmall"
		}
		if bad != "" {
			break
		}
		files = append(files, have)
		total += have.size
	}
	ct := u.contentType
	s.mu.Unlock()
	if bad != "" {
		xmlErr(w, http.StatusBadRequest, bad, "the part list does not match the uploaded parts")
		return
	}
	readers := make([]io.Reader, 0, len(files))
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	for _, p := range files {
		f, err := os.Open(p.path)
		if err != nil {
			xmlErr(w, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		opened = append(opened, f)
		readers = append(readers, f)
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	qs := url.Values{"uploadType": {"media"}, "name": {object}}
	up, _ := http.NewRequestWithContext(r.Context(), http.MethodPost,
		s.upstream.String()+"/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?"+qs.Encode(), io.MultiReader(readers...))
	up.ContentLength = total
	up.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(up)
	if err != nil {
		xmlErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
		return
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		xmlErr(w, resp.StatusCode, "InternalError", string(rb))
		return
	}
	s.drop(id)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>\"%d-parts\"</ETag></CompleteMultipartUploadResult>",
		xmlEscape(bucket), xmlEscape(object), len(files))
}

// maxUploadsPerPage is the XML API's largest listing page (and its
// default).
const maxUploadsPerPage = 1000

// listUploads answers GET /bucket?uploads as GCS documents it: the open
// uploads of the bucket ordered by object name (and, for one name, by
// upload id, the order upload-id-marker continues in), filtered by
// prefix, rolled up into CommonPrefixes by delimiter, at most
// max-uploads (≤ 1000) per page, with NextKeyMarker and
// NextUploadIdMarker when truncated. It needs the same bearer token as
// the other multipart calls (ServeHTTP checked it).
func (s *Server) listUploads(w http.ResponseWriter, bucket string, q url.Values) {
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	if keyMarker == "" {
		idMarker = "" // ignored without a key marker
	}
	maxUploads := maxUploadsPerPage
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			xmlErr(w, http.StatusBadRequest, "InvalidArgument", "max-uploads must be a non-negative integer")
			return
		}
		maxUploads = min(n, maxUploadsPerPage)
	}
	urlEncode := false
	switch v := q.Get("encoding-type"); v {
	case "":
	case "url":
		urlEncode = true
	default:
		xmlErr(w, http.StatusBadRequest, "InvalidArgument", "encoding-type must be url")
		return
	}
	type entry struct {
		key, id, prefix string // prefix: a CommonPrefixes entry
		initiated       time.Time
	}
	s.mu.Lock()
	var all []entry
	for id, u := range s.uploads {
		if u.bucket == bucket && strings.HasPrefix(u.object, prefix) {
			all = append(all, entry{key: u.object, id: id, initiated: u.initiated})
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].key != all[j].key {
			return all[i].key < all[j].key
		}
		return all[i].id < all[j].id
	})
	var page []entry
	truncated := false
	seenPrefix := map[string]bool{}
	for _, e := range all {
		// After the markers: names greater than key-marker, or equal to
		// it with an upload id greater than upload-id-marker.
		if keyMarker != "" && (e.key < keyMarker || e.key == keyMarker && (idMarker == "" || e.id <= idMarker)) {
			continue
		}
		if delim != "" {
			if i := strings.Index(e.key[len(prefix):], delim); i >= 0 {
				cp := e.key[:len(prefix)+i+len(delim)]
				if seenPrefix[cp] || keyMarker != "" && cp <= keyMarker {
					continue
				}
				seenPrefix[cp] = true
				e = entry{prefix: cp, key: cp}
			}
		}
		if len(page) == maxUploads {
			truncated = true
			break
		}
		page = append(page, e)
	}
	enc := func(v string) string {
		if urlEncode {
			v = url.QueryEscape(v)
		}
		return xmlEscape(v)
	}
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='UTF-8'?><ListMultipartUploadsResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>")
	fmt.Fprintf(&b, "<Bucket>%s</Bucket><KeyMarker>%s</KeyMarker><UploadIdMarker>%s</UploadIdMarker>", xmlEscape(bucket), enc(keyMarker), xmlEscape(idMarker))
	if truncated && len(page) > 0 {
		last := page[len(page)-1]
		fmt.Fprintf(&b, "<NextKeyMarker>%s</NextKeyMarker><NextUploadIdMarker>%s</NextUploadIdMarker>", enc(last.key), xmlEscape(last.id))
	}
	if delim != "" {
		fmt.Fprintf(&b, "<Delimiter>%s</Delimiter>", enc(delim))
	}
	fmt.Fprintf(&b, "<Prefix>%s</Prefix><MaxUploads>%d</MaxUploads><IsTruncated>%t</IsTruncated>", enc(prefix), maxUploads, truncated)
	if urlEncode {
		b.WriteString("<EncodingType>url</EncodingType>")
	}
	for _, e := range page {
		if e.prefix != "" {
			fmt.Fprintf(&b, "<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>", enc(e.prefix))
			continue
		}
		fmt.Fprintf(&b, "<Upload><Key>%s</Key><UploadId>%s</UploadId><StorageClass>STANDARD</StorageClass><Initiated>%s</Initiated></Upload>",
			enc(e.key), xmlEscape(e.id), e.initiated.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString("</ListMultipartUploadsResult>")
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, b.String())
}
