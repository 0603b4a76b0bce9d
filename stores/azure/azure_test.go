package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/stores"
	"github.com/ferryml/ferry/stores/storetest"
	"github.com/ferryml/ferry/test/backends/azuritesrv"
)

// testPrefix is the name prefix every test store writes under; blobs
// planted beside it must survive everything the store does.
const testPrefix = "ferry/artifacts"

// envConfig builds a Config the way production does, from a URI and an
// environment.
func envConfig(t testing.TB, uri string, env map[string]string) Config {
	t.Helper()
	u, err := stores.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromEnv(u, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// containerSAS is a SAS token with every blob permission on cont, signed
// with the account key (what an operator would put in
// AZURE_STORAGE_SAS_TOKEN).
func containerSAS(t testing.TB, srv *azuritesrv.Server, cont string) string {
	t.Helper()
	cc := srv.Client(t, nil).ServiceClient().NewContainerClient(cont)
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}
	u, err := cc.GetSASURL(perms, time.Now().Add(2*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, q, _ := strings.Cut(u, "?")
	return q
}

// credEnvs are the credential environments tested against Azurite.
func credEnvs(t testing.TB, srv *azuritesrv.Server, cont string) map[Credential]map[string]string {
	return map[Credential]map[string]string{
		CredConnectionString: {"AZURE_STORAGE_CONNECTION_STRING": srv.ConnectionString()},
		CredAccountKey:       {"FERRY_AZURE_BLOB_ENDPOINT_URL": srv.Endpoint, "AZURE_STORAGE_ACCESS_KEY": azuritesrv.Key},
		CredSAS:              {"FERRY_AZURE_BLOB_ENDPOINT_URL": srv.Endpoint, "AZURE_STORAGE_SAS_TOKEN": containerSAS(t, srv, cont)},
	}
}

// plantNeighbours puts blobs beside the store's prefix and checks at
// cleanup that they are untouched.
func plantNeighbours(t *testing.T, srv *azuritesrv.Server, cont string) {
	t.Helper()
	c := srv.Client(t, nil)
	names := []string{"outside.txt", testPrefix + "-sibling/x", "ferry/artifact"}
	for _, n := range names {
		if _, err := c.UploadBuffer(context.Background(), cont, n, []byte(n), nil); err != nil {
			t.Fatalf("plant %s: %v", n, err)
		}
	}
	t.Cleanup(func() {
		for _, n := range names {
			if _, err := c.ServiceClient().NewContainerClient(cont).NewBlobClient(n).GetProperties(context.Background(), nil); err != nil {
				t.Errorf("blob %q outside the store's prefix is gone: %v", n, err)
			}
		}
	})
}

func instrument(s stores.Store) stores.Store {
	return stores.Instrument(s, "azure", stores.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
}

func newTestStore(t testing.TB, cfg Config) stores.Store {
	t.Helper()
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the shared store suite on Azurite with an account
// key and with a connection string (both presign and multipart); the SAS
// token path, which differs only in how the client is built and cannot
// sign, gets TestSASToken.
func TestConformance(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	for _, kind := range []Credential{CredAccountKey, CredConnectionString} {
		t.Run(string(kind), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) stores.Store {
				cont := srv.Container(t, nil)
				plantNeighbours(t, srv, cont)
				cfg := envConfig(t, azuritesrv.URI(cont, testPrefix), credEnvs(t, srv, cont)[kind])
				if cfg.Cred != kind {
					t.Fatalf("credential %s, want %s", cfg.Cred, kind)
				}
				s := newTestStore(t, cfg)
				_, signing := s.(*SigningStore)
				if signing != (kind != CredSAS) {
					t.Fatalf("credential %s: signing store %v", kind, signing)
				}
				return instrument(s)
			})
		})
	}
}

// TestSASToken: with AZURE_STORAGE_SAS_TOKEN the store reads, writes,
// lists and deletes on Azurite, has no presign or multipart capability (it
// cannot sign), and a tampered token is refused with ErrPermission.
func TestSASToken(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	plantNeighbours(t, srv, cont)
	env := credEnvs(t, srv, cont)[CredSAS]
	s := newTestStore(t, envConfig(t, azuritesrv.URI(cont, testPrefix), env))
	if _, ok := stores.As[stores.Presigner](s); ok {
		t.Fatal("a SAS-token store claims it can presign")
	}
	if _, ok := stores.As[stores.Multiparter](s); ok {
		t.Fatal("a SAS-token store claims it can run presigned multipart uploads")
	}
	ctx := t.Context()
	data := make([]byte, 2<<20+3)
	_, _ = rand.Read(data)
	if err := s.Put(ctx, "d/x.bin", bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	rc, e, err := s.Open(ctx, "d/x.bin", 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data[5:15]) || e.Size != int64(len(data)) {
		t.Fatalf("ranged read: %d bytes, size %d", len(got), e.Size)
	}
	if l, err := s.List(ctx, "", stores.ListPage{}); err != nil || len(l.Entries) != 1 || l.Entries[0].Key != "d" || !l.Entries[0].IsDir {
		t.Fatalf("List = %+v, %v", l.Entries, err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "d/x.bin"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Stat after Delete = %v", err)
	}
	q, err := url.ParseQuery(env["AZURE_STORAGE_SAS_TOKEN"])
	if err != nil {
		t.Fatal(err)
	}
	q.Set("sp", "r") // permissions other than the signed ones
	bad := map[string]string{"FERRY_AZURE_BLOB_ENDPOINT_URL": srv.Endpoint, "AZURE_STORAGE_SAS_TOKEN": q.Encode()}
	s = newTestStore(t, envConfig(t, azuritesrv.URI(cont, testPrefix), bad))
	if err := s.Put(ctx, "d/y", strings.NewReader("y"), 1); !errors.Is(err, stores.ErrPermission) {
		t.Fatalf("Put with a tampered SAS token = %v; want ErrPermission", err)
	}
}

// TestBlocks checks how Puts reach Azure: a body that fits one block as
// one Put Blob, a longer one as staged blocks committed at the end, with
// known and unknown sizes; and that failed Puts commit nothing, not even
// over an existing blob.
func TestBlocks(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	cfg := envConfig(t, azuritesrv.URI(cont, testPrefix), credEnvs(t, srv, cont)[CredAccountKey])
	cfg.BlockSize = 1 << 20
	s := newTestStore(t, cfg)
	cc := srv.Client(t, nil).ServiceClient().NewContainerClient(cont)
	data := make([]byte, 3<<20+5)
	_, _ = rand.Read(data)

	tests := []struct {
		name       string
		size       int
		announced  bool
		wantBlocks int // 0: one Put Blob
	}{
		{"below one block", 1<<20 - 1, true, 0},
		{"exactly one block", 1 << 20, true, 1},
		{"four blocks", 3<<20 + 5, true, 4},
		{"unknown size, below one block", 1000, false, 0},
		{"unknown size, four blocks", 3<<20 + 5, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "blocks/" + strings.ReplaceAll(tt.name, " ", "-")
			size := int64(tt.size)
			if !tt.announced {
				size = -1
			}
			if err := s.Put(t.Context(), key, bytes.NewReader(data[:tt.size]), size); err != nil {
				t.Fatalf("Put: %v", err)
			}
			bl, err := cc.NewBlockBlobClient(testPrefix+"/"+key).GetBlockList(t.Context(), "committed", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(bl.CommittedBlocks); got != tt.wantBlocks {
				t.Fatalf("committed as %d blocks; want %d", got, tt.wantBlocks)
			}
			rc, e, err := s.Open(t.Context(), key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data[:tt.size]) || e.Size != int64(tt.size) {
				t.Fatalf("read back %d bytes (size %d), %v; content differs", len(got), e.Size, err)
			}
		})
	}

	old := []byte("the old version")
	if err := s.Put(t.Context(), "blocks/failed", bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	failures := []struct {
		name    string
		r       io.Reader
		size    int64
		wantErr error
	}{
		{"short body in the third block", bytes.NewReader(data[:2<<20+7]), 3 << 20, stores.ErrIncomplete},
		{"body fails in the third block", io.MultiReader(bytes.NewReader(data[:2<<20+9]), errorReader{}), 3 << 20, errBody},
		{"unknown size, body fails in the second block", io.MultiReader(bytes.NewReader(data[:1<<20+1]), errorReader{}), -1, errBody},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(t.Context(), "blocks/failed", tt.r, tt.size); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put = %v; want %v", err, tt.wantErr)
			}
			rc, _, err := s.Open(t.Context(), "blocks/failed", 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, old) {
				t.Fatalf("after a failed Put the blob holds %d bytes, not the old version", len(got))
			}
		})
	}
}

var errBody = errors.New("client went away")

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) { return 0, errBody }

// TestADLSFolders plants what an ADLS Gen2 account (hierarchical
// namespace) shows through the blob endpoint - directory blobs marked
// hdi_isfolder, an empty directory among them - and checks that an
// abfss:// store lists them as directories, reads through them and
// deletes them, deepest first. (Azurite has no hierarchical namespace;
// the folder blobs are made by hand.)
func TestADLSFolders(t *testing.T) {
	srv := azuritesrv.Start(t, azuritesrv.Options{})
	cont := srv.Container(t, nil)
	uri := "abfss://" + cont + "@" + azuritesrv.Account + ".dfs.core.windows.net/" + testPrefix
	cfg := envConfig(t, uri, map[string]string{
		"FERRY_AZURE_BLOB_ENDPOINT_URL": srv.Endpoint,
		"AZURE_STORAGE_SAS_TOKEN":       containerSAS(t, srv, cont),
	})
	s := newTestStore(t, cfg)
	if _, ok := s.(*SigningStore); ok {
		t.Fatal("abfss store has presign capabilities; upstream has none")
	}
	c := srv.Client(t, nil)
	folder := map[string]*string{"hdi_isfolder": ptr("true")}
	for _, d := range []string{"run", "run/model", "run/empty"} {
		if _, err := c.UploadBuffer(t.Context(), cont, testPrefix+"/"+d, nil, &azblob.UploadBufferOptions{Metadata: folder}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(t.Context(), "run/model/weights.bin", strings.NewReader("w"), 1); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(t.Context(), "run", stores.ListPage{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 2 || l.Entries[0].Key != "run/empty" || !l.Entries[0].IsDir || l.Entries[1].Key != "run/model" || !l.Entries[1].IsDir {
		t.Fatalf("List(run) = %+v; want the directories run/empty and run/model", l.Entries)
	}
	if e, err := s.Stat(t.Context(), "run/empty"); err != nil || !e.IsDir {
		t.Fatalf("Stat(run/empty) = %+v, %v; want a directory", e, err)
	}
	if _, _, err := s.Open(t.Context(), "run/model", 0, -1); !errors.Is(err, stores.ErrIsDir) {
		t.Fatalf("Open(run/model) = %v; want ErrIsDir", err)
	}
	if err := s.Delete(t.Context(), "run"); err != nil {
		t.Fatal(err)
	}
	pager := c.NewListBlobsFlatPager(cont, &container.ListBlobsFlatOptions{Prefix: ptr(testPrefix + "/")})
	for pager.More() {
		p, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Segment.BlobItems {
			t.Errorf("blob %s left after Delete(run)", *b.Name)
		}
	}
}

// TestConfigFromEnv checks URI forms and credential precedence.
func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		uri     string
		env     map[string]string
		want    Credential
		wantErr string
	}{
		{"wasbs://c1c@acct.blob.core.windows.net/p/q", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "x=y", "AZURE_STORAGE_ACCESS_KEY": "k"}, CredConnectionString, ""},
		{"wasbs://c1c@acct.blob.core.chinacloudapi.cn/p", map[string]string{"AZURE_STORAGE_ACCESS_KEY": "k", "AZURE_STORAGE_SAS_TOKEN": "sv=1"}, CredAccountKey, ""},
		{"wasbs://c1c@acct.blob.core.usgovcloudapi.net", map[string]string{"AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=x"}, CredSAS, ""},
		{"wasbs://c1c@acct.blob.core.windows.net/", nil, CredDefault, ""},
		{"abfss://fs1@acct.dfs.core.windows.net/a", nil, CredDefault, ""},
		{"wasbs://c1c@acct.dfs.core.windows.net/p", nil, "", "WASBS URI must be of the form"},
		{"wasbs://acct.blob.core.windows.net/p", nil, "", "must be of the form"},
		{"wasbs://c1c:secret@acct.blob.core.windows.net/p", nil, "", "carry no credentials"},
		{"wasbs://Bad_Name@acct.blob.core.windows.net/p", nil, "", "must be of the form"},
		{"wasbs://c1c@acct.blob.core.windows.net/p", map[string]string{"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "x"}, "", "whole number"},
		{"wasbs://c1c@acct.blob.core.windows.net/p", map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "yes"}, "", "MLFLOW_TRACKING_INSECURE_TLS"},
		{"wasbs://c1c@acct.blob.core.windows.net/p", map[string]string{"FERRY_AZURE_BLOB_ENDPOINT_URL": "ftp://x"}, "", "FERRY_AZURE_BLOB_ENDPOINT_URL"},
	}
	for _, tt := range tests {
		u, err := stores.ParseURI(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ConfigFromEnv(u, func(k string) string { return tt.env[k] })
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v; want %q", tt.uri, err, tt.wantErr)
			}
			continue
		}
		if err != nil || cfg.Cred != tt.want {
			t.Errorf("%s: cred %q, err %v; want %q", tt.uri, cfg.Cred, err, tt.want)
		}
		for _, v := range tt.env {
			if err != nil && strings.Contains(err.Error(), v) {
				t.Errorf("%s: error %q echoes a secret", tt.uri, err)
			}
		}
	}
	cfg := envConfig(t, "abfss://fs1@acct.dfs.core.windows.net/a%20b/c", nil)
	if cfg.Endpoint != "https://acct.blob.core.windows.net" || cfg.Container != "fs1" || cfg.Timeout != DefaultTimeout {
		t.Errorf("abfss config: %+v", cfg)
	}
	if got := blockSizeFor(DefaultBlockSize, 1<<40); got*MaxBlocks < 1<<40 {
		t.Errorf("block size %d cannot hold 1 TiB in %d blocks", got, MaxBlocks)
	}
}

// freeURL returns raw with the query parameter name replaced by value.
func freeURL(t testing.TB, raw, name, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// httpDo sends one request with http.DefaultClient and returns the
// response with its body read.
func httpDo(t testing.TB, method, u string, data []byte) (*http.Response, []byte) {
	t.Helper()
	return clientDo(t, http.DefaultClient, method, u, data)
}

// clientDo is httpDo with the client hc (a nil data sends no body).
func clientDo(t testing.TB, hc *http.Client, method, u string, data []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if data == nil {
		req.Body = nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
