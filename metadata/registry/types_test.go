package registry

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

// TestWrongTypeEveryRoute: every registry route answers a wrong JSON type
// with the same message as the tracking routes (wire.TypeError): the
// value as json.dumps shows it and Python's type name.
func TestWrongTypeEveryRoute(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		c.ok("POST", "/model-versions/create", `{"name":"m","source":"s3://b/m"}`)
		c.CheckWrongTypes(base, [][4]string{
			{"POST", "/registered-models/create", "name", ``},
			{"POST", "/registered-models/create", "description", `"name":"n"`},
			{"GET", "/registered-models/get", "name", ``},
			{"POST", "/registered-models/rename", "new_name", `"name":"m"`},
			{"PATCH", "/registered-models/update", "description", `"name":"m"`},
			{"DELETE", "/registered-models/delete", "name", ``},
			{"GET", "/registered-models/search", "filter", ``},
			{"GET", "/model-versions/search", "filter", ``},
			{"POST", "/registered-models/get-latest-versions", "name", ``},
			{"POST", "/registered-models/set-tag", "key", `"name":"m"`},
			{"DELETE", "/registered-models/delete-tag", "key", `"name":"m"`},
			{"POST", "/registered-models/alias", "alias", `"name":"m","version":"1"`},
			{"DELETE", "/registered-models/alias", "alias", `"name":"m"`},
			{"GET", "/registered-models/alias", "alias", `"name":"m"`},
			{"POST", "/model-versions/create", "source", `"name":"m"`},
			{"GET", "/model-versions/get", "name", `"version":"1"`},
			{"PATCH", "/model-versions/update", "description", `"name":"m","version":"1"`},
			{"DELETE", "/model-versions/delete", "name", `"version":"1"`},
			{"POST", "/model-versions/transition-stage", "stage", `"name":"m","version":"1"`},
			{"GET", "/model-versions/get-download-uri", "name", `"version":"1"`},
			{"POST", "/model-versions/set-tag", "value", `"name":"m","version":"1","key":"k"`},
			{"DELETE", "/model-versions/delete-tag", "key", `"name":"m","version":"1"`},
		})
		// Nothing above changed the model.
		if out := c.ok("GET", "/registered-models/get", q("name", "m")); !strings.Contains(js(out), `"name":"m"`) {
			t.Errorf("model: %v", out)
		}
	})
}
