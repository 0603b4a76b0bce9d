package registry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/metadata"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/registry/webhook"
	"github.com/ferryml/ferry/test/ferrytest"
)

// hookSettings deliver to local receivers quickly: http and private
// addresses allowed, no cache, millisecond backoff.
func hookSettings() *webhook.Settings {
	s := webhook.DefaultSettings()
	s.Schemes = []string{"http", "https"}
	s.AllowPrivate = true
	s.CacheTTL = 0
	s.Backoff, s.Jitter = time.Millisecond, 0
	s.Timeout = 10 * time.Second
	s.EncryptionKey = "pTFqrmYwQfkXbSwOI72BbrJXsZ0vsYr3L6OjSfwrbLU="
	return &s
}

func newHookClient(t *testing.T, db *metadata.DB, s *webhook.Settings, log *slog.Logger) (client, *API) {
	if log == nil {
		log = domaintest.Quiet
	}
	api := NewAPI(db, Config{Log: log, Webhooks: s})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		api.Close(ctx)
	})
	return client{domaintest.NewClient(t, api.Handlers())}, api
}

// delivery is what the receiver saw of one POST.
type delivery struct {
	Path, Entity, Action, Timestamp string
	Data                            map[string]any
	SigOK                           bool
	Header                          http.Header
}

// hookReceiver is a real HTTP receiver on 127.0.0.1: it checks each
// delivery's signature with secret (independently of package webhook),
// records it, and answers with status (200 when 0). While hold is
// non-nil, requests wait on it.
type hookReceiver struct {
	*httptest.Server
	secret string
	status int
	hold   chan struct{}
	mu     sync.Mutex
	got    []delivery
	notify chan struct{}
}

func newReceiver(t *testing.T, secret string) *hookReceiver {
	r := &hookReceiver{secret: secret, notify: make(chan struct{}, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.hold != nil {
		<-r.hold
	}
	body, _ := io.ReadAll(req.Body)
	var env struct {
		Entity, Action, Timestamp string
		Data                      map[string]any
	}
	json.Unmarshal(body, &env)
	id, ts := req.Header.Get("X-MLflow-Delivery-Id"), req.Header.Get("X-MLflow-Timestamp")
	m := hmac.New(sha256.New, []byte(r.secret))
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	sigOK := req.Header.Get("X-MLflow-Signature") == "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil))
	r.mu.Lock()
	r.got = append(r.got, delivery{req.URL.Path, env.Entity, env.Action, env.Timestamp, env.Data, sigOK, req.Header.Clone()})
	r.mu.Unlock()
	r.notify <- struct{}{}
	if r.status != 0 {
		w.WriteHeader(r.status)
	}
	io.WriteString(w, "received")
}

// wait returns the deliveries once n have arrived (fails after 30 s).
func (r *hookReceiver) wait(t *testing.T, n int) []delivery {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.got)
		r.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("%d deliveries after 30 s, want %d", got, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func TestWebhookCRUD(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c, api := newHookClient(t, db, hookSettings(), nil)
		out := c.ok("POST", "/webhooks", `{"name":"hook-1","url":"https://example.com/h","description":"d","secret":"s3cret",
			"events":[{"entity":"MODEL_VERSION","action":"CREATED"},{"entity":"REGISTERED_MODEL","action":"CREATED"},{"entity":"MODEL_VERSION","action":"CREATED"}]}`)
		w := obj(out, "webhook")
		id, _ := w["webhook_id"].(string)
		if id == "" || w["name"] != "hook-1" || w["url"] != "https://example.com/h" || w["description"] != "d" || w["status"] != "ACTIVE" ||
			js(w["events"]) != `[{"action":"CREATED","entity":"MODEL_VERSION"},{"action":"CREATED","entity":"REGISTERED_MODEL"}]` {
			t.Fatalf("create: %v", out)
		}
		if _, ok := w["secret"]; ok {
			t.Fatal("secret returned")
		}
		if _, ok := w["creation_timestamp"].(float64); !ok {
			t.Fatalf("creation_timestamp not a number: %v", w)
		}
		// At rest the secret is a Fernet token of the configured key.
		var stored string
		db.Read(context.Background(), func(tx *metadata.Tx) error {
			return tx.QueryRow(context.Background(), "SELECT secret FROM webhooks WHERE webhook_id = ?", id).Scan(&stored)
		})
		if plain, err := api.hooks.cipher.Decrypt(stored); err != nil || plain != "s3cret" || strings.Contains(stored, "s3cret") {
			t.Fatalf("stored secret %q: %q %v", stored, plain, err)
		}
		if got := c.ok("GET", "/webhooks/"+id, ""); js(got) != js(out) {
			t.Fatalf("get %v, create %v", got, out)
		}
		// Pagination, newest first.
		for i := 2; i <= 3; i++ {
			c.ok("POST", "/webhooks", fmt.Sprintf(`{"name":"hook-%d","url":"https://example.com/%d","events":[{"entity":"PROMPT_ALIAS","action":"DELETED"}],"status":"DISABLED"}`, i, i))
			time.Sleep(2 * time.Millisecond)
		}
		page := c.ok("GET", "/webhooks", "?max_results=2")
		hooks, _ := page["webhooks"].([]any)
		tok, _ := page["next_page_token"].(string)
		if len(hooks) != 2 || tok == "" {
			t.Fatalf("page 1: %v", page)
		}
		page2 := c.ok("GET", "/webhooks", "?max_results=2&page_token="+tok)
		hooks2, _ := page2["webhooks"].([]any)
		if len(hooks2) != 1 || page2["next_page_token"] != nil {
			t.Fatalf("page 2: %v", page2)
		}
		seen := map[any]bool{}
		for _, h := range append(hooks, hooks2...) {
			seen[h.(map[string]any)["name"]] = true
		}
		if len(seen) != 3 {
			t.Fatalf("pages overlap: %v %v", page, page2)
		}
		// Update: fields given change, "" and absent fields stay.
		up := obj(c.ok("PATCH", "/webhooks/"+id, `{"name":"renamed","description":"","status":"DISABLED","events":[{"entity":"MODEL_VERSION_TAG","action":"SET"}]}`), "webhook")
		if up["name"] != "renamed" || up["description"] != "d" || up["status"] != "DISABLED" || up["url"] != "https://example.com/h" ||
			js(up["events"]) != `[{"action":"SET","entity":"MODEL_VERSION_TAG"}]` {
			t.Fatalf("update: %v", up)
		}
		c.fails("PATCH", "/webhooks/"+id, `{"url":"ftp://x/"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: http, https.")
		c.fails("PATCH", "/webhooks/nope", `{"name":"x"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Webhook with ID nope not found.")
		// Delete is soft and final.
		c.ok("DELETE", "/webhooks/"+id, "")
		c.fails("GET", "/webhooks/"+id, "", 404, "RESOURCE_DOES_NOT_EXIST", "Webhook with ID "+id+" not found.")
		c.fails("DELETE", "/webhooks/"+id, "", 404, "RESOURCE_DOES_NOT_EXIST", "")
		if all := c.ok("GET", "/webhooks", ""); len(all["webhooks"].([]any)) != 2 {
			t.Fatalf("deleted webhook listed: %v", all)
		}
		// The /ajax-api mount serves the same routes.
		if st, _ := c.Do("GET", "/ajax-api/2.0/mlflow/webhooks", "", ""); st != 200 {
			t.Fatalf("ajax-api: %d", st)
		}
	})
}

func TestWebhookValidation(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		strict := webhook.DefaultSettings() // https only, private addresses refused
		c, _ := newHookClient(t, db, &strict, nil)
		ev := `"events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]`
		bad := "INVALID_PARAMETER_VALUE"
		c.fails("POST", "/webhooks", `{"url":"https://8.8.8.8/",`+ev+`}`, 400, bad, "Missing value for required parameter 'name'. See the API docs for more information about request parameters.")
		c.fails("POST", "/webhooks", `{"name":"h",`+ev+`}`, 400, bad, "Missing value for required parameter 'url'. See the API docs for more information about request parameters.")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/","events":[]}`, 400, bad, "Missing value for required parameter 'events'. See the API docs for more information about request parameters.")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/","events":"x"}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":5,"url":"https://8.8.8.8/",`+ev+`}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":"-bad","url":"https://8.8.8.8/",`+ev+`}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":"h","url":"http://8.8.8.8/",`+ev+`}`, 400, bad, "Invalid webhook URL scheme: 'http'. Allowed schemes are: https.")
		for _, u := range []string{"https://127.0.0.1/", "https://10.0.0.1/", "https://[::1]/", "https://169.254.169.254/latest/meta-data/", "https://localhost:8443/"} {
			st, out := c.call("POST", "/webhooks", `{"name":"h","url":"`+u+`",`+ev+`}`)
			if st != 400 || !strings.HasPrefix(fmt.Sprint(out["message"]), "Webhook URL must not resolve to a non-public IP address.") {
				t.Errorf("%s: %d %v", u, st, out)
			}
		}
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/","events":[{"entity":"MODEL_VERSION_TAG","action":"UPDATED"}]}`, 400, bad,
			"Invalid action 'updated' for entity 'model_version_tag'. Valid actions are: ['set', 'deleted']")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/","events":[{"entity":"NOPE","action":"CREATED"}]}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/",`+ev+`,"status":"PAUSED"}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/`+strings.Repeat("a", 500)+`",`+ev+`}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/\u0000",`+ev+`}`, 400, bad, "")
		c.fails("POST", "/webhooks", `{"name":"h","url":"https://8.8.8.8/","secret":"`+strings.Repeat("s", 688)+`",`+ev+`}`, 400, bad, "'secret' is too long: at most 687 bytes can be stored encrypted")
		c.ok("POST", "/webhooks", `{"name":"long-secret","url":"https://8.8.8.8/","secret":"`+strings.Repeat("s", 687)+`",`+ev+`}`)
		c.fails("GET", "/webhooks", "?max_results=0", 400, bad, "")
		c.fails("GET", "/webhooks", "?max_results=1001", 400, bad, "")
		c.fails("GET", "/webhooks", "?page_token=%25%25", 400, bad, "")
		c.fails("GET", "/webhooks/x'%20OR%20'1'='1", "", 404, "RESOURCE_DOES_NOT_EXIST", "")
		if all := c.ok("GET", "/webhooks", ""); len(all["webhooks"].([]any)) != 1 {
			t.Fatalf("refused webhooks were stored: %v", all)
		}
		c.ok("POST", "/webhooks", `{"name":"ok.hook_1","url":"https://8.8.8.8/",`+ev+`}`)
	})
}

// want is one expected delivery: the event and its data payload.
type want struct {
	entity, action string
	data           string
}

// TestWebhookDeliveries drives every registry change that has an event,
// for a model and for a prompt, and checks each delivery's event, payload
// and signature at a real receiver.
func TestWebhookDeliveries(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c, _ := newHookClient(t, db, hookSettings(), nil)
		rcv := newReceiver(t, "top-secret")
		var events []string
		for ent, acts := range map[string][]string{
			"REGISTERED_MODEL": {"CREATED"}, "MODEL_VERSION": {"CREATED"}, "MODEL_VERSION_TAG": {"SET", "DELETED"}, "MODEL_VERSION_ALIAS": {"CREATED", "DELETED"},
			"PROMPT": {"CREATED"}, "PROMPT_VERSION": {"CREATED"}, "PROMPT_TAG": {"SET", "DELETED"}, "PROMPT_VERSION_TAG": {"SET", "DELETED"}, "PROMPT_ALIAS": {"CREATED", "DELETED"},
		} {
			for _, a := range acts {
				events = append(events, fmt.Sprintf(`{"entity":%q,"action":%q}`, ent, a))
			}
		}
		c.ok("POST", "/webhooks", `{"name":"all","url":"`+rcv.URL+`/hook","secret":"top-secret","events":[`+strings.Join(events, ",")+`]}`)
		// A disabled webhook and one for another event get nothing.
		c.ok("POST", "/webhooks", `{"name":"off","url":"`+rcv.URL+`/off","status":"DISABLED","events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]}`)

		c.ok("POST", "/registered-models/create", `{"name":"m","description":"desc","tags":[{"key":"t","value":"1"}]}`)
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://bucket/path/model","run_id":"abc123","tags":[{"key":"vt","value":"x"}],"description":"v1"}`)
		c.ok("POST", "/model-versions/set-tag", `{"name":"m","version":"1","key":"k","value":"v"}`)
		c.ok("DELETE", "/model-versions/delete-tag", `{"name":"m","version":"1","key":"k"}`)
		c.ok("POST", "/registered-models/alias", `{"name":"m","alias":"champion","version":"1"}`)
		c.ok("DELETE", "/registered-models/alias", `{"name":"m","alias":"champion"}`)
		c.ok("POST", "/registered-models/set-tag", `{"name":"m","key":"no","value":"event"}`) // models' own tags have none

		c.ok("POST", "/registered-models/create", `{"name":"p","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"}]}`)
		c.ok("POST", "/model-versions/create", `{"name":"p","source":"dummy-source","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"},{"key":"mlflow.prompt.text","value":"Hi {{x}}"},{"key":"u","value":"1"}]}`)
		c.ok("POST", "/registered-models/set-tag", `{"name":"p","key":"pk","value":"pv"}`)
		c.ok("DELETE", "/registered-models/delete-tag", `{"name":"p","key":"pk"}`)
		c.ok("POST", "/model-versions/set-tag", `{"name":"p","version":"1","key":"k","value":"v"}`)
		c.ok("DELETE", "/model-versions/delete-tag", `{"name":"p","version":"1","key":"k"}`)
		c.ok("POST", "/registered-models/alias", `{"name":"p","alias":"prod","version":"1"}`)
		c.ok("DELETE", "/registered-models/alias", `{"name":"p","alias":"prod"}`)
		// A failed registry call sends nothing.
		c.call("POST", "/registered-models/create", `{"name":"m"}`)

		wants := []want{
			{"registered_model", "created", `{"description":"desc","name":"m","tags":{"t":"1"}}`},
			{"model_version", "created", `{"description":"v1","name":"m","run_id":"abc123","source":"s3://bucket/path/model","tags":{"vt":"x"},"version":"1"}`},
			{"model_version_tag", "set", `{"key":"k","name":"m","value":"v","version":"1"}`},
			{"model_version_tag", "deleted", `{"key":"k","name":"m","version":"1"}`},
			{"model_version_alias", "created", `{"alias":"champion","name":"m","version":"1"}`},
			{"model_version_alias", "deleted", `{"alias":"champion","name":"m"}`},
			{"prompt", "created", `{"description":"","name":"p","tags":{"mlflow.prompt.is_prompt":"true"}}`},
			{"prompt_version", "created", `{"description":null,"name":"p","tags":{"u":"1"},"template":"Hi {{x}}","version":"1"}`},
			{"prompt_tag", "set", `{"key":"pk","name":"p","value":"pv"}`},
			{"prompt_tag", "deleted", `{"key":"pk","name":"p"}`},
			{"prompt_version_tag", "set", `{"key":"k","name":"p","value":"v","version":"1"}`},
			{"prompt_version_tag", "deleted", `{"key":"k","name":"p","version":"1"}`},
			{"prompt_alias", "created", `{"alias":"prod","name":"p","version":"1"}`},
			{"prompt_alias", "deleted", `{"alias":"prod","name":"p"}`},
		}
		got := rcv.wait(t, len(wants))
		// Let stray deliveries (there must be none) arrive before counting.
		time.Sleep(300 * time.Millisecond)
		got = rcv.wait(t, len(wants))
		if len(got) != len(wants) {
			t.Fatalf("%d deliveries, want %d: %+v", len(got), len(wants), got)
		}
		byEvent := map[string]delivery{}
		for _, d := range got {
			if d.Path != "/hook" || !d.SigOK || d.Header.Get("Content-Type") != "application/json" {
				t.Errorf("delivery %s.%s to %s: signature ok=%v, headers %v", d.Entity, d.Action, d.Path, d.SigOK, d.Header)
			}
			if _, err := time.Parse("2006-01-02T15:04:05.000000+00:00", d.Timestamp); err != nil {
				t.Errorf("timestamp %q", d.Timestamp)
			}
			byEvent[d.Entity+"."+d.Action] = d
		}
		for _, w := range wants {
			d, ok := byEvent[w.entity+"."+w.action]
			if !ok {
				t.Errorf("no %s.%s delivery", w.entity, w.action)
				continue
			}
			if js(d.Data) != w.data {
				t.Errorf("%s.%s data %s, want %s", w.entity, w.action, js(d.Data), w.data)
			}
		}
	})
}

// A receiver that hangs or fails neither slows nor fails registry calls;
// failing deliveries are retried MaxRetries times.
func TestWebhookReceiverTroubleDoesNotReachRegistry(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c, api := newHookClient(t, db, hookSettings(), nil)
		hang := newReceiver(t, "")
		hang.hold = make(chan struct{})
		failing := newReceiver(t, "")
		failing.status = 503
		c.ok("POST", "/webhooks", `{"name":"hang","url":"`+hang.URL+`","events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]}`)
		c.ok("POST", "/webhooks", `{"name":"fail","url":"`+failing.URL+`","events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]}`)
		// Every call answers while the hanging receiver still holds its
		// first delivery: none waits for a delivery.
		for i := range 5 {
			c.ok("POST", "/registered-models/create", fmt.Sprintf(`{"name":"m%d"}`, i))
		}
		got := failing.wait(t, 5*4)
		if len(got) != 20 {
			t.Fatalf("failing receiver got %d attempts, want 5 deliveries x (1 + 3 retries)", len(got))
		}
		ids := map[string]int{}
		for _, d := range got {
			ids[d.Header.Get("X-MLflow-Delivery-Id")]++
		}
		for id, n := range ids {
			if n != 4 {
				t.Errorf("delivery %s attempted %d times, want 4", id, n)
			}
		}
		close(hang.hold)
		hang.wait(t, 5)
		if n := api.hooks.sender.Attempts.Load(); n != 25 {
			t.Errorf("attempts %d, want 25", n)
		}
		// ferry_webhook_deliveries_total: one count per delivery, not per
		// attempt; the counts land just after the receivers answered.
		waitCount(t, api, "registered_model.created", outcomeRefused, 5)
		waitCount(t, api, "registered_model.created", outcomeDelivered, 5)
		waitCount(t, api, "registered_model.created", outcomeFailed, 0)
	})
}

// waitCount waits up to 10 s for the deliveries counter of event and
// outcome to reach want, and fails if it ends elsewhere.
func waitCount(t *testing.T, api *API, event, outcome string, want float64) {
	t.Helper()
	c := api.hooks.deliveries.WithLabelValues(event, outcome)
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(c) < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(c); got != want {
		t.Errorf("ferry_webhook_deliveries_total{event=%q,outcome=%q} = %v; want %v", event, outcome, got, want)
	}
}

// With the queue full, events are dropped with a (rate-limited) log line
// and the registry call does not block.
func TestWebhookQueueFullDrops(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		s := hookSettings()
		s.Workers, s.QueueSize = 1, 1
		var logBuf ferrytest.LogBuffer
		c, api := newHookClient(t, db, s, slog.New(slog.NewTextHandler(&logBuf, nil)))
		hang := newReceiver(t, "")
		hang.hold = make(chan struct{})
		c.ok("POST", "/webhooks", `{"name":"hang","url":"`+hang.URL+`","events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]}`)
		c.ok("POST", "/registered-models/create", `{"name":"first"}`)
		for i := range 30 {
			c.ok("POST", "/registered-models/create", fmt.Sprintf(`{"name":"m%d"}`, i))
		}
		if api.hooks.pool.Dropped.Load() == 0 || !strings.Contains(logBuf.String(), "webhook delivery dropped") {
			t.Fatalf("no drop recorded: dropped=%d log=%s", api.hooks.pool.Dropped.Load(), logBuf.String())
		}
		if n := strings.Count(logBuf.String(), "webhook delivery dropped"); n > 3 {
			t.Errorf("%d drop log lines for one burst", n)
		}
		// Every drop is counted: here the event jobs themselves (one
		// worker, one queue slot), before their webhooks were looked up.
		dropped := testutil.ToFloat64(api.hooks.eventsDropped.WithLabelValues(dropQueueFull)) +
			testutil.ToFloat64(api.hooks.deliveries.WithLabelValues("registered_model.created", outcomeDropped))
		if n := api.hooks.pool.Dropped.Load(); dropped != float64(n) || n == 0 {
			t.Errorf("metrics count %v drops; the pool dropped %d", dropped, n)
		}
		close(hang.hold)
	})
}

func TestWebhookTestEndpoint(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c, _ := newHookClient(t, db, hookSettings(), nil)
		rcv := newReceiver(t, "sig")
		id := obj(c.ok("POST", "/webhooks", `{"name":"t","url":"`+rcv.URL+`/t","secret":"sig","events":[{"entity":"MODEL_VERSION","action":"CREATED"}]}`), "webhook")["webhook_id"].(string)
		res := obj(c.ok("POST", "/webhooks/"+id+"/test", `{}`), "result")
		if res["success"] != true || res["response_status"] != float64(200) || res["response_body"] != "received" || res["error_message"] != nil {
			t.Fatalf("test result %v", res)
		}
		d := rcv.wait(t, 1)[0]
		if d.Entity != "model_version" || !d.SigOK ||
			js(d.Data) != `{"description":"An example model version","name":"example_model","run_id":"abcd1234abcd5678","source":"models:/123","tags":{"example_key":"example_value"},"version":"1"}` {
			t.Fatalf("test delivery %+v", d)
		}
		res = obj(c.ok("POST", "/webhooks/"+id+"/test", `{"event":{"entity":"PROMPT_ALIAS","action":"DELETED"}}`), "result")
		if d := rcv.wait(t, 2)[1]; res["success"] != true || d.Entity != "prompt_alias" || js(d.Data) != `{"alias":"example_alias","name":"example_prompt"}` {
			t.Fatalf("explicit event: %v %+v", res, d)
		}
		rcv.status = 404
		res = obj(c.ok("POST", "/webhooks/"+id+"/test", ``), "result")
		if res["success"] != false || res["response_status"] != float64(404) {
			t.Fatalf("404 receiver: %v", res)
		}
		// A receiver that is gone is a failed result, not an error.
		gone := newReceiver(t, "")
		gone.Close()
		gid := obj(c.ok("POST", "/webhooks", `{"name":"g","url":"`+gone.URL+`","events":[{"entity":"MODEL_VERSION","action":"CREATED"}]}`), "webhook")["webhook_id"].(string)
		res = obj(c.ok("POST", "/webhooks/"+gid+"/test", `{}`), "result")
		if res["success"] != false || !strings.HasPrefix(fmt.Sprint(res["error_message"]), "Failed to test webhook: ") {
			t.Fatalf("gone receiver: %v", res)
		}
		c.fails("POST", "/webhooks/nope/test", `{}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
		c.fails("POST", "/webhooks/"+id+"/test", `{"event":{"entity":"MODEL_VERSION","action":"SET"}}`, 400, "INVALID_PARAMETER_VALUE", "")
	})
}

// A webhook row written by upstream MLflow (secret encrypted by Python's
// Fernet under the same key) is delivered with the right signature.
func TestWebhookUpstreamSecret(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c, _ := newHookClient(t, db, hookSettings(), nil)
		rcv := newReceiver(t, "my-webhook-secret")
		ctx := context.Background()
		err := db.Write(ctx, func(tx *metadata.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO webhooks (webhook_id, name, url, status, secret, creation_timestamp, last_updated_timestamp) VALUES (?, ?, ?, 'ACTIVE', ?, 1, 1)",
				"up-1", "upstream", rcv.URL, "gAAAAABrEvLHSgt7Or2R9b7BFKJJ5rFbbtYHkZs2Le_arme5yZJRWXm-RjcpoDUgw8jHxau_29ltVKzS31GupeeQmAUS--IfszdwlnvJQ88Vi-Dkuw3YzIU="); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO webhook_events (webhook_id, entity, action) VALUES ('up-1', 'registered_model', 'created')")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		if d := rcv.wait(t, 1)[0]; !d.SigOK {
			t.Fatalf("signature under upstream's secret does not verify: %+v", d)
		}
		if w := obj(c.ok("GET", "/webhooks/up-1", ""), "webhook"); js(w["events"]) != `[{"action":"CREATED","entity":"REGISTERED_MODEL"}]` {
			t.Fatalf("upstream row: %v", w)
		}
	})
}

// Close waits for queued deliveries (graceful shutdown).
func TestWebhookCloseDrains(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c, api := newHookClient(t, db, hookSettings(), nil)
		rcv := newReceiver(t, "")
		c.ok("POST", "/webhooks", `{"name":"h","url":"`+rcv.URL+`","events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]}`)
		for i := range 10 {
			c.ok("POST", "/registered-models/create", fmt.Sprintf(`{"name":"m%d"}`, i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := api.Close(ctx); err != nil {
			t.Fatal(err)
		}
		rcv.mu.Lock()
		n := len(rcv.got)
		rcv.mu.Unlock()
		if n != 10 {
			t.Fatalf("%d of 10 deliveries made before Close returned", n)
		}
	})
}
