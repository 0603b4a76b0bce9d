"""Register a model and download it back the way MLflow 3.11's Python client
does, against a real `ferry server` ($FERRY_BIN, SQLite, local artifacts
destination), byte for byte.

The real mlflow package cannot be installed on this machine (PyPI is not
reachable), so `requests` plays the client, call for call:

* log the model's files to a run through the artifact proxy (PUT
  mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/model/...);
* register it (registered-models/create, model-versions/create with the
  run's underlying artifact URI as RunsArtifactRepository resolves
  runs:/<run>/model), set alias `champion`;
* load `models:/m@champion` (registered-models/alias GET → version) and
  `models:/m/1` as ModelsArtifactRepository does: get-download-uri, then the
  mlflow-artifacts: URI resolved against the tracking URI, listed
  recursively and downloaded file by file through mlflow-artifacts;
* the UI routes: /model-versions/get-artifact and /get-artifact.
"""

import hashlib
import os
import unittest
import urllib.parse

from ferry_server import FerryServerCase

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

FILES = {
    "MLmodel": b"artifact_path: model\nflavors:\n  python_function: {}\n",
    "conda.yaml": b"dependencies:\n- python=3.11\n",
    "model.pkl": os.urandom(3 * 1024 * 1024 + 17),
    "data/weights bin.npy": os.urandom(70001),
    "data/d\u00e9j\u00e0.txt": "d\u00e9j\u00e0 vu\n".encode(),
}


class RegistryDownloadTest(FerryServerCase):
    @classmethod
    def server_args(cls, tmp):
        return ["--backend-store-uri", "sqlite:///" + os.path.join(tmp, "mlflow.db")]

    def call(self, method, endpoint, body=None, params=None):
        resp = self.session.request(method, self.server + API + endpoint, json=body, params=params, timeout=60)
        self.assertEqual(resp.status_code, 200, f"{method} {endpoint}: {resp.text}")
        return resp.json()

    def artifact_url(self, uri, path=""):
        """MlflowArtifactsRepository: mlflow-artifacts:/x resolved against the tracking URI."""
        parsed = urllib.parse.urlparse(uri)
        self.assertEqual(parsed.scheme, "mlflow-artifacts", uri)
        base = self.server + ARTIFACTS + parsed.path
        return base + ("/" + urllib.parse.quote(path) if path else "")

    def download_tree(self, uri):
        """list_artifacts recursively, then GET every file, as download_artifacts does."""
        root = urllib.parse.urlparse(uri).path.lstrip("/")
        out = {}
        todo = [""]
        while todo:
            rel = todo.pop()
            resp = self.session.get(self.server + ARTIFACTS, params={"path": root + ("/" + rel if rel else "")}, timeout=60)
            self.assertEqual(resp.status_code, 200, resp.text)
            for f in resp.json().get("files", []):
                child = rel + "/" + f["path"] if rel else f["path"]
                if f["is_dir"]:
                    todo.append(child)
                    continue
                got = self.session.get(self.artifact_url(uri, child), timeout=60)
                self.assertEqual(got.status_code, 200, child)
                self.assertEqual(int(got.headers["Content-Length"]), f.get("file_size", 0))
                out[child] = got.content
        return out

    def test_register_alias_and_download(self):
        exp = self.call("POST", "/experiments/create", {"name": "registry-download"})["experiment_id"]
        run = self.call("POST", "/runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]
        run_id, run_root = run["run_id"], run["artifact_uri"]
        self.assertEqual(run_root, f"mlflow-artifacts:/{exp}/{run_id}/artifacts")
        for name, data in FILES.items():
            resp = self.session.put(self.artifact_url(run_root, "model/" + name), data=data, timeout=60)
            self.assertEqual(resp.status_code, 200, resp.text)

        self.call("POST", "/registered-models/create", {"name": "m"})
        mv = self.call("POST", "/model-versions/create",
                       {"name": "m", "source": run_root + "/model", "run_id": run_id})["model_version"]
        self.assertEqual((mv["version"], mv["status"], mv["source"]), ("1", "READY", run_root + "/model"))
        self.call("POST", "/registered-models/alias", {"name": "m", "alias": "champion", "version": "1"})
        # A second version registered from the alias resolves to the same files.
        mv2 = self.call("POST", "/model-versions/create", {"name": "m", "source": "models:/m@champion"})["model_version"]
        self.assertEqual(mv2["version"], "2")

        by_alias = self.call("GET", "/registered-models/alias", params={"name": "m", "alias": "champion"})
        for version in (by_alias["model_version"]["version"], "1", "2"):
            uri = self.call("GET", "/model-versions/get-download-uri", params={"name": "m", "version": version})["artifact_uri"]
            self.assertEqual(uri, run_root + "/model")
            got = self.download_tree(uri)
            self.assertEqual(sorted(got), sorted(FILES))
            for name, data in FILES.items():
                self.assertEqual(hashlib.sha256(got[name]).hexdigest(), hashlib.sha256(data).hexdigest(), name)

            # The UI's download routes, byte-exact, with upstream's headers.
            for name, data in FILES.items():
                resp = self.session.get(self.server + "/model-versions/get-artifact",
                                        params={"name": "m", "version": version, "path": name}, timeout=60)
                self.assertEqual(resp.status_code, 200, resp.text)
                self.assertEqual(resp.content, data, name)
                self.assertTrue(resp.headers["Content-Disposition"].startswith("attachment; filename="))
                self.assertEqual(resp.headers["X-Content-Type-Options"], "nosniff")
        resp = self.session.get(self.server + "/model-versions/get-artifact",
                                params={"name": "m", "version": "1", "path": "MLmodel"}, timeout=60)
        self.assertEqual(resp.headers["Content-Type"], "text/plain")
        self.assertEqual(resp.headers["Content-Disposition"], "attachment; filename=MLmodel")
        resp = self.session.get(self.server + "/model-versions/get-artifact",
                                params={"name": "m", "version": "1", "path": "model.pkl"},
                                headers={"Range": "bytes=100-199"}, timeout=60)
        self.assertEqual((resp.status_code, resp.content), (206, FILES["model.pkl"][100:200]))
        resp = self.session.get(self.server + "/get-artifact",
                                params={"run_id": run_id, "path": "model/data/d\u00e9j\u00e0.txt"}, timeout=60)
        self.assertEqual((resp.status_code, resp.content), (200, FILES["data/d\u00e9j\u00e0.txt"]))
        self.assertEqual(resp.headers["Content-Disposition"],
                         "attachment; filename=deja.txt; filename*=UTF-8''d%C3%A9j%C3%A0.txt")

        # Hostile paths: 400, never a byte from outside the version's files.
        for bad in ["../../../mlflow.db", "%2e%2e/%2e%2e/x", "%252e%252e%252f..", "/etc/passwd", "..\\..\\x", "a\x00b"]:
            resp = self.session.get(self.server + "/model-versions/get-artifact",
                                    params={"name": "m", "version": "1", "path": bad}, timeout=60)
            self.assertEqual(resp.status_code, 400, f"{bad!r}: {resp.text}")
            self.assertEqual(resp.json()["error_code"], "INVALID_PARAMETER_VALUE")


if __name__ == "__main__":
    unittest.main()
