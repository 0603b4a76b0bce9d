package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/internal/testdb"
	"github.com/ferryml/ferry/routes"
)

// BenchmarkCreateModelWebhookCost compares registered-models/create on
// SQLite with no webhook against the same call with one webhook
// subscribed to REGISTERED_MODEL CREATED (delivered to a local receiver,
// default 60 s cache): the difference is what emitting costs the call.
// Run with -count to alternate the two.
func BenchmarkCreateModelWebhookCost(b *testing.B) {
	for _, subscribed := range []bool{false, true} {
		name := "no-webhook"
		if subscribed {
			name = "webhook-subscribed"
		}
		b.Run(name, func(b *testing.B) {
			db, err := metadata.Open(context.Background(), testdb.SQLite(b).URI, domaintest.Quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s := hookSettings()
			s.CacheTTL = time.Minute
			api := NewAPI(db, Config{Log: domaintest.Quiet, Webhooks: s})
			app := fiber.New(fiber.Config{StreamRequestBody: true, DisableStartupMessage: true})
			routes.All.Mount(app, app, api.Handlers(), nil)
			post := func(path, body string) {
				req := httptest.NewRequest("POST", "/api/2.0/mlflow"+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := app.Test(req, -1)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %v %v", path, resp, err)
				}
				resp.Body.Close()
			}
			if subscribed {
				rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				defer rcv.Close()
				post("/webhooks", `{"name":"b","url":"`+rcv.URL+`","events":[{"entity":"REGISTERED_MODEL","action":"CREATED"}]}`)
			}
			b.ResetTimer()
			for i := range b.N {
				post("/registered-models/create", fmt.Sprintf(`{"name":"m%d"}`, i))
			}
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			api.Close(ctx)
		})
	}
}
