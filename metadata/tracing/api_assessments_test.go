package tracing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferryml/ferry/metadata"
	"github.com/ferryml/ferry/metadata/internal/domaintest"
)

func TestAssessments(t *testing.T) {
	t.Parallel()
	domaintest.ForEachBackend(t, func(t *testing.T, db *metadata.DB) {
		c := newClient(t, db)
		exp := c.experiment("a1", "/tmp/a1", "active")
		c.startTrace(tid(1), exp, 1000, "")
		c.startTrace(tid(2), exp, 2000, "")
		base := "/3.0/mlflow/traces/" + tid(1) + "/assessments"

		create := func(body string) map[string]any {
			t.Helper()
			return obj(c.ok("POST", base, body), "assessment")
		}
		fb := create(`{"assessment": {"assessment_name": "quality", "trace_id": "ignored", "span_id": "00000000000000aa",
			"source": {"source_type": "LLM_JUDGE", "source_id": "gpt"}, "feedback": {"value": {"score": 0.5, "ok": true, "tags": ["a"]}},
			"rationale": "because", "metadata": {"mlflow.assessment.sourceRunId": "run1", "k": "v"}}}`)
		id, _ := fb["assessment_id"].(string)
		if !strings.HasPrefix(id, "a-") || len(id) != 34 {
			t.Fatalf("id %q", id)
		}
		want := map[string]any{
			"assessment_id": id, "assessment_name": "quality", "trace_id": tid(1), "span_id": "00000000000000aa",
			"source":    map[string]any{"source_type": "LLM_JUDGE", "source_id": "gpt"},
			"feedback":  map[string]any{"value": map[string]any{"score": 0.5, "ok": true, "tags": []any{"a"}}},
			"rationale": "because", "metadata": map[string]any{"mlflow.assessment.sourceRunId": "run1", "k": "v"}, "valid": true,
			"create_time": fb["create_time"], "last_update_time": fb["create_time"],
		}
		if !reflect.DeepEqual(fb, want) {
			t.Fatalf("created\n got %s\nwant %s", js(fb), js(want))
		}
		if _, ok := parseProtoTimestamp(fb["create_time"].(string)); !ok {
			t.Errorf("create_time %v", fb["create_time"])
		}
		// Upstream's json.dumps forms in the row (run deletion matches the
		// metadata text; search compares the value text).
		var value, md, runID string
		_ = c.db.Read(t.Context(), func(tx *metadata.Tx) error {
			return tx.QueryRow(t.Context(), "SELECT value, assessment_metadata, run_id FROM assessments WHERE assessment_id = ?", id).Scan(&value, &md, &runID)
		})
		if value != `{"ok": true, "score": 0.5, "tags": ["a"]}` || md != `{"k": "v", "mlflow.assessment.sourceRunId": "run1"}` || runID != "run1" {
			t.Errorf("row value %s metadata %s run %s", value, md, runID)
		}

		got := obj(c.ok("GET", base+"/"+id, ""), "assessment")
		if !reflect.DeepEqual(got, fb) {
			t.Errorf("get\n got %s\nwant %s", js(got), js(fb))
		}
		info := obj(obj(c.ok("GET", "/3.0/mlflow/traces/"+tid(1), ""), "trace"), "trace_info")
		if as := list(info, "assessments"); len(as) != 1 || as[0].(map[string]any)["assessment_id"] != id {
			t.Errorf("trace info assessments %s", js(info))
		}

		t.Run("kinds", func(t *testing.T) {
			ex := create(`{"assessment": {"assessment_name": "answer", "source": {"source_type": "HUMAN"}, "expectation": {"value": "42"}}}`)
			if js(ex["expectation"]) != `{"value":"42"}` || ex["feedback"] != nil {
				t.Errorf("expectation %s", js(ex))
			}
			ser := create(`{"assessment": {"assessment_name": "facts", "expectation": {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": "[1, 2]"}}}}`)
			if js(ser["expectation"]) != `{"value":[1,2]}` || obj(ser, "source")["source_type"] != "SOURCE_TYPE_UNSPECIFIED" {
				t.Errorf("serialized expectation %s", js(ser))
			}
			iss := create(`{"assessment": {"assessment_name": "iss-1", "issue": {"issue_name": "slow answers"}}}`)
			if js(iss["issue"]) != `{"issue_name":"slow answers"}` {
				t.Errorf("issue %s", js(iss))
			}
			er := create(`{"assessment": {"assessment_name": "judge", "feedback": {"error": {"error_code": "RATE_LIMIT", "error_message": "slow down"}}}}`)
			if js(er["feedback"]) != `{"error":{"error_code":"RATE_LIMIT","error_message":"slow down"}}` {
				t.Errorf("feedback error %s", js(er))
			}
		})

		t.Run("update", func(t *testing.T) {
			p := base + "/" + id
			up := obj(c.ok("PATCH", p, `{"assessment": {"assessment_name": "quality2", "rationale": "new", "feedback": {"value": "good"}, "metadata": {"k2": "v2"}}, "update_mask": "assessmentName,rationale,feedback,metadata"}`), "assessment")
			if up["assessment_name"] != "quality2" || up["rationale"] != "new" || js(up["feedback"]) != `{"value":"good"}` ||
				js(up["metadata"]) != `{"k":"v","k2":"v2","mlflow.assessment.sourceRunId":"run1"}` {
				t.Errorf("updated %s", js(up))
			}
			up = obj(c.ok("PATCH", p, `{"assessment": {"valid": false, "rationale": "ignored"}, "update_mask": {"paths": ["valid"]}}`), "assessment")
			if up["valid"] != false || up["rationale"] != "new" {
				t.Errorf("valid update %s", js(up))
			}
			c.fails("PATCH", p, `{"assessment": {"expectation": {"value": 1}}, "update_mask": "expectation"}`, 400, "INVALID_PARAMETER_VALUE", "Cannot update the expectation of a feedback")
			c.fails("PATCH", p, `{"assessment": {}, "update_mask": "source"}`, 400, "INVALID_PARAMETER_VALUE", "Invalid update_mask path 'source'")
			c.fails("PATCH", p, `{"assessment": {}}`, 400, "INVALID_PARAMETER_VALUE", "'update_mask'")
			c.fails("PATCH", p, `{"update_mask": "rationale"}`, 400, "INVALID_PARAMETER_VALUE", "'assessment'")
			c.fails("PATCH", base+"/a-nope", `{"assessment": {}, "update_mask": "rationale"}`, 404, "RESOURCE_DOES_NOT_EXIST", "Assessment with ID 'a-nope' not found")
			// Ids that collide across traces: the trace in the URL decides.
			c.fails("PATCH", "/3.0/mlflow/traces/"+tid(2)+"/assessments/"+id, `{"assessment": {}, "update_mask": "rationale"}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.fails("GET", "/3.0/mlflow/traces/"+tid(2)+"/assessments/"+id, "", 404, "RESOURCE_DOES_NOT_EXIST", "")
		})

		t.Run("overrides", func(t *testing.T) {
			orig := create(`{"assessment": {"assessment_name": "label", "feedback": {"value": "cat"}}}`)
			oid := orig["assessment_id"].(string)
			ov := create(`{"assessment": {"assessment_name": "label", "feedback": {"value": "dog"}, "overrides": "` + oid + `"}}`)
			if ov["overrides"] != oid || ov["valid"] != true {
				t.Errorf("override %s", js(ov))
			}
			if v := obj(c.ok("GET", base+"/"+oid, ""), "assessment")["valid"]; v != false {
				t.Errorf("overridden valid %v", v)
			}
			c.ok("DELETE", base+"/"+ov["assessment_id"].(string), "")
			if v := obj(c.ok("GET", base+"/"+oid, ""), "assessment")["valid"]; v != true {
				t.Errorf("after deleting the override, valid %v", v)
			}
			c.fails("POST", base, `{"assessment": {"assessment_name": "x", "feedback": {"value": 1}, "overrides": "a-nope"}}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
		})

		t.Run("errors and delete", func(t *testing.T) {
			c.fails("POST", base, `{}`, 400, "INVALID_PARAMETER_VALUE", "'assessment'")
			c.fails("POST", base, `{"assessment": {"feedback": {"value": 1}}}`, 400, "INVALID_PARAMETER_VALUE", "assessment.assessment_name")
			c.fails("POST", base, `{"assessment": {"assessment_name": "x"}}`, 400, "INVALID_PARAMETER_VALUE", "Exactly one of")
			c.fails("POST", base, `{"assessment": {"assessment_name": "x", "feedback": {"value": 1}, "expectation": {"value": 1}}}`, 400, "INVALID_PARAMETER_VALUE", "Exactly one of")
			c.fails("POST", base, `{"assessment": {"assessment_name": "x", "feedback": {"value": 1}, "source": {"source_type": "ROBOT"}}}`, 400, "INVALID_PARAMETER_VALUE", "Invalid source type")
			c.fails("POST", base, `{"assessment": {"assessment_name": "x", "feedback": "yes"}}`, 400, "INVALID_PARAMETER_VALUE", "'assessment.feedback'")
			c.fails("POST", base, `{"assessment": {"assessment_name": "x", "feedback": {"value": 1}, "valid": "yes"}}`, 400, "INVALID_PARAMETER_VALUE", "'assessment.valid'")
			c.fails("POST", base, `{"assessment": {"assessment_name": "`+strings.Repeat("n", 251)+`", "feedback": {"value": 1}}}`, 400, "INVALID_PARAMETER_VALUE", "")
			c.fails("POST", base, `{"assessment": {"assessment_name": "x", "issue": {}}}`, 400, "INVALID_PARAMETER_VALUE", "issue_name")
			c.fails("POST", "/3.0/mlflow/traces/tr-nope/assessments", `{"assessment": {"assessment_name": "x", "feedback": {"value": 1}}}`, 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.ok("DELETE", base+"/"+id, "")
			c.fails("GET", base+"/"+id, "", 404, "RESOURCE_DOES_NOT_EXIST", "")
			c.ok("DELETE", base+"/"+id, "") // idempotent
			// Deleting the trace deletes its assessments.
			c.ok("POST", "/3.0/mlflow/traces/delete-traces", `{"experiment_id": "`+exp+`", "request_ids": ["`+tid(1)+`"]}`)
			if n := c.count("SELECT COUNT(*) FROM assessments WHERE trace_id = ?", tid(1)); n != 0 {
				t.Errorf("%d assessments of a deleted trace", n)
			}
		})
	})
}
