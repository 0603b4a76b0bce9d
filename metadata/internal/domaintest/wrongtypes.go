package domaintest

import "net/http"

// wrongTypes are JSON values of every Python type, with upstream's
// rendering (json.dumps) in its type-error message.
var wrongTypes = []struct{ json, shown, typ string }{
	{`123`, `123`, "int"},
	{`1.5`, `1.5`, "float"},
	{`1e3`, `1000.0`, "float"},
	{`true`, `true`, "bool"},
	{`["a",1]`, `["a", 1]`, "list"},
	{`{"k":"v","n":{"x":[null]}}`, `{"k": "v", "n": {"x": [null]}}`, "dict"},
}

// CheckWrongTypes takes routes as {method, path, field, rest}, rest being
// more JSON members ("a":"b") a call needs to get as far as reading
// field. It sends each route a JSON body with a value of every wrong type
// in field (GET routes read a body when there is no query string) and
// wants upstream's 400 (spec tracking-api.md §1.2): `Invalid value
// <json.dumps(value)> for parameter '<field>' supplied: Hint: Value was
// of type '<Python type>'. See the API docs ...`. prefix is the API mount
// (/api/2.0/mlflow).
func (c *Client) CheckWrongTypes(prefix string, routes [][4]string) {
	c.T.Helper()
	for _, r := range routes {
		method, path, field, rest := r[0], r[1], r[2], r[3]
		for _, w := range wrongTypes {
			body := `{"` + field + `":` + w.json
			if rest != "" {
				body += "," + rest
			}
			body += "}"
			st, out := c.Do(method, prefix+path, "application/json", body)
			want := "Invalid value " + w.shown + " for parameter '" + field + "' supplied: Hint: Value was of type '" + w.typ +
				"'. See the API docs for more information about request parameters."
			if st != http.StatusBadRequest || out["error_code"] != "INVALID_PARAMETER_VALUE" || out["message"] != want {
				c.T.Errorf("%s %s %s: %d %v\nwant %s", method, path, body, st, out, want)
			}
		}
	}
}
