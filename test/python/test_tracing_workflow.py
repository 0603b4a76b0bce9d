"""The MLflow 3.11 client's trace calls against Ferry, played with
`requests` (the real client is not installable here: PyPI is unreachable).

The sequence follows what `@mlflow.trace` + export, `mlflow.search_traces`,
`set_trace_tag`/`delete_trace_tag`, `log_feedback`, `link traces to a run`
and `delete_traces` send (spec tracking-api.md §2.6, §7; artifacts-api.md
§5.4): StartTraceV3 with the client's trace info, the traces.json upload
through the artifact proxy, traces/get, search with filters and pages,
tags on v3 and the v2 delete route, assessments, link-to-run and the
run_id filter, get-trace-artifact, delete-traces. Responses are checked
field by field.
"""

import json
import os
import re
import time
import unittest
import uuid

from ferry_server import FerryServerCase

V2 = "/api/2.0/mlflow"
V3 = "/api/3.0/mlflow"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


class TracingWorkflowTest(FerryServerCase):
    @classmethod
    def server_args(cls, tmp):
        return ["--backend-store-uri", "sqlite:///" + os.path.join(tmp, "mlflow.db")]

    def call(self, method, path, body=None, params=None, expect=200):
        url = self.server + path
        if method == "GET":
            resp = self.session.get(url, params=params, timeout=30)
        else:
            resp = self.session.request(method, url, json=body, timeout=30)
        self.assertEqual(resp.status_code, expect, f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    def start_trace(self, exp, name, ms, state="OK"):
        trace_id = "tr-" + uuid.uuid4().hex
        info = {
            "trace_id": trace_id,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
            "request_preview": '{"question": "why?"}',
            "response_preview": '"because"',
            "request_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000),
            "execution_duration": "0.250s",
            "state": state,
            "trace_metadata": {"mlflow.trace_schema.version": "3", "mlflow.trace.sizeStats": json.dumps({"num_spans": 1})},
            "tags": {"mlflow.traceName": name, "mlflow.user": "ann"},
        }
        out = self.call("POST", V3 + "/traces", {"trace": {"trace_info": info}})
        return trace_id, out["trace"]["trace_info"]

    def test_workflow(self):
        exp = self.call("POST", V2 + "/experiments/create", {"name": "traces"})["experiment_id"]
        t0 = int(time.time() * 1000) - 10_000
        tid, info = self.start_trace(exp, "predict", t0)

        # StartTraceV3's answer: the info as sent, plus the artifact location.
        self.assertEqual(info["trace_id"], tid)
        self.assertEqual(info["trace_location"], {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}})
        self.assertRegex(info["request_time"], TS_RE)
        self.assertEqual(info["execution_duration"], "0.250s")
        self.assertEqual(info["state"], "OK")
        loc = info["tags"]["mlflow.artifactLocation"]
        self.assertTrue(loc.endswith(f"/{exp}/traces/{tid}/artifacts"), loc)
        self.assertEqual(info["trace_metadata"]["mlflow.trace_schema.version"], "3")

        # No spans in the tracking store: the client uploads traces.json
        # through the artifact proxy, the UI reads it back.
        data = {"spans": [{"name": "predict", "span_id": "00000000000000aa", "trace_id": tid}]}
        rel = loc.split("mlflow-artifacts:/", 1)[1]
        resp = self.session.put(self.server + "/api/2.0/mlflow-artifacts/artifacts/" + rel + "/traces.json",
                                data=json.dumps(data), timeout=30)
        self.assertEqual(resp.status_code, 200, resp.text)
        resp = self.session.get(self.server + "/ajax-api/3.0/mlflow/get-trace-artifact", params={"request_id": tid}, timeout=30)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.json(), data)
        self.assertEqual(resp.headers["Content-Type"], "text/plain")
        att = str(uuid.uuid4())
        self.session.put(self.server + "/api/2.0/mlflow-artifacts/artifacts/" + rel + "/attachments/" + att, data=b"\x89PNG", timeout=30)
        resp = self.session.get(self.server + "/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": tid, "path": att}, timeout=30)
        self.assertEqual((resp.status_code, resp.content), (200, b"\x89PNG"))
        resp = self.session.get(self.server + "/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": tid, "path": "../traces.json"}, timeout=30)
        self.assertEqual(resp.status_code, 400)

        # traces/get (allow_partial, as get_trace sends it) and the info route.
        got = self.call("GET", V3 + "/traces/get", params={"trace_id": tid, "allow_partial": "true"})["trace"]
        self.assertEqual(got["trace_info"]["trace_id"], tid)
        self.assertEqual(self.call("GET", V3 + "/traces/" + tid)["trace"]["trace_info"]["tags"]["mlflow.traceName"], "predict")

        # More traces, then search_traces with filters and pages.
        others = [self.start_trace(exp, "chat", t0 + i * 1000, "ERROR" if i % 2 else "OK")[0] for i in range(1, 5)]
        search = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]}
        page = self.call("POST", V3 + "/traces/search", {**search, "max_results": 3, "order_by": ["timestamp_ms DESC"]})
        self.assertEqual([t["trace_id"] for t in page["traces"]], others[::-1][:3])
        rest = self.call("POST", V3 + "/traces/search", {**search, "max_results": 3, "page_token": page["next_page_token"], "order_by": ["timestamp_ms DESC"]})
        self.assertEqual([t["trace_id"] for t in rest["traces"]], [others[0], tid])
        self.assertNotIn("next_page_token", rest)
        found = self.call("POST", V3 + "/traces/search", {**search, "filter": "trace.status = 'ERROR' AND tags.mlflow.traceName = 'chat'"})
        self.assertEqual(sorted(t["trace_id"] for t in found["traces"]), sorted([others[0], others[2]]))
        self.call("POST", V3 + "/traces/search", {**search, "filter": "tags.x = 'a' OR 1=1"}, expect=400)

        # Tags: set on v3, delete through the v2 route the client uses.
        self.call("PATCH", V3 + f"/traces/{tid}/tags", {"key": "reviewed", "value": "yes"})
        found = self.call("POST", V3 + "/traces/search", {**search, "filter": "tags.reviewed = 'yes'"})
        self.assertEqual([t["trace_id"] for t in found["traces"]], [tid])
        self.call("DELETE", V2 + f"/traces/{tid}/tags", {"key": "reviewed"})
        self.assertNotIn("reviewed", self.call("GET", V3 + "/traces/" + tid)["trace"]["trace_info"]["tags"])

        # log_feedback / log_expectation, update, search by feedback.
        fb = self.call("POST", V3 + f"/traces/{tid}/assessments", {"assessment": {
            "assessment_name": "correct", "trace_id": tid,
            "source": {"source_type": "HUMAN", "source_id": "ann"},
            "feedback": {"value": True}, "rationale": "checked"}})["assessment"]
        self.assertRegex(fb["assessment_id"], r"^a-[0-9a-f]{32}$")
        self.assertEqual(fb["feedback"], {"value": True})
        self.assertTrue(fb["valid"])
        self.assertRegex(fb["create_time"], TS_RE)
        self.call("POST", V3 + f"/traces/{tid}/assessments", {"assessment": {
            "assessment_name": "answer", "source": {"source_type": "HUMAN"}, "expectation": {"value": "42"}}})
        up = self.call("PATCH", V3 + f"/traces/{tid}/assessments/{fb['assessment_id']}", {
            "assessment": {"rationale": "re-checked"}, "update_mask": "rationale"})["assessment"]
        self.assertEqual(up["rationale"], "re-checked")
        found = self.call("POST", V3 + "/traces/search", {**search, "filter": "feedback.correct = 'true' AND expectation.answer = '42'"})
        self.assertEqual([t["trace_id"] for t in found["traces"]], [tid])
        self.assertEqual(len(found["traces"][0]["assessments"]), 2)

        # Link traces to a run; search by run_id.
        run = self.call("POST", V2 + "/runs/create", {"experiment_id": exp, "start_time": t0})["run"]["info"]["run_id"]
        self.call("POST", V2 + "/traces/link-to-run", {"trace_ids": others[:2], "run_id": run})
        found = self.call("POST", V3 + "/traces/search", {**search, "filter": f"run_id = '{run}'"})
        self.assertEqual(sorted(t["trace_id"] for t in found["traces"]), sorted(others[:2]))

        # delete_traces: by ids, then the oldest by timestamp.
        self.assertEqual(self.call("POST", V3 + "/traces/delete-traces", {"experiment_id": exp, "request_ids": [others[3]]})["traces_deleted"], 1)
        self.assertEqual(self.call("POST", V3 + "/traces/delete-traces",
                                   {"experiment_id": exp, "max_timestamp_millis": t0, "max_traces": 10})["traces_deleted"], 1)
        self.call("GET", V3 + "/traces/" + tid, expect=404)
        resp = self.session.get(self.server + "/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": tid}, timeout=30)
        self.assertEqual(resp.status_code, 404)
        self.assertFalse(os.path.exists(os.path.join(self.dest, rel)), "trace artifacts left after delete")


if __name__ == "__main__":
    unittest.main()
