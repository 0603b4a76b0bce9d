"""One training-client workflow against Ferry's tracking API, sent the way
MLflow 3.11's Python client (RestStore) sends it, with every response's
shape checked against the spec (tracking-api.md §1.3, §3) field by field.

The test starts its own `ferry server` from $FERRY_BIN with a temporary
SQLite database and artifacts directory. Only the standard library and
requests are used. Without FERRY_BIN the test fails with a message saying
how to set it.

Sequence (spec §7): set_experiment (get-by-name → 404 → create →
get-by-name), start_run (runs/create with the client's system tags),
log_params / log_metrics / set_tags (log-batch), log_metric, set_tag,
log_model (logged-models create, runs/outputs, artifact PUT, finalize,
runs/log-model), end_run (runs/update FINISHED + end_time), get_run,
search_runs with a filter and order_by, get_metric_history (paged with
max_results=25000), artifacts/list, logged-models/search.
"""

import os
import re
import time
import unittest

import requests

from ferry_server import FerryServerCase

API = "/api/2.0/mlflow"
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")
MLMODEL = b"artifact_path: model\nflavors: {}\n"




def now_ms():
    return int(time.time() * 1000)


class TrackingWorkflowTest(FerryServerCase):
    @classmethod
    def server_args(cls, tmp):
        return ["--backend-store-uri", "sqlite:///" + os.path.join(tmp, "mlflow.db")]  # sqlite:////abs/path


    # -- transport, as RestStore's call_endpoint does it --------------------

    def call(self, method, endpoint, json_body=None, params=None, expect=200):
        url = self.server + API + endpoint
        if method == "GET":
            resp = self.session.get(url, params=params, timeout=30)
        else:
            resp = self.session.request(method, url, json=json_body, timeout=30)
        self.assertEqual(resp.status_code, expect, f"{method} {endpoint}: {resp.status_code} {resp.text}")
        self.assertTrue(resp.headers.get("Content-Type", "").startswith("application/json"),
                        f"{endpoint}: Content-Type {resp.headers.get('Content-Type')}")
        return resp.json()

    # -- shape checks ---------------------------------------------------------

    def assert_int64(self, value, what):
        self.assertTrue(isinstance(value, int) and not isinstance(value, bool),
                        f"{what} must be a JSON number (int64), got {value!r}")

    def assert_str(self, value, what):
        self.assertIsInstance(value, str, f"{what} must be a string, got {value!r}")

    def assert_keys(self, obj, required, optional=(), what=""):
        self.assertIsInstance(obj, dict, what)
        missing = set(required) - set(obj)
        extra = set(obj) - set(required) - set(optional)
        self.assertFalse(missing, f"{what}: missing {sorted(missing)} in {obj}")
        self.assertFalse(extra, f"{what}: unexpected {sorted(extra)} in {obj}")

    def assert_kv_list(self, items, what):
        self.assertIsInstance(items, list, what)
        self.assertTrue(items, f"{what}: an empty list must be omitted, not sent")
        for kv in items:
            self.assert_keys(kv, ["key", "value"], what=what)
            self.assert_str(kv["key"], what + ".key")
            self.assert_str(kv["value"], what + ".value")

    def assert_error(self, body, code, message):
        self.assertEqual(body.get("error_code"), code, body)
        self.assertEqual(body.get("message"), message, body)

    def check_experiment(self, exp, exp_id, name):
        self.assert_keys(exp, ["experiment_id", "name", "artifact_location", "lifecycle_stage",
                               "creation_time", "last_update_time"], ["tags"], "Experiment")
        self.assertEqual(exp["experiment_id"], exp_id)
        self.assertEqual(exp["name"], name)
        self.assertEqual(exp["artifact_location"], f"mlflow-artifacts:/{exp_id}")
        self.assertEqual(exp["lifecycle_stage"], "active")
        self.assert_int64(exp["creation_time"], "creation_time")
        self.assert_int64(exp["last_update_time"], "last_update_time")

    def check_run_info(self, info, run_id, exp_id, status, ended):
        required = ["run_id", "run_uuid", "run_name", "experiment_id", "user_id", "status",
                    "start_time", "artifact_uri", "lifecycle_stage"]
        if ended:
            required.append("end_time")
        self.assert_keys(info, required, what="RunInfo")
        self.assertEqual(info["run_id"], run_id)
        self.assertEqual(info["run_uuid"], run_id)
        self.assertRegex(info["run_id"], RUN_ID_RE)
        self.assertEqual(info["experiment_id"], exp_id)
        self.assertEqual(info["user_id"], "alice")
        self.assertEqual(info["run_name"], "wf-run")
        self.assertIn(info["status"], ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"))
        self.assertEqual(info["status"], status)
        self.assert_int64(info["start_time"], "start_time")
        if ended:
            self.assert_int64(info["end_time"], "end_time")
        self.assertEqual(info["artifact_uri"], f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts")
        self.assertEqual(info["lifecycle_stage"], "active")

    def check_metric(self, m, what, extra=()):
        self.assert_keys(m, ["key", "value", "timestamp", "step"], extra, what)
        self.assert_str(m["key"], what + ".key")
        self.assertTrue(isinstance(m["value"], (int, float)) or m["value"] in ("NaN", "Infinity", "-Infinity"),
                        f"{what}.value: {m['value']!r}")
        self.assert_int64(m["timestamp"], what + ".timestamp")
        self.assert_int64(m["step"], what + ".step")

    def check_logged_model(self, model, exp_id, run_id, status):
        self.assert_keys(model, ["info", "data"], what="LoggedModel")
        info = model["info"]
        self.assert_keys(info, ["model_id", "experiment_id", "name", "artifact_uri", "creation_timestamp_ms",
                                "last_updated_timestamp_ms", "source_run_id", "status"],
                         ["tags", "model_type"], "LoggedModel.info")
        self.assertRegex(info["model_id"], MODEL_ID_RE)
        self.assertEqual(info["experiment_id"], exp_id)
        self.assertEqual(info["source_run_id"], run_id)
        self.assertEqual(info["artifact_uri"], f"mlflow-artifacts:/{exp_id}/models/{info['model_id']}/artifacts")
        self.assert_int64(info["creation_timestamp_ms"], "creation_timestamp_ms")
        self.assert_int64(info["last_updated_timestamp_ms"], "last_updated_timestamp_ms")
        self.assertEqual(info["status"], status)
        self.assertIsInstance(model["data"], dict)

    # -- the workflow ----------------------------------------------------------

    def test_training_workflow(self):
        name = "ferry-workflow"
        # mlflow.set_experiment(name)
        body = self.call("GET", "/experiments/get-by-name", params={"experiment_name": name}, expect=404)
        self.assert_error(body, "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")
        body = self.call("POST", "/experiments/create", {"name": name})
        self.assert_keys(body, ["experiment_id"], what="CreateExperiment.Response")
        exp_id = body["experiment_id"]
        self.assert_str(exp_id, "experiment_id")
        body = self.call("POST", "/experiments/create", {"name": name}, expect=400)
        self.assertEqual(body["error_code"], "RESOURCE_ALREADY_EXISTS")
        body = self.call("GET", "/experiments/get-by-name", params={"experiment_name": name})
        self.assert_keys(body, ["experiment"], what="GetExperimentByName.Response")
        self.check_experiment(body["experiment"], exp_id, name)
        self.assertNotIn("tags", body["experiment"])  # empty repeated fields are omitted

        # mlflow.start_run(run_name="wf-run")
        start = now_ms()
        tags = [
            {"key": "mlflow.user", "value": "alice"},
            {"key": "mlflow.source.name", "value": "train.py"},
            {"key": "mlflow.source.type", "value": "LOCAL"},
            {"key": "mlflow.source.git.commit", "value": "0123456789abcdef"},
            {"key": "mlflow.runName", "value": "wf-run"},
        ]
        body = self.call("POST", "/runs/create", {"experiment_id": exp_id, "user_id": "alice", "start_time": start,
                                                  "tags": tags, "run_name": "wf-run"})
        self.assert_keys(body, ["run"], what="CreateRun.Response")
        run = body["run"]
        self.assert_keys(run, ["info", "data"], ["inputs", "outputs"], "Run")
        run_id = run["info"]["run_id"]
        self.check_run_info(run["info"], run_id, exp_id, "RUNNING", ended=False)
        self.assertEqual(run["info"]["start_time"], start)
        self.assert_keys(run["data"], ["tags"], what="RunData at create")
        self.assert_kv_list(run["data"]["tags"], "RunData.tags")
        self.assertEqual(sorted(t["key"] for t in run["data"]["tags"]), sorted(t["key"] for t in tags))

        # log_params / log_metrics / set_tags → log-batch
        params = [{"key": "lr", "value": "0.01"}, {"key": "epochs", "value": "10"}, {"key": "optimizer", "value": "adam"}]
        self.assertEqual(self.call("POST", "/runs/log-batch", {"run_id": run_id, "params": params}), {})
        history = []
        for step in range(10):
            batch = []
            for key, value in (("loss", 1.0 / (step + 1)), ("acc", step / 10.0)):
                m = {"key": key, "value": value, "timestamp": start + step, "step": step}
                batch.append(m)
                if key == "loss":
                    history.append(m)
            self.assertEqual(self.call("POST", "/runs/log-batch", {"run_id": run_id, "metrics": batch}), {})
        self.assertEqual(self.call("POST", "/runs/log-batch",
                                   {"run_id": run_id, "tags": [{"key": "team", "value": "ml"}, {"key": "stage", "value": "dev"}]}), {})
        # log_metric / set_tag: the client sends run_uuid and run_id
        last = {"key": "loss", "value": 0.05, "timestamp": start + 10, "step": 10}
        history.append(last)
        self.assertEqual(self.call("POST", "/runs/log-metric", dict(last, run_uuid=run_id, run_id=run_id)), {})
        self.assertEqual(self.call("POST", "/runs/set-tag", {"run_uuid": run_id, "run_id": run_id, "key": "note", "value": "ok"}), {})

        # mlflow.<flavor>.log_model (MLflow 3)
        body = self.call("POST", "/logged-models", {"experiment_id": exp_id, "name": "model", "source_run_id": run_id,
                                                   "params": [{"key": "lr", "value": "0.01"}],
                                                   "tags": [{"key": "mlflow.source.name", "value": "train.py"}]})
        self.assert_keys(body, ["model"], what="CreateLoggedModel.Response")
        self.check_logged_model(body["model"], exp_id, run_id, "LOGGED_MODEL_PENDING")
        model_id = body["model"]["info"]["model_id"]
        self.assertEqual(self.call("POST", "/runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 10}]}), {})
        put = self.session.put(
            f"{self.server}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/models/{model_id}/artifacts/MLmodel",
            data=MLMODEL, headers={"Content-Type": "text/plain"}, timeout=30)
        self.assertEqual(put.status_code, 200, put.text)
        put = self.session.put(
            f"{self.server}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/plots/loss.txt",
            data=b"0.05\n", headers={"Content-Type": "text/plain"}, timeout=30)
        self.assertEqual(put.status_code, 200, put.text)
        model_json = ('{"artifact_path": "model", "flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}, '
                      f'"run_id": "{run_id}", "utc_time_created": "2026-01-01 00:00:00.000000", "model_id": "{model_id}"}}')
        self.assertEqual(self.call("POST", "/runs/log-model", {"run_id": run_id, "model_json": model_json}), {})
        body = self.call("PATCH", f"/logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"})
        self.check_logged_model(body["model"], exp_id, run_id, "LOGGED_MODEL_READY")
        self.assertEqual(self.call("POST", "/runs/log-metric", {"run_uuid": run_id, "run_id": run_id, "key": "val_acc", "value": 0.9,
                                                                "timestamp": start + 11, "step": 10, "model_id": model_id}), {})

        # mlflow.end_run()
        end = now_ms()
        body = self.call("POST", "/runs/update", {"run_uuid": run_id, "run_id": run_id, "status": "FINISHED", "end_time": end})
        self.assert_keys(body, ["run_info"], what="UpdateRun.Response")
        self.check_run_info(body["run_info"], run_id, exp_id, "FINISHED", ended=True)
        self.assertEqual(body["run_info"]["end_time"], end)

        # get_run
        body = self.call("GET", "/runs/get", params={"run_uuid": run_id, "run_id": run_id})
        self.assert_keys(body, ["run"], what="GetRun.Response")
        run = body["run"]
        self.assert_keys(run, ["info", "data", "inputs", "outputs"], what="Run")
        self.check_run_info(run["info"], run_id, exp_id, "FINISHED", ended=True)
        self.assert_keys(run["data"], ["metrics", "params", "tags"], what="RunData")
        latest = {m["key"]: m for m in run["data"]["metrics"]}
        for m in run["data"]["metrics"]:
            self.check_metric(m, "RunData.metrics[]")
        self.assertEqual(latest["loss"], last)
        self.assertEqual(latest["acc"], {"key": "acc", "value": 0.9, "timestamp": start + 9, "step": 9})
        self.assertEqual(set(latest), {"loss", "acc", "val_acc"})
        self.assert_kv_list(run["data"]["params"], "RunData.params")
        self.assertEqual(run["data"]["params"], sorted(params, key=lambda p: p["key"]))
        self.assert_kv_list(run["data"]["tags"], "RunData.tags")
        run_tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        self.assertEqual(run_tags["team"], "ml")
        self.assertEqual(run_tags["note"], "ok")
        self.assertEqual(run_tags["mlflow.runName"], "wf-run")
        self.assertEqual(run_tags["mlflow.log-model.history"],
                         '[{"artifact_path": "model", "flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}, '
                         f'"run_id": "{run_id}", "utc_time_created": "2026-01-01 00:00:00.000000", "model_id": "{model_id}"}}]')
        self.assertEqual(run["inputs"], {})
        self.assertEqual(run["outputs"], {"model_outputs": [{"model_id": model_id, "step": 10}]})

        # search_runs with a filter and an order_by (a second run to order)
        other = self.call("POST", "/runs/create", {"experiment_id": exp_id, "user_id": "alice", "start_time": start + 1,
                                                   "tags": [{"key": "mlflow.runName", "value": "other"}], "run_name": "other"})
        other_id = other["run"]["info"]["run_id"]
        self.call("POST", "/runs/log-batch", {"run_id": other_id, "params": [{"key": "lr", "value": "0.01"}],
                                              "metrics": [{"key": "loss", "value": 0.5, "timestamp": start, "step": 0}]})
        search = {"experiment_ids": [exp_id], "filter": "metrics.loss < 1 and params.lr = '0.01'",
                  "run_view_type": "ACTIVE_ONLY", "max_results": 1000, "order_by": ["metrics.loss DESC"]}
        body = self.call("POST", "/runs/search", search)
        self.assert_keys(body, ["runs"], what="SearchRuns.Response (no next_page_token on the last page)")
        self.assertEqual([r["info"]["run_id"] for r in body["runs"]], [other_id, run_id])
        for r in body["runs"]:
            self.assert_keys(r, ["info", "data"], ["inputs", "outputs"], "Run in search")
            self.assertEqual(r["info"]["run_id"], r["info"]["run_uuid"])
            self.assert_int64(r["info"]["start_time"], "start_time")
        self.check_run_info(body["runs"][1]["info"], run_id, exp_id, "FINISHED", ended=True)
        body = self.call("POST", "/runs/search", dict(search, max_results=1))
        self.assert_keys(body, ["runs", "next_page_token"], what="SearchRuns.Response page 1")
        self.assert_str(body["next_page_token"], "next_page_token")
        body = self.call("POST", "/runs/search", dict(search, max_results=1, page_token=body["next_page_token"]))
        self.assert_keys(body, ["runs"], what="SearchRuns.Response page 2")
        self.assertEqual(body["runs"][0]["info"]["run_id"], run_id)
        body = self.call("POST", "/runs/search", dict(search, filter="metrics.loss > 100"))
        self.assertEqual(body, {})

        # get_metric_history: max_results=25000, following tokens
        got, token = [], None
        while True:
            params_q = {"run_uuid": run_id, "run_id": run_id, "metric_key": "loss", "max_results": 25000}
            if token:
                params_q["page_token"] = token
            body = self.call("GET", "/metrics/get-history", params=params_q)
            self.assert_keys(body, ["metrics"], ["next_page_token"], "GetMetricHistory.Response")
            for m in body["metrics"]:
                self.check_metric(m, "GetMetricHistory.metrics[]")
            got.extend(body["metrics"])
            token = body.get("next_page_token")
            if not token:
                break
        self.assertEqual(got, history)

        # artifacts/list (the UI's and client's listing of a run)
        body = self.call("GET", "/artifacts/list", params={"run_uuid": run_id, "run_id": run_id})
        self.assert_keys(body, ["root_uri", "files"], what="ListArtifacts.Response")
        self.assertEqual(body["root_uri"], f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts")
        self.assertEqual(body["files"], [{"path": "plots", "is_dir": True}])
        body = self.call("GET", "/artifacts/list", params={"run_id": run_id, "path": "plots"})
        self.assertEqual(body["files"], [{"path": "plots/loss.txt", "is_dir": False, "file_size": 5}])
        self.assert_int64(body["files"][0]["file_size"], "file_size")
        body = self.call("GET", f"/logged-models/{model_id}/artifacts/directories")
        self.assertEqual(body, {"root_uri": f"mlflow-artifacts:/{exp_id}/models/{model_id}/artifacts",
                                "files": [{"path": "MLmodel", "is_dir": False, "file_size": len(MLMODEL)}]})

        # logged-models/search
        body = self.call("POST", "/logged-models/search", {
            "experiment_ids": [exp_id], "filter": "name = 'model' AND metrics.val_acc > 0.5",
            "order_by": [{"field_name": "creation_timestamp", "ascending": False}], "max_results": 50})
        self.assert_keys(body, ["models"], what="SearchLoggedModels.Response")
        self.assertEqual(len(body["models"]), 1)
        model = body["models"][0]
        self.check_logged_model(model, exp_id, run_id, "LOGGED_MODEL_READY")
        self.assertEqual(model["info"]["tags"], [{"key": "mlflow.source.name", "value": "train.py"}])
        self.assert_keys(model["data"], ["params", "metrics"], what="LoggedModel.data")
        self.assertEqual(model["data"]["params"], [{"key": "lr", "value": "0.01"}])
        self.assertEqual(len(model["data"]["metrics"]), 1)
        mm = model["data"]["metrics"][0]
        self.check_metric(mm, "LoggedModel.data.metrics[]", ["model_id", "run_id", "dataset_name", "dataset_digest"])
        self.assertEqual((mm["key"], mm["value"], mm["model_id"], mm["run_id"]), ("val_acc", 0.9, model_id, run_id))
        body = self.call("POST", "/logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'nope'"})
        self.assertEqual(body, {})

        # errors the client relies on
        body = self.call("GET", "/runs/get", params={"run_id": "0" * 32}, expect=404)
        self.assert_error(body, "RESOURCE_DOES_NOT_EXIST", f"Run with id={'0' * 32} not found")


    def test_oversized_json_body_gets_its_error(self):
        """A JSON body 8 MiB over the 32 MiB limit: requests sends the whole
        body before reading and must get Ferry's 400 with its JSON. (urllib3
        2.x reads the answer even after its send fails, so this passed before
        Ferry lingered too; wire/TestLingerAfterTooLarge is the client that
        does not, and fails without the linger.)"""
        pad = "a" * (40 << 20)
        for attempt in range(3):
            resp = self.session.post(self.server + API + "/runs/log-batch", timeout=60,
                                     data=b'{"run_id": "x", "pad": "' + pad.encode() + b'"}',
                                     headers={"Content-Type": "application/json"})
            self.assertEqual(resp.status_code, 400, f"attempt {attempt}: {resp.text[:200]}")
            body = resp.json()
            self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE")
            self.assertIn("too large", body["message"])
        # The session's next request goes through on a fresh connection.
        self.call("GET", "/experiments/get-by-name", params={"experiment_name": "Default"})

if __name__ == "__main__":
    unittest.main()
