package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/registry/webhook"
	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// Webhooks live in the webhooks and webhook_events tables (workspace
// 'default'); deletion is soft (deleted_timestamp), as upstream, and a
// deleted webhook is invisible to every call.

// webhookRow is a stored webhook; secret is the Fernet token (never
// leaves the server).
type webhookRow struct {
	ID          string
	Name        string
	Description *string
	URL         string
	Status      string
	Events      []webhook.Event
	Created     int64
	Updated     int64
	secret      *string
}

// webhookPatch is webhooks/<id> PATCH: nil fields are left unchanged.
type webhookPatch struct {
	name, description, url, secret, status *string
	events                                 []webhook.Event
}

// webhookTarget is what a delivery needs of a subscribed webhook.
type webhookTarget struct {
	id, url string
	secret  *string
}

func webhookNotFound(id string) error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Webhook with ID %s not found.", id)
}

const webhookCols = "webhook_id, name, description, url, status, secret, creation_timestamp, last_updated_timestamp"

func scanWebhook(sc interface{ Scan(...any) error }) (*webhookRow, error) {
	var w webhookRow
	var desc, secret sql.NullString
	var created, updated sql.NullInt64
	if err := sc.Scan(&w.ID, &w.Name, &desc, &w.URL, &w.Status, &secret, &created, &updated); err != nil {
		return nil, err
	}
	w.Description, w.secret = nullable(desc), nullable(secret)
	w.Created, w.Updated = created.Int64, updated.Int64
	return &w, nil
}

// loadEvents fills the events of ws, in one query per 500 webhooks,
// ordered as stored (entity, action).
func loadEvents(ctx context.Context, tx *metadata.Tx, ws []*webhookRow) error {
	byID := map[string]*webhookRow{}
	for _, w := range ws {
		byID[w.ID] = w
	}
	for start := 0; start < len(ws); start += 500 {
		chunk := ws[start:min(start+500, len(ws))]
		args := make([]any, len(chunk))
		for i, w := range chunk {
			args[i] = w.ID
		}
		err := tx.Each(ctx, "SELECT webhook_id, entity, action FROM webhook_events WHERE webhook_id IN ("+metadata.Placeholders(len(args))+") ORDER BY webhook_id, entity, action", args,
			func(rows *sql.Rows) error {
				var id string
				var ev webhook.Event
				if err := rows.Scan(&id, &ev.Entity, &ev.Action); err != nil {
					return err
				}
				if w := byID[id]; w != nil {
					w.Events = append(w.Events, ev)
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	return nil
}

func insertEvents(ctx context.Context, tx *metadata.Tx, id string, events []webhook.Event) error {
	seen := map[webhook.Event]bool{}
	for _, ev := range events {
		if seen[ev] {
			continue
		}
		seen[ev] = true
		if _, err := tx.Exec(ctx, "INSERT INTO webhook_events (webhook_id, entity, action) VALUES (?, ?, ?)", id, ev.Entity, ev.Action); err != nil {
			return err
		}
	}
	return nil
}

func readWebhookTx(ctx context.Context, tx *metadata.Tx, id string) (*webhookRow, error) {
	w, err := scanWebhook(tx.QueryRow(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE workspace = 'default' AND deleted_timestamp IS NULL AND webhook_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhookNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return w, loadEvents(ctx, tx, []*webhookRow{w})
}

// insertWebhook is POST /webhooks; w.secret is already encrypted.
func (a *API) insertWebhook(ctx context.Context, w *webhookRow) (*webhookRow, error) {
	var out *webhookRow
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO webhooks ("+webhookCols+", workspace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'default')",
			w.ID, w.Name, w.Description, w.URL, w.Status, w.secret, w.Created, w.Updated); err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, w.ID, w.Events); err != nil {
			return err
		}
		var err error
		out, err = readWebhookTx(ctx, tx, w.ID)
		return err
	})
	return out, err
}

func (a *API) readWebhook(ctx context.Context, id string) (*webhookRow, error) {
	var out *webhookRow
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		var err error
		out, err = readWebhookTx(ctx, tx, id)
		return err
	})
	return out, err
}

// listWebhooks returns the page at offset (newest first) and whether more
// follow.
func (a *API) listWebhooks(ctx context.Context, max, offset int64) ([]*webhookRow, bool, error) {
	var out []*webhookRow
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		err := tx.Each(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE workspace = 'default' AND deleted_timestamp IS NULL ORDER BY creation_timestamp DESC, webhook_id"+fmt.Sprintf(" LIMIT %d OFFSET %d", max+1, offset),
			nil, func(rows *sql.Rows) error {
				w, err := scanWebhook(rows)
				if err == nil {
					out = append(out, w)
				}
				return err
			})
		if err != nil {
			return err
		}
		return loadEvents(ctx, tx, out)
	})
	more := int64(len(out)) > max
	if more {
		out = out[:max]
	}
	return out, more, err
}

// updateWebhook is PATCH /webhooks/<id>.
func (a *API) updateWebhook(ctx context.Context, id string, p webhookPatch) (*webhookRow, error) {
	var out *webhookRow
	err := a.db.Write(ctx, func(tx *metadata.Tx) error {
		if _, err := readWebhookTx(ctx, tx, id); err != nil {
			return err
		}
		sets := []string{"last_updated_timestamp = ?"}
		args := []any{a.nowMillis()}
		for _, f := range []struct {
			col string
			v   *string
		}{{"name", p.name}, {"description", p.description}, {"url", p.url}, {"secret", p.secret}, {"status", p.status}} {
			if f.v != nil {
				sets = append(sets, f.col+" = ?")
				args = append(args, *f.v)
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE webhooks SET "+strings.Join(sets, ", ")+" WHERE webhook_id = ?", append(args, id)...); err != nil {
			return err
		}
		if len(p.events) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM webhook_events WHERE webhook_id = ?", id); err != nil {
				return err
			}
			if err := insertEvents(ctx, tx, id, p.events); err != nil {
				return err
			}
		}
		var err error
		out, err = readWebhookTx(ctx, tx, id)
		return err
	})
	return out, err
}

// deleteWebhook is DELETE /webhooks/<id>: soft, as upstream.
func (a *API) deleteWebhook(ctx context.Context, id string) error {
	return a.db.Write(ctx, func(tx *metadata.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE webhooks SET deleted_timestamp = ? WHERE workspace = 'default' AND deleted_timestamp IS NULL AND webhook_id = ?", a.nowMillis(), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return webhookNotFound(id)
		}
		return nil
	})
}

// webhooksFor lists the active webhooks subscribed to ev.
func (a *API) webhooksFor(ctx context.Context, ev webhook.Event) ([]webhookTarget, error) {
	var out []webhookTarget
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		return tx.Each(ctx, `SELECT w.webhook_id, w.url, w.secret FROM webhooks w JOIN webhook_events e ON e.webhook_id = w.webhook_id
			WHERE w.workspace = 'default' AND w.deleted_timestamp IS NULL AND w.status = 'ACTIVE' AND e.entity = ? AND e.action = ?
			ORDER BY w.creation_timestamp, w.webhook_id`, []any{ev.Entity, ev.Action}, func(rows *sql.Rows) error {
			var t webhookTarget
			var secret sql.NullString
			if err := rows.Scan(&t.id, &t.url, &secret); err != nil {
				return err
			}
			t.secret = nullable(secret)
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// modelIsPrompt reports whether the registered model carries
// mlflow.prompt.is_prompt=true (a missing model is not a prompt).
func (a *API) modelIsPrompt(ctx context.Context, name string) (bool, error) {
	var prompt bool
	err := a.db.Read(ctx, func(tx *metadata.Tx) error {
		return tx.Each(ctx, "SELECT value FROM registered_model_tags WHERE workspace = 'default' AND "+tx.Dialect().Quote("key")+" = ? AND "+nameEq(tx.Dialect()),
			[]any{search.PromptTag, name}, func(rows *sql.Rows) error {
				var v sql.NullString
				if err := rows.Scan(&v); err != nil {
					return err
				}
				prompt = prompt || strings.EqualFold(v.String, "true")
				return nil
			})
	})
	return prompt, err
}
