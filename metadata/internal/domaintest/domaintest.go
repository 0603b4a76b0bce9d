// Package domaintest holds the test helpers the metadata domain packages
// (tracking, later registry and tracing) share: a loop over the three
// database backends with a freshly opened database each, and a request
// helper for handler tests that serves a domain through the route table.
package domaintest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/routes"
)

// Quiet discards logs.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// ForEachBackend runs fn as a parallel subtest (named after the backend)
// on SQLite, PostgreSQL and MariaDB, each with a fresh database opened by
// metadata.Open (upstream's head schema) and closed when the subtest ends.
// A backend that cannot be reached fails the test (see testdb).
func ForEachBackend(t *testing.T, fn func(t *testing.T, db *metadata.DB)) {
	t.Helper()
	for _, b := range testdb.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			db, err := metadata.Open(context.Background(), b.URI, Quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			fn(t, db)
		})
	}
}

// Client sends requests to a fiber app in-process (no network).
type Client struct {
	T   *testing.T
	App *fiber.App
}

// NewClient serves hs through the route table, as the server does (no
// static prefix), with the server's streaming request bodies.
func NewClient(t *testing.T, hs routes.Handlers) *Client {
	app := fiber.New(fiber.Config{StreamRequestBody: true, DisableStartupMessage: true})
	routes.All.Mount(app, app, hs, nil)
	return &Client{T: t, App: app}
}

// Raw sends a request and returns the status and the body as text;
// contentType "" sends none.
func (c *Client) Raw(method, path, contentType, body string) (int, string) {
	c.T.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.App.Test(req, 30000)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// Do is Raw for a JSON answer: it decodes the body into a map and fails
// the test on a non-JSON body.
func (c *Client) Do(method, path, contentType, body string) (int, map[string]any) {
	c.T.Helper()
	st, raw := c.Raw(method, path, contentType, body)
	out := map[string]any{}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		c.T.Fatalf("%s %s: non-JSON body %q", method, path, raw)
	}
	return st, out
}

// Get sends a GET (HEAD when head is set) with the extra headers and
// returns the response with its whole body, for handlers that answer with
// file bytes rather than JSON.
func (c *Client) Get(path string, head bool, headers map[string]string) (*http.Response, string) {
	c.T.Helper()
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	req := httptest.NewRequest(method, path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.App.Test(req, 30000)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Fatal(err)
	}
	return resp, string(raw)
}

// HostilePaths are artifact paths (as the handler sees a query value,
// after one decoding) that must never reach outside an artifact root:
// traversal in every encoding, absolute and Windows paths, backslashes,
// NUL, file: URIs, /proc tricks. The download routes answer each with 400.
var HostilePaths = []string{
	"..", "../secret.txt", "../../secret.txt", "a/../../secret.txt", "model/../../secret.txt",
	"%2e%2e/secret.txt", "%2E%2E%2F%2E%2E%2Fsecret.txt", "%252e%252e%252fsecret.txt",
	"%25252E%25252E%25252Fsecret.txt", "..%2fsecret.txt", "..%5csecret.txt", `..\secret.txt`, `..\..\secret.txt`,
	"/etc/passwd", "%2Fetc%2Fpasswd", "%252Fetc%252Fpasswd", "//proc/self/root/etc/passwd", "/proc/self/environ",
	"/etc/passwd%00.txt", "a\x00b", "..%00/secret.txt", "file:///etc/passwd", "file:../secret.txt", "FILE:/etc/passwd",
	"C:/Windows/win.ini", `C:\Windows\win.ini`, `\\server\share\x`, "a%23/../../secret.txt", "a?x=/../../secret.txt",
	"\xff\xfe.txt",
}

// HandlersMatchRouteTable fails t unless the routes the table marks as
// served by provider are exactly the keys of hs.
func HandlersMatchRouteTable(t *testing.T, provider routes.Provider, hs routes.Handlers) {
	t.Helper()
	var table, served []string
	for _, rt := range routes.All {
		if rt.Provider == provider {
			table = append(table, rt.Key())
		}
	}
	for k := range hs {
		served = append(served, k)
	}
	sort.Strings(table)
	sort.Strings(served)
	if len(table) == 0 || strings.Join(table, "\n") != strings.Join(served, "\n") {
		t.Fatalf("route table marks %d routes as %s's, the handlers serve %d:\n%q\n%q", len(table), provider, len(served), table, served)
	}
}

// WriteFile writes content at path, making its directories, for tests
// that plant artifacts (and sentinels) on disk.
func WriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
