package azure

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/test/backends/azuritesrv"
)

// accountHost is the production-style name of Azurite's account: the
// SDK takes the account name from the first label of the host when it
// fetches a user-delegation key, so the emulator is reached by this name
// (Azurite reads the account from it too), dialled at 127.0.0.1.
const accountHost = azuritesrv.Account + ".blob.localhost"

// testCert writes a self-signed certificate for accountHost and
// 127.0.0.1 and returns the cert and key paths and a pool trusting it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: accountHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{accountHost, "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// The identity in the fake token.
const (
	testOID = "11059fcc-5514-4800-b5f8-49808b9cfab6"
	testTID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// fakeToken is an Entra ID access token as Azurite's basic OAuth checks
// it: audience, issuer, lifetime, and the object and tenant ids a
// user-delegation key is derived from. Azurite does not check the
// signature.
func fakeToken(t *testing.T) string {
	t.Helper()
	now := time.Now().Unix()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tid := testTID
	return enc(map[string]any{"typ": "JWT", "alg": "RS256"}) + "." + enc(map[string]any{
		"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/" + tid + "/",
		"iat": now - 60, "nbf": now - 60, "exp": now + 3600,
		"oid": testOID, "tid": tid,
	}) + "." + base64.RawURLEncoding.EncodeToString([]byte("not-checked"))
}

// fakeIdentityEndpoint is the App Service managed-identity endpoint
// (IDENTITY_ENDPOINT, IDENTITY_HEADER) that DefaultAzureCredential asks
// for a token, as the S3 tests fake the EC2 instance metadata service.
func fakeIdentityEndpoint(t *testing.T, token string, calls *atomic.Int64) {
	t.Helper()
	const secret = "ferry-test-identity-header"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != secret || !strings.HasPrefix(r.URL.Query().Get("resource"), "https://storage.azure.com") {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"access_token": token, "token_type": "Bearer", "resource": "https://storage.azure.com",
			"expires_on": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
		})
	}))
	t.Cleanup(srv.Close)
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", secret)
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
}

// TestDefaultAzureCredential runs the token path end to end on Azurite
// with HTTPS and OAuth: DefaultAzureCredential gets a token from a fake
// managed-identity endpoint, Azurite accepts it, and, with no account
// key anywhere, presigned URLs are signed with a user-delegation key
// fetched from Azurite. The CA comes from
// MLFLOW_TRACKING_SERVER_CERT_PATH.
func TestDefaultAzureCredential(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	srv := azuritesrv.Start(t, azuritesrv.Options{CertFile: certFile, KeyFile: keyFile, OAuth: true})
	dialLocal := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == accountHost {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialLocal, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cont := srv.Container(t, hc)

	var calls atomic.Int64
	fakeIdentityEndpoint(t, fakeToken(t), &calls)
	_, port, _ := net.SplitHostPort(srv.Addr)
	cfg := envConfig(t, azuritesrv.URI(cont, testPrefix), map[string]string{
		"FERRY_AZURE_BLOB_ENDPOINT_URL":    "https://" + accountHost + ":" + port,
		"MLFLOW_TRACKING_SERVER_CERT_PATH": certFile,
	})
	if cfg.Cred != CredDefault {
		t.Fatalf("credential %s; want the default chain", cfg.Cred)
	}
	cfg.dial = dialLocal
	st := newTestStore(t, cfg)
	s, ok := st.(*SigningStore)
	if !ok {
		t.Fatal("a token credential gives no signing store")
	}
	ctx := t.Context()
	data := bytes.Repeat([]byte("ferry over oauth\n"), 100000)
	if err := s.Put(ctx, "o/model.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put with a bearer token: %v", err)
	}
	if calls.Load() == 0 {
		t.Fatal("the fake identity endpoint was never asked for a token")
	}
	l, err := s.List(ctx, "o", stores.ListPage{})
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Size != int64(len(data)) {
		t.Fatalf("List = %+v, %v", l.Entries, err)
	}

	rc, _, err := s.Open(ctx, "o/model.bin", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}

	// Presigning fetches a user-delegation key from Azurite with the
	// token and signs with it; Azurite (3.36+, which knows the 2026
	// string-to-sign layout azblob 1.8.3 signs in) verifies the signature,
	// so the URLs are used, and refused once tampered with.
	req, err := s.PresignGet(ctx, "o/model.bin", 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignGet with a user-delegation key: %v", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("skoid") != testOID || q.Get("sktid") != testTID || q.Get("sp") != "r" || q.Get("sr") != "b" || q.Get("sig") == "" {
		t.Fatalf("not a read user-delegation SAS for the token's identity: %s", req.URL)
	}
	if code, body := sasDo(t, hc, http.MethodGet, req.URL, nil); code != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET through the user-delegation SAS: %d, %d bytes; want 200 and the object", code, len(body))
	}
	for name, bad := range map[string]string{
		"signature changed":  freeURL(t, req.URL, "sig", "AAAA"+q.Get("sig")[4:]),
		"permission widened": freeURL(t, req.URL, "sp", "rw"),
		"other blob":         strings.Replace(req.URL, "model.bin?", "other.bin?", 1),
		"wrong key object":   freeURL(t, req.URL, "skoid", "00000000-0000-0000-0000-000000000000"),
	} {
		if code, _ := sasDo(t, hc, http.MethodGet, bad, nil); code != http.StatusForbidden {
			t.Errorf("%s: GET answered %d; want 403", name, code)
		}
	}

	up, err := s.CreateMultipart(ctx, "o/mpu.bin", 2)
	if err != nil || len(up.Parts) != 2 {
		t.Fatalf("CreateMultipart with a user-delegation key: %+v, %v", up, err)
	}
	if q := mustQuery(t, up.Parts[1].Request.URL); q.Get("sp") != "w" || q.Get("comp") != "block" || q.Get("skoid") != testOID {
		t.Fatalf("not a write block SAS: %s", up.Parts[1].Request.URL)
	}
	if code, _ := sasDo(t, hc, http.MethodPut, freeURL(t, up.Parts[0].Request.URL, "se", "2099-01-01T00:00:00Z"), data[:100]); code != http.StatusForbidden {
		t.Errorf("block PUT with a changed expiry answered %d; want 403", code)
	}
	halves := [][]byte{data[:len(data)/2], data[len(data)/2:]}
	var parts []stores.CompletedPart
	for i, p := range up.Parts {
		if code, body := sasDo(t, hc, http.MethodPut, p.Request.URL, halves[i]); code != http.StatusCreated {
			t.Fatalf("block PUT %d through the user-delegation SAS: %d %s", i+1, code, body)
		}
		parts = append(parts, stores.CompletedPart{PartNumber: p.PartNumber, URL: p.Request.URL})
	}
	if err := s.CompleteMultipart(ctx, "o/mpu.bin", up.UploadID, parts); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	rc, _, err = s.Open(ctx, "o/mpu.bin", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("multipart object read back %d bytes, want %d", len(got), len(data))
	}
	if err := s.Delete(ctx, "o"); err != nil {
		t.Fatal(err)
	}
}

// sasDo sends one request to a presigned URL and returns the status and body.
func sasDo(t *testing.T, hc *http.Client, method, rawURL string, body []byte) (int, []byte) {
	t.Helper()
	resp, b := clientDo(t, hc, method, rawURL, body)
	return resp.StatusCode, b
}
