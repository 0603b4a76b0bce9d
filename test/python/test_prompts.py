"""The MLflow 3.11 client's prompt-registry calls against Ferry, replayed with
requests.

Prompts ride on the model registry: a prompt is a registered model tagged
``mlflow.prompt.is_prompt=true`` and each prompt version a model version
whose tags hold the template (``mlflow.prompt.text``) and, in 3.x, its type,
response format and model config (``_mlflow_prompt_type``,
``_mlflow_prompt_response_format``, ``_mlflow_prompt_model_config``). The
client (MlflowClient.register_prompt / load_prompt / set_prompt_alias /
search_prompts / link_prompt_version_to_run and the registry store's
default prompt methods) builds every call from ordinary registry and
tracking routes; this test sends exactly those calls, in the client's
order, and checks the answers the client reads.

The real ``mlflow`` package cannot be installed here (PyPI is unreachable
from this machine), so the sequence is played with requests, from the 3.x
client sources; when the package is available, the same steps are
``mlflow.genai.register_prompt(...)``, ``mlflow.genai.load_prompt(
"prompts:/qa.prompt/1")`` and so on. The test starts its own ``ferry
server`` from $FERRY_BIN with a temporary SQLite database.
"""

import json
import os
import unittest

import test_tracking_workflow
from ferry_server import FerryServerCase

API = "/api/2.0/mlflow"
IS_PROMPT = "mlflow.prompt.is_prompt"
TEXT = "mlflow.prompt.text"
LINKED = "mlflow.linkedPrompts"


def tags_of(entity):
    return {t["key"]: t["value"] for t in entity.get("tags", [])}


class PromptRegistryTest(FerryServerCase):
    @classmethod
    def server_args(cls, tmp):
        return ["--backend-store-uri", "sqlite:///" + os.path.join(tmp, "mlflow.db")]

    # RestStore's call_endpoint, as the tracking workflow test plays it
    # (a module import: its test class must not be collected here again).
    call = test_tracking_workflow.TrackingWorkflowTest.call

    # -- the client's sequences ----------------------------------------------

    def register_prompt(self, name, template, commit_message=None, tags=None,
                        response_format=None, model_config=None, source="prompt-template"):
        """MlflowClient.register_prompt on an OSS registry."""
        tags = dict(tags or {})
        found = self.session.get(self.server + API + "/registered-models/get", params={"name": name}, timeout=30)
        is_new = found.status_code == 404
        if is_new:
            self.assertEqual(found.json()["error_code"], "RESOURCE_DOES_NOT_EXIST")
            self.call("POST", "/registered-models/create", {
                "name": name, "description": commit_message,
                "tags": [{"key": IS_PROMPT, "value": "true"}] + [{"key": k, "value": v} for k, v in tags.items()],
            })
        else:
            self.assertEqual(found.status_code, 200, found.text)
            self.assertIn(IS_PROMPT, tags_of(found.json()["registered_model"]))
            for k, v in tags.items():
                self.call("POST", "/registered-models/set-tag", {"name": name, "key": k, "value": v})
        vtags = dict(tags)
        vtags.update({IS_PROMPT: "true", TEXT: template if isinstance(template, str) else json.dumps(template),
                      "_mlflow_prompt_type": "text" if isinstance(template, str) else "chat"})
        if response_format is not None:
            vtags["_mlflow_prompt_response_format"] = json.dumps(response_format)
        if model_config is not None:
            vtags["_mlflow_prompt_model_config"] = json.dumps(model_config)
        mv = self.call("POST", "/model-versions/create", {
            "name": name, "source": source, "description": commit_message,
            "tags": [{"key": k, "value": v} for k, v in vtags.items()],
        })["model_version"]
        self.call("GET", "/registered-models/get", params={"name": name})
        return mv

    def load_prompt(self, uri):
        """load_prompt("prompts:/name/<version>") or ("prompts:/name@alias")."""
        rest = uri[len("prompts:/"):]
        if "@" in rest:
            name, alias = rest.split("@", 1)
        else:
            name, version = rest.split("/", 1)
        rm = self.call("GET", "/registered-models/get", params={"name": name})["registered_model"]
        self.assertEqual(tags_of(rm).get(IS_PROMPT), "true", f"{name} is not a prompt")
        if "@" in rest:
            return self.call("GET", "/registered-models/alias", params={"name": name, "alias": alias})["model_version"]
        return self.call("GET", "/model-versions/get", params={"name": name, "version": version})["model_version"]

    def search_prompts(self, filter_string=None, max_results=1000):
        f = f"tags.`{IS_PROMPT}` = 'true'"
        if filter_string:
            f += " AND " + filter_string
        out = self.call("GET", "/registered-models/search", params={"filter": f, "max_results": max_results})
        return [m["name"] for m in out.get("registered_models", [])]

    # -- the test -------------------------------------------------------------

    def test_prompt_workflow(self):
        exp = self.call("POST", "/experiments/create", {"name": "prompts"})["experiment_id"]
        template = "Answer {{question}} in a {{style}} tone.\n" * 2000  # 78 KB: prompt text is long
        chat = [{"role": "system", "content": "You are {{persona}}."}, {"role": "user", "content": "{{question}}"}]

        v1 = self.register_prompt("qa.prompt", "Hello {{name}}", commit_message="first",
                                  tags={"author": "alice"}, source="dummy-source")
        self.assertEqual((v1["version"], v1["status"], v1["current_stage"]), ("1", "READY", "None"))
        v2 = self.register_prompt("qa.prompt", template, commit_message="long", tags={"author": "bob"},
                                  response_format={"type": "object", "properties": {"answer": {"type": "string"}}},
                                  model_config={"model_name": "gpt-4o-mini", "temperature": 0.1})
        self.assertEqual(v2["version"], "2")
        self.register_prompt("chat-prompt", chat)
        # 3.11 records the experiment a prompt was registered in.
        self.call("POST", "/registered-models/set-tag", {"name": "qa.prompt", "key": "_mlflow_experiment_ids", "value": f",{exp},"})

        got = self.load_prompt("prompts:/qa.prompt/2")
        self.assertEqual(tags_of(got)[TEXT], template)
        self.assertEqual(json.loads(tags_of(got)["_mlflow_prompt_model_config"])["temperature"], 0.1)
        self.assertEqual(json.loads(tags_of(self.load_prompt("prompts:/chat-prompt/1"))[TEXT]), chat)

        # aliases
        self.call("POST", "/registered-models/alias", {"name": "qa.prompt", "alias": "production", "version": "1"})
        self.assertEqual(tags_of(self.load_prompt("prompts:/qa.prompt@production"))[TEXT], "Hello {{name}}")
        self.assertEqual(self.load_prompt("prompts:/qa.prompt@latest")["version"], "2")
        self.call("DELETE", "/registered-models/alias", {"name": "qa.prompt", "alias": "production"})
        gone = self.call("GET", "/registered-models/alias", params={"name": "qa.prompt", "alias": "production"}, expect=400)
        self.assertEqual(gone["error_code"], "INVALID_PARAMETER_VALUE")

        # search_prompts, incl. the experiment_id form the client rewrites
        self.call("POST", "/registered-models/create", {"name": "qa-model"})
        self.assertEqual(self.search_prompts(), ["chat-prompt", "qa.prompt"])
        self.assertEqual(self.search_prompts("name LIKE 'qa%'"), ["qa.prompt"])
        self.assertEqual(self.search_prompts(f"tags._mlflow_experiment_ids LIKE '%,{exp},%'"), ["qa.prompt"])
        models = self.call("GET", "/registered-models/search", params={"max_results": 100})["registered_models"]
        self.assertEqual([m["name"] for m in models], ["qa-model"])

        # prompt and version tags
        self.call("POST", "/registered-models/set-tag", {"name": "qa.prompt", "key": "team", "value": "nlp"})
        self.call("DELETE", "/registered-models/delete-tag", {"name": "qa.prompt", "key": "team"})
        self.call("POST", "/model-versions/set-tag", {"name": "qa.prompt", "version": "1", "key": "reviewed", "value": "yes"})
        self.assertEqual(tags_of(self.load_prompt("prompts:/qa.prompt/1"))["reviewed"], "yes")
        self.call("DELETE", "/model-versions/delete-tag", {"name": "qa.prompt", "version": "1", "key": "reviewed"})

        # link_prompt_version_to_run: load the prompt, read the run, rewrite its tag
        run = self.call("POST", "/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
        for uri in ("prompts:/qa.prompt/1", "prompts:/qa.prompt/2", "prompts:/qa.prompt/1"):
            pv = self.load_prompt(uri)
            tags = tags_of(self.call("GET", "/runs/get", params={"run_id": run})["run"]["data"])
            links = json.loads(tags.get(LINKED, "[]"))
            entry = {"name": pv["name"], "version": pv["version"]}
            if entry not in links:
                links.append(entry)
                self.call("POST", "/runs/set-tag", {"run_id": run, "key": LINKED, "value": json.dumps(links)})
        tags = tags_of(self.call("GET", "/runs/get", params={"run_id": run})["run"]["data"])
        self.assertEqual(json.loads(tags[LINKED]), [{"name": "qa.prompt", "version": "1"}, {"name": "qa.prompt", "version": "2"}])

        # server-side rules
        clash = self.call("POST", "/registered-models/create",
                          {"name": "qa-model", "tags": [{"key": IS_PROMPT, "value": "true"}]}, expect=400)
        self.assertEqual(clash["error_code"], "RESOURCE_ALREADY_EXISTS")
        self.assertIn("already taken by a registered model", clash["message"])
        bad = self.call("POST", "/model-versions/create", {
            "name": "qa.prompt", "source": "file:///etc/passwd", "tags": [{"key": IS_PROMPT, "value": "true"}]}, expect=400)
        self.assertEqual(bad["message"], "Invalid prompt source: 'file:///etc/passwd'. Local source paths are not allowed for prompts.")

        # delete_prompt_version, delete_prompt
        self.call("DELETE", "/model-versions/delete", {"name": "qa.prompt", "version": "1"})
        self.call("GET", "/model-versions/get", params={"name": "qa.prompt", "version": "1"}, expect=404)
        self.call("DELETE", "/registered-models/delete", {"name": "qa.prompt"})
        self.call("GET", "/registered-models/get", params={"name": "qa.prompt"}, expect=404)
        self.assertEqual(self.search_prompts(), ["chat-prompt"])


if __name__ == "__main__":
    unittest.main()
