package registry

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
	"github.com/ferryml/ferry/metadata/schema"
)

// Prompts are registered models and versions carrying the tag
// mlflow.prompt.is_prompt (spec §5.8); the MLflow client builds every
// prompt call from registry routes. These tests replay the 3.11 client's
// sequences (mlflow.genai.register_prompt, load_prompt, aliases,
// search_prompts) and check the server-side prompt rules.

const promptTag = `{"key":"mlflow.prompt.is_prompt","value":"true"}`

// registerPrompt replays register_prompt: get the model (404 for a new
// prompt), create it with the prompt tag, else set the prompt-level tags;
// create the version with the template as a tag; get the model again.
func registerPrompt(c client, name, template string, tags map[string]string) map[string]any {
	c.T.Helper()
	st, _ := c.call("GET", "/registered-models/get", q("name", name))
	var userTags []string
	for k, v := range tags {
		userTags = append(userTags, `{"key":`+js(k)+`,"value":`+js(v)+`}`)
	}
	if st == 404 {
		c.ok("POST", "/registered-models/create", `{"name":`+js(name)+`,"description":"first","tags":[`+strings.Join(append([]string{promptTag}, userTags...), ",")+`]}`)
	} else {
		for k, v := range tags {
			c.ok("POST", "/registered-models/set-tag", `{"name":`+js(name)+`,"key":`+js(k)+`,"value":`+js(v)+`}`)
		}
	}
	vtags := append(userTags, promptTag,
		`{"key":"mlflow.prompt.text","value":`+js(template)+`}`,
		`{"key":"_mlflow_prompt_type","value":"text"}`,
		`{"key":"_mlflow_prompt_model_config","value":"{\"model_name\": \"gpt-4o\", \"temperature\": 0.2}"}`,
		`{"key":"_mlflow_prompt_response_format","value":"{\"type\": \"object\"}"}`)
	out := c.ok("POST", "/model-versions/create", `{"name":`+js(name)+`,"source":"prompt-template","description":"msg","tags":[`+strings.Join(vtags, ",")+`]}`)
	c.ok("GET", "/registered-models/get", q("name", name))
	return obj(out, "model_version")
}

func jsonTags(v any) map[string]string {
	out := map[string]string{}
	l, _ := v.([]any)
	for _, x := range l {
		m := x.(map[string]any)
		out[m["key"].(string)] = m["value"].(string)
	}
	return out
}

func TestPromptLifecycle(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		long := strings.Repeat("Answer {{question}} in the style of {{style}}. ", 1200) // ~56 KB
		v1 := registerPrompt(c, "greet.v-1_x", "Hello {{name}}!", map[string]string{"author": "alice"})
		if v1["version"] != "1" || v1["source"] != "prompt-template" || v1["status"] != "READY" {
			t.Fatalf("v1: %v", v1)
		}
		v2 := registerPrompt(c, "greet.v-1_x", long, map[string]string{"author": "bob"})
		if v2["version"] != "2" {
			t.Fatalf("v2: %v", v2)
		}

		// load_prompt("prompts:/greet.v-1_x/2"): model (prompt check), then the version.
		m := obj(c.ok("GET", "/registered-models/get", q("name", "greet.v-1_x")), "registered_model")
		if tm := jsonTags(m["tags"]); tm["mlflow.prompt.is_prompt"] != "true" || tm["author"] != "bob" {
			t.Errorf("prompt tags: %v", m["tags"])
		}
		got := obj(c.ok("GET", "/model-versions/get", q("name", "greet.v-1_x", "version", "2")), "model_version")
		vt := jsonTags(got["tags"])
		if vt["mlflow.prompt.text"] != long || vt["_mlflow_prompt_type"] != "text" ||
			vt["_mlflow_prompt_model_config"] != `{"model_name": "gpt-4o", "temperature": 0.2}` || vt["author"] != "bob" {
			t.Errorf("version tags: %d-char text, %v", len(vt["mlflow.prompt.text"]), vt["_mlflow_prompt_model_config"])
		}

		// set_prompt_alias / load_prompt("prompts:/name@alias") / delete_prompt_alias
		c.ok("POST", "/registered-models/alias", `{"name":"greet.v-1_x","alias":"production","version":"1"}`)
		byAlias := obj(c.ok("GET", "/registered-models/alias", q("name", "greet.v-1_x", "alias", "production")), "model_version")
		if byAlias["version"] != "1" || jsonTags(byAlias["tags"])["mlflow.prompt.text"] != "Hello {{name}}!" {
			t.Errorf("by alias: %v", byAlias)
		}
		latest := obj(c.ok("GET", "/registered-models/alias", q("name", "greet.v-1_x", "alias", "latest")), "model_version")
		if latest["version"] != "2" {
			t.Errorf("@latest: %v", latest["version"])
		}
		c.ok("DELETE", "/registered-models/alias", `{"name":"greet.v-1_x","alias":"production"}`)
		c.fails("GET", "/registered-models/alias", q("name", "greet.v-1_x", "alias", "production"), 400, "INVALID_PARAMETER_VALUE",
			"Registered model alias production not found.")

		// version tags (set_prompt_version_tag / delete_prompt_version_tag), prompt tags
		c.ok("POST", "/model-versions/set-tag", `{"name":"greet.v-1_x","version":"1","key":"reviewed","value":"yes"}`)
		c.ok("DELETE", "/model-versions/delete-tag", `{"name":"greet.v-1_x","version":"1","key":"reviewed"}`)
		c.ok("POST", "/registered-models/set-tag", `{"name":"greet.v-1_x","key":"_mlflow_experiment_ids","value":",1,7,"}`)
		c.ok("DELETE", "/registered-models/delete-tag", `{"name":"greet.v-1_x","key":"author"}`)

		// a model next to the prompts
		c.ok("POST", "/registered-models/create", `{"name":"greeter-model"}`)
		c.ok("POST", "/model-versions/create", `{"name":"greeter-model","source":"s3://b/m"}`)
		registerPrompt(c, "other", "Bye {{name}}", nil)

		// search_prompts: the client prepends the prompt filter (backquoted
		// key) and turns experiment_id = 'N' into a LIKE on a dotless tag.
		for _, tc := range []struct{ filter, want string }{
			{"", "greet.v-1_x,other"},
			{" AND name LIKE 'greet%'", "greet.v-1_x"},
			{" AND tags._mlflow_experiment_ids LIKE '%,7,%'", "greet.v-1_x"},
			{" AND tags._mlflow_experiment_ids LIKE '%,8,%'", ""},
			{" AND name ILIKE 'OTH%'", "other"},
		} {
			out := c.ok("GET", "/registered-models/search", q("filter", "tags.`mlflow.prompt.is_prompt` = 'true'"+tc.filter, "max_results", "100"))
			if got := names(out["registered_models"], "name"); got != tc.want {
				t.Errorf("search_prompts %q: %q, want %q", tc.filter, got, tc.want)
			}
		}
		// Model searches leave prompts and their versions out.
		out := c.ok("GET", "/registered-models/search", q("max_results", "100"))
		if got := names(out["registered_models"], "name"); got != "greeter-model" {
			t.Errorf("search_registered_models: %q", got)
		}
		out = c.ok("GET", "/model-versions/search", q("filter", "name LIKE '%'"))
		if got := names(out["model_versions"], "version"); got != "greeter-model/1" {
			t.Errorf("search_model_versions: %q", got)
		}
		out = c.ok("GET", "/model-versions/search", q("filter", "name = 'greet.v-1_x' AND tags.`mlflow.prompt.is_prompt` = 'true'"))
		if got := names(out["model_versions"], "version"); got != "greet.v-1_x/2,greet.v-1_x/1" {
			t.Errorf("prompt versions: %q", got)
		}

		// delete_prompt_version, delete_prompt
		c.ok("DELETE", "/model-versions/delete", `{"name":"greet.v-1_x","version":"1"}`)
		c.fails("GET", "/model-versions/get", q("name", "greet.v-1_x", "version", "1"), 404, "RESOURCE_DOES_NOT_EXIST",
			"Model Version (name=greet.v-1_x, version=1) not found")
		c.ok("DELETE", "/registered-models/delete", `{"name":"greet.v-1_x"}`)
		c.fails("GET", "/registered-models/get", q("name", "greet.v-1_x"), 404, "RESOURCE_DOES_NOT_EXIST",
			"Registered Model with name=greet.v-1_x not found")
	})
}

// TestPromptModelNameClash: prompts and models share one name space;
// upstream's create names which kind holds the name.
func TestPromptModelNameClash(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"m"}`)
		c.ok("POST", "/registered-models/create", `{"name":"p","tags":[`+promptTag+`]}`)
		c.fails("POST", "/registered-models/create", `{"name":"m","tags":[`+promptTag+`]}`, 400, "RESOURCE_ALREADY_EXISTS",
			"Tried to create a prompt with name 'm', but the name is already taken by a registered model. MLflow does not allow creating a model and a prompt with the same name.")
		c.fails("POST", "/registered-models/create", `{"name":"p"}`, 400, "RESOURCE_ALREADY_EXISTS",
			"Tried to create a registered model with name 'p', but the name is already taken by a prompt. MLflow does not allow creating a model and a prompt with the same name.")
		c.fails("POST", "/registered-models/create", `{"name":"p","tags":[`+promptTag+`]}`, 400, "RESOURCE_ALREADY_EXISTS",
			"Prompt (name=p) already exists.")
		c.fails("POST", "/registered-models/create", `{"name":"m"}`, 400, "RESOURCE_ALREADY_EXISTS",
			"Registered Model (name=m) already exists.")
		// has_prompt_tag looks at the key only.
		c.ok("POST", "/registered-models/create", `{"name":"q","tags":[{"key":"mlflow.prompt.is_prompt","value":"false"}]}`)
		c.fails("POST", "/registered-models/create", `{"name":"q"}`, 400, "RESOURCE_ALREADY_EXISTS",
			"Tried to create a registered model with name 'q', but the name is already taken by a prompt. MLflow does not allow creating a model and a prompt with the same name.")
	})
}

// TestPromptVersionRules: prompt sources and the version-tag limits
// prompt templates meet.
func TestPromptVersionRules(t *testing.T) {
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		c.ok("POST", "/registered-models/create", `{"name":"p","tags":[`+promptTag+`]}`)
		for _, src := range []string{"file:///etc/passwd", "/etc/passwd", "file:relative"} {
			c.fails("POST", "/model-versions/create", `{"name":"p","source":`+js(src)+`,"tags":[`+promptTag+`]}`, 400, "INVALID_PARAMETER_VALUE",
				"Invalid prompt source: '"+src+"'. Local source paths are not allowed for prompts.")
		}
		for _, src := range []string{"prompt-template", "dummy-source"} {
			c.ok("POST", "/model-versions/create", `{"name":"p","source":`+js(src)+`,"tags":[`+promptTag+`]}`)
		}
		// upstream's version-tag value limit is 100000 characters
		big := strings.Repeat("x", maxVersionTagVal+1)
		c.fails("POST", "/model-versions/create", `{"name":"p","source":"prompt-template","tags":[`+promptTag+`,{"key":"mlflow.prompt.text","value":"`+big+`"}]}`,
			400, "INVALID_PARAMETER_VALUE", "'value' exceeds the maximum length of 100000 characters")
		// 60,000 characters of 2-byte UTF-8: within upstream's limit, over
		// MySQL's TEXT column.
		wide := strings.Repeat("é", 60000)
		st, out := c.call("POST", "/model-versions/set-tag", `{"name":"p","version":"1","key":"mlflow.prompt.text","value":"`+wide+`"}`)
		if db.Dialect() == schema.MySQL {
			if st != 400 || !strings.Contains(out["message"].(string), "65535 bytes") {
				t.Errorf("mysql long tag: %d %v", st, out)
			}
		} else if st != 200 {
			t.Errorf("long tag: %d %v", st, out)
		} else {
			mv := obj(c.ok("GET", "/model-versions/get", q("name", "p", "version", "1")), "model_version")
			if jsonTags(mv["tags"])["mlflow.prompt.text"] != wide {
				t.Errorf("long tag not stored whole")
			}
		}
	})
}
