package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/test/ferrytest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSignMatchesIndependentHMAC(t *testing.T) {
	t.Parallel()
	body := []byte(`{"entity": "model_version"}`)
	got := Sign("s3cr3t", "id-1", "1700000000", body)
	m := hmac.New(sha256.New, []byte("s3cr3t"))
	m.Write([]byte("id-1.1700000000." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// A token made by Python's cryptography.fernet (what upstream stores in
// webhooks.secret) decrypts here.
func TestCipherReadsUpstreamToken(t *testing.T) {
	t.Parallel()
	c, err := NewCipher("pTFqrmYwQfkXbSwOI72BbrJXsZ0vsYr3L6OjSfwrbLU=")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decrypt("gAAAAABrEvLHSgt7Or2R9b7BFKJJ5rFbbtYHkZs2Le_arme5yZJRWXm-RjcpoDUgw8jHxau_29ltVKzS31GupeeQmAUS--IfszdwlnvJQ88Vi-Dkuw3YzIU=")
	if err != nil || got != "my-webhook-secret" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	other, _ := NewCipher("")
	if _, err := other.Decrypt("gAAAAABrEvLHSgt7Or2R9b7BFKJJ5rFbbtYHkZs2Le_arme5yZJRWXm-RjcpoDUgw8jHxau_29ltVKzS31GupeeQmAUS--IfszdwlnvJQ88Vi-Dkuw3YzIU="); err == nil || !other.Ephemeral {
		t.Fatal("a token decrypted under another key")
	}
	for _, bad := range []string{"short", "pTFqrmYwQfkXbSwOI72BbrJXsZ0vsYr3L6OjSfwrbL", strings.Repeat("A", 64)} {
		if _, err := NewCipher(bad); err == nil {
			t.Errorf("NewCipher(%q) accepted", bad)
		}
	}
}

// A token made here decrypts in Python's cryptography.fernet (skipped
// where python3 with cryptography is missing).
func TestCipherTokenReadByPython(t *testing.T) {
	t.Parallel()
	if exec.Command("python3", "-c", "import cryptography.fernet").Run() != nil {
		t.Skip("python3 with cryptography not installed")
	}
	const key = "pTFqrmYwQfkXbSwOI72BbrJXsZ0vsYr3L6OjSfwrbLU="
	c, _ := NewCipher(key)
	tok, err := c.Encrypt("ferry-secret")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", "-c", "import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())", key, tok).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ferry-secret" {
		t.Fatalf("python: %s %v", out, err)
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "A1", "my-hook.v2_x", strings.Repeat("a", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "-a", "a-", "a b", strings.Repeat("a", 64), "a/b", "é"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	ev, err := ParseEvent("MODEL_VERSION_TAG", "SET")
	if err != nil || ev != (Event{ModelVersionTag, Set}) || ev.ProtoEntity() != "MODEL_VERSION_TAG" {
		t.Fatalf("%v %v", ev, err)
	}
	if ev, err := ParseEvent(float64(9), float64(3)); err != nil || ev != (Event{PromptAlias, Deleted}) {
		t.Fatalf("numbers: %v %v", ev, err)
	}
	_, err = ParseEvent("MODEL_VERSION_TAG", "UPDATED")
	if err == nil || !strings.HasPrefix(err.Error(), "Invalid action 'updated' for entity 'model_version_tag'") {
		t.Fatalf("bad combination: %v", err)
	}
	for _, bad := range [][2]any{{"NOPE", "CREATED"}, {"REGISTERED_MODEL", "x"}, {float64(0), "CREATED"}, {true, "CREATED"}, {nil, "CREATED"}, {"ENTITY_UNSPECIFIED", "CREATED"}} {
		if _, err := ParseEvent(bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// fakeDNS resolves names from a table, as a rebinding or internal DNS
// would answer.
func fakeDNS(table map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := table[host]; ok {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		return nil, &netErr{host}
	}
}

type netErr struct{ host string }

func (e *netErr) Error() string { return "no such host " + e.host }

func TestGuardRefusesNonPublic(t *testing.T) {
	t.Parallel()
	g := &Guard{Schemes: []string{"https", "http"}}
	ctx := context.Background()
	for _, u := range []string{
		"https://127.0.0.1/x", "https://10.1.2.3/", "https://[::1]:8443/", "http://169.254.169.254/latest/meta-data",
		"https://localhost/", "https://192.168.0.1/", "https://172.16.5.5/", "https://0.0.0.0/", "https://[::ffff:127.0.0.1]/",
		"https://100.64.0.1/", "https://[fe80::1]/", "https://[fd00::1]/",
	} {
		err := g.CheckURL(ctx, u)
		if err == nil || !strings.Contains(err.Error(), "must not resolve to a non-public IP address") {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := g.CheckURL(ctx, "https://does-not-exist.invalid/"); err == nil || !strings.HasPrefix(err.Error(), "Cannot resolve webhook URL hostname") {
		t.Errorf("unresolvable: %v", err)
	}
	if err := g.CheckURL(ctx, "https://8.8.8.8/hook"); err != nil {
		t.Errorf("public: %v", err)
	}
	if err := (&Guard{Schemes: []string{"https"}}).CheckURL(ctx, "http://8.8.8.8/"); err == nil || err.Error() != "Invalid webhook URL scheme: 'http'. Allowed schemes are: https." {
		t.Errorf("scheme: %v", err)
	}
	for _, bad := range []string{"", "https://", "https:///x", "file:///etc/passwd"} {
		if (&Guard{Schemes: []string{"https", "file"}}).CheckURL(ctx, bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := (&Guard{Schemes: []string{"https"}, AllowPrivate: true}).CheckURL(ctx, "https://127.0.0.1/"); err != nil {
		t.Errorf("allowed private: %v", err)
	}
	// A name that resolves to a private address.
	dns := &Guard{Schemes: []string{"https"}, LookupIP: fakeDNS(map[string]string{"internal.example": "10.0.0.7"})}
	if err := dns.CheckURL(ctx, "https://internal.example/"); err == nil {
		t.Error("internal name accepted")
	}
}

// The dialer refuses a private peer even when the URL passed validation
// (DNS rebinding): the check runs on the address being connected to.
func TestSenderRefusesPrivatePeerAtConnect(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	// Validation sees a public address; the connection goes to 127.0.0.1
	// (the system resolver answers "localhost" so at connect time).
	g := &Guard{Schemes: []string{"http"}, LookupIP: fakeDNS(map[string]string{"localhost": "93.184.216.34"})}
	s := testSender(g, 3)
	res := s.Send(context.Background(), Target{URL: "http://localhost:" + port + "/"}, Event{RegisteredModel, Created}, ModelCreated{Name: "m"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "blocked") || hits.Load() != 0 {
		t.Fatalf("rebinding not refused: %+v hits=%d", res, hits.Load())
	}
	if n := s.Attempts.Load(); n != 1 {
		t.Errorf("SSRF refusal retried: %d attempts", n)
	}
}

// A redirect from an accepted receiver to a private address is refused
// at connect time. Here 127.0.0.1 counts as public (the redirector) and
// 127.0.0.2 as private (the target).
func TestSenderRefusesRedirectToPrivate(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skip("127.0.0.2 not available:", err)
	}
	private := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	private.Listener.Close()
	private.Listener = ln
	private.Start()
	defer private.Close()
	redirector := httptest.NewServer(http.RedirectHandler(private.URL+"/meta", http.StatusTemporaryRedirect))
	defer redirector.Close()
	g := &Guard{Schemes: []string{"http"}, public: func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }}
	s := testSender(g, 2)
	res := s.Send(context.Background(), Target{URL: redirector.URL}, Event{RegisteredModel, Created}, ModelCreated{Name: "m"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "blocked") || hits.Load() != 0 {
		t.Fatalf("redirect followed to a private address: %+v hits=%d", res, hits.Load())
	}
	if s.Attempts.Load() != 1 {
		t.Errorf("refusal retried: %d attempts", s.Attempts.Load())
	}
	// Without the redirect the same guard reaches the redirector.
	g2 := &Guard{Schemes: []string{"http"}, public: g.public}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	if res := testSender(g2, 0).Send(context.Background(), Target{URL: ok.URL}, Event{RegisteredModel, Created}, ModelCreated{Name: "m"}); res.Err != nil || res.Status != 200 {
		t.Fatalf("public receiver: %+v", res)
	}
}

func testSender(g *Guard, retries int) *Sender {
	s := DefaultSettings()
	s.MaxRetries = retries
	s.Backoff, s.Jitter, s.Timeout = time.Millisecond, 0, 5*time.Second
	return NewSender(g, s, quiet)
}

type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP receiver on 127.0.0.1 that answers with the
// statuses in order (200 after the list ends).
func receiver(t *testing.T, statuses ...int) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(got)
		got = append(got, received{r.Header.Clone(), b})
		mu.Unlock()
		if n < len(statuses) {
			w.WriteHeader(statuses[n])
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func TestSenderSignsAndRetries(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t, 503, 500, 429)
	s := testSender(&Guard{Schemes: []string{"http"}, AllowPrivate: true}, 3)
	res := s.Send(context.Background(), Target{URL: srv.URL + "/hook", Secret: "k"}, Event{ModelVersionTag, Set}, VersionTagSet{"m", "1", "a", "b"})
	if res.Err != nil || res.Status != 200 || res.Body != "ok" {
		t.Fatalf("%+v", res)
	}
	rs := got()
	if len(rs) != 4 || s.Attempts.Load() != 4 {
		t.Fatalf("want 4 attempts, got %d (%d)", len(rs), s.Attempts.Load())
	}
	for _, r := range rs {
		id, ts := r.header.Get(HeaderDeliveryID), r.header.Get(HeaderTimestamp)
		if id != rs[0].header.Get(HeaderDeliveryID) || r.header.Get(HeaderSignature) != Sign("k", id, ts, r.body) {
			t.Fatalf("signature or delivery id differs across retries: %v", r.header)
		}
	}
	var env map[string]any
	if err := json.Unmarshal(rs[0].body, &env); err != nil {
		t.Fatal(err)
	}
	if env["entity"] != "model_version_tag" || env["action"] != "set" ||
		string(mustJSON(env["data"])) != `{"key":"a","name":"m","value":"b","version":"1"}` {
		t.Fatalf("body %s", rs[0].body)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000+00:00", env["timestamp"].(string)); err != nil {
		t.Errorf("timestamp %v: %v", env["timestamp"], err)
	}
}

func TestSenderGivesUpAfterMaxRetries(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t, 500, 500, 500, 500, 500)
	s := testSender(&Guard{Schemes: []string{"http"}, AllowPrivate: true}, 2)
	res := s.Send(context.Background(), Target{URL: srv.URL}, Event{RegisteredModel, Created}, ModelCreated{Name: "m"})
	if res.Status != 500 || len(got()) != 3 {
		t.Fatalf("%+v after %d attempts", res, len(got()))
	}
	// A 4xx other than 429 is final at once, and an unsigned delivery
	// has no signature header.
	srv2, got2 := receiver(t, 400)
	res = s.Send(context.Background(), Target{URL: srv2.URL}, Event{RegisteredModel, Created}, ModelCreated{Name: "m"})
	if res.Status != 400 || len(got2()) != 1 || got2()[0].header.Get(HeaderSignature) != "" {
		t.Fatalf("%+v after %d attempts", res, len(got2()))
	}
}

func TestBackoffIsUrllib3s(t *testing.T) {
	t.Parallel()
	s := &Sender{s: Settings{MaxRetries: 5, Backoff: time.Second, BackoffMax: 3 * time.Second}}
	var waits []time.Duration
	for a := 0; a < 5; a++ {
		_, w := s.shouldRetry(Result{Status: 503}, a)
		waits = append(waits, w)
	}
	want := []time.Duration{0, 2 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if ok, w := s.shouldRetry(Result{Status: 429, retryAfter: 2 * time.Second}, 0); !ok || w != 2*time.Second {
		t.Errorf("Retry-After: %v %v", ok, w)
	}
	if ok, _ := s.shouldRetry(Result{Status: 503}, 5); ok {
		t.Error("retried past MaxRetries")
	}
}

func TestPoolDropsWhenFullWithoutBlocking(t *testing.T) {
	t.Parallel()
	var logged ferrytest.LogBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	p := NewPool(1, 2, log)
	release := make(chan struct{})
	var ran atomic.Int64
	block := func(ctx context.Context) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		ran.Add(1)
	}
	start := time.Now()
	accepted := 0
	for range 100 {
		if p.Submit(block) {
			accepted++
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Submit blocked for %v", d)
	}
	// One running plus two queued at most (the worker may not have
	// taken the first job yet).
	if accepted < 2 || accepted > 3 || p.Dropped.Load() != int64(100-accepted) {
		t.Fatalf("accepted %d, dropped %d", accepted, p.Dropped.Load())
	}
	lines := strings.Count(logged.String(), "webhook delivery dropped")
	if lines != 1 {
		t.Errorf("want one rate-limited log line, got %d:\n%s", lines, logged.String())
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil || ran.Load() != int64(accepted) {
		t.Fatalf("Close: %v, ran %d of %d", err, ran.Load(), accepted)
	}
}

// Close gives up after its deadline and cancels running jobs.
func TestPoolCloseIsBounded(t *testing.T) {
	t.Parallel()
	p := NewPool(1, 4, quiet)
	cancelled := make(chan struct{})
	p.Submit(func(ctx context.Context) { <-ctx.Done(); close(cancelled) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err == nil {
		t.Error("Close reported a drain that did not happen")
	}
	<-cancelled
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	c := NewCache[string](time.Minute)
	now := time.Unix(0, 0)
	c.now = func() time.Time { return now }
	loads := 0
	load := func(context.Context) ([]string, error) { loads++; return []string{"w"}, nil }
	ev := Event{RegisteredModel, Created}
	for range 3 {
		c.Get(context.Background(), ev, load)
	}
	if loads != 1 {
		t.Fatalf("loads %d", loads)
	}
	now = now.Add(time.Minute)
	c.Get(context.Background(), ev, load)
	c.Invalidate()
	c.Get(context.Background(), ev, load)
	if loads != 3 {
		t.Fatalf("loads %d after expiry and invalidate", loads)
	}
	off := NewCache[string](0)
	off.Get(context.Background(), ev, load)
	off.Get(context.Background(), ev, load)
	if loads != 5 {
		t.Fatalf("TTL 0 cached: %d", loads)
	}
}

func TestSettingsFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvAllowedSchemes: "http, HTTPS", EnvAllowPrivate: "True", EnvMaxWorkers: "3", EnvTimeout: "2.5", EnvMaxRetries: "0", EnvCacheTTL: "0"}
	s, err := SettingsFromEnv(func(k string) string { return env[k] })
	if err != nil || strings.Join(s.Schemes, ",") != "http,https" || !s.AllowPrivate || s.Workers != 3 ||
		s.Timeout != 2500*time.Millisecond || s.MaxRetries != 0 || s.CacheTTL != 0 {
		t.Fatalf("%+v %v", s, err)
	}
	for k, v := range map[string]string{EnvAllowPrivate: "yes", EnvMaxWorkers: "0", EnvTimeout: "-1", EnvMaxRetries: "x"} {
		if _, err := SettingsFromEnv(func(n string) string { return map[string]string{k: v}[n] }); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
