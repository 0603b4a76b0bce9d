"""Ferry's artifact proxy driven the way MLflow's client drives it.

The tests start their own `ferry server` from $FERRY_BIN (test/run.sh builds
it) and replay the requests of MLflow 3.11's HttpArtifactRepository /
MlflowArtifactsRepository: log_artifact-style PUTs with a guessed
Content-Type, list with path=<run root>/<sub> and re-validation of the
returned paths, streamed downloads in 1 MiB chunks, deletes, the multipart
upload probe with its fallback to a single PUT, and the presigned-download
probe with its fallback to a proxied GET. Every response's shape is checked.

Only the standard library and requests are used. Without FERRY_BIN every
test fails with a message saying how to set it.
"""

import hashlib
import json
import mimetypes
import os
import pathlib
import posixpath
import shutil
import tempfile
import unittest
import urllib.parse
import uuid

import requests

from ferry_server import FerryServerCase

MLFLOW_VERSION = "3.11.2.dev0"
DOWNLOAD_CHUNK_SIZE = 1024 * 1024  # the client's _DOWNLOAD_CHUNK_SIZE
MPU_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
PRESIGN_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"

# mlflow/utils/mime_type_utils.py
_TEXT_EXTENSIONS = [
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon",
    "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst",
    "MLmodel", "mlproject",
]


def guess_mime_type(file_path):
    """The client's _guess_mime_type (the server uses the same rules)."""
    filename = pathlib.Path(file_path).name
    extension = os.path.splitext(filename)[-1].replace(".", "")
    if extension == "":
        extension = filename
    if extension in _TEXT_EXTENSIONS:
        return "text/plain"
    mime_type, _ = mimetypes.guess_type(filename)
    return mime_type or "application/octet-stream"


class InvalidPath(Exception):
    pass


def validate_path_is_safe(path):
    """A port of mlflow.utils.uri.validate_path_is_safe (POSIX client)."""
    for _ in range(10):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    # Control characters are escaped again, not refused (spec §3 step 2).
    path = "".join(f"%{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in path)
    if "#" in path:
        raise InvalidPath(path)
    if path.startswith("file:"):
        path = urllib.parse.urlparse(path).path
    if (
        ".." in path.split("/")
        or pathlib.PureWindowsPath(path).is_absolute()
        or pathlib.PurePosixPath(path).is_absolute()
    ):
        raise InvalidPath(path)
    return path




class FileInfo:
    def __init__(self, path, is_dir, file_size):
        self.path, self.is_dir, self.file_size = path, is_dir, file_size

    def __repr__(self):
        return f"FileInfo({self.path!r}, {self.is_dir!r}, {self.file_size!r})"


class HttpArtifactRepository:
    """The request shapes of mlflow.store.artifact.http_artifact_repo."""

    def __init__(self, test, artifact_uri, session):
        self.test = test
        self.artifact_uri = artifact_uri.rstrip("/")
        self.session = session
        self.base, tail = self.artifact_uri.split("/mlflow-artifacts/artifacts", 1)
        self.root = tail.lstrip("/")

    # -- every response goes through one of these checks ------------------

    def check_empty_json(self, resp, what):
        self.test.assertEqual(resp.status_code, 200, f"{what}: {resp.status_code} {resp.text[:300]}")
        self.test.assertEqual(resp.headers.get("Content-Type"), "application/json", what)
        self.test.assertEqual(resp.content, b"{}", what)
        self.test.assertEqual(resp.json(), {}, what)

    def check_error(self, resp, status, code, message=None, prefix=None):
        self.test.assertEqual(resp.status_code, status, resp.text[:300])
        self.test.assertEqual(resp.headers.get("Content-Type"), "application/json")
        body = resp.json()
        self.test.assertIsInstance(body, dict)
        self.test.assertEqual(body["error_code"], code)
        self.test.assertIsInstance(body["message"], str)
        self.test.assertLessEqual(set(body), {"error_code", "message", "sqlstate", "error_class"})
        if message is not None:
            self.test.assertEqual(body["message"], message)
        if prefix is not None:
            self.test.assertTrue(body["message"].startswith(prefix), body["message"])
        return body

    # -- the repository's operations ---------------------------------------

    def log_artifact(self, local_file, artifact_path=None):
        verify_artifact_path = artifact_path or ""
        self.test.assertEqual(validate_path_is_safe(verify_artifact_path), verify_artifact_path)
        file_name = os.path.basename(local_file)
        paths = (artifact_path, file_name) if artifact_path else (file_name,)
        endpoint = posixpath.join("/", *paths)
        headers = {"Content-Type": guess_mime_type(file_name)}
        with open(local_file, "rb") as f:
            resp = self.session.put(self.artifact_uri + endpoint, data=f, headers=headers, timeout=120)
        self.check_empty_json(resp, f"PUT {endpoint}")

    def log_artifacts(self, local_dir, artifact_path=None):
        local_dir = os.path.abspath(local_dir)
        for root, _, filenames in os.walk(local_dir):
            rel = os.path.relpath(root, local_dir)
            rel = "" if rel == "." else rel
            dest = posixpath.join(artifact_path or "", rel) if (artifact_path or rel) else None
            for name in filenames:
                self.log_artifact(os.path.join(root, name), dest)

    def list_artifacts(self, path=None):
        params = {"path": posixpath.join(self.root, path) if path else self.root}
        resp = self.session.get(self.base + "/mlflow-artifacts/artifacts", params=params, timeout=60)
        self.test.assertEqual(resp.status_code, 200, resp.text[:300])
        self.test.assertEqual(resp.headers.get("Content-Type"), "application/json")
        body = resp.json()
        self.test.assertIsInstance(body, dict)
        self.test.assertLessEqual(set(body), {"files"})
        if "files" in body:
            self.test.assertTrue(body["files"], "an empty listing must be {} (files omitted)")
        infos = []
        for f in body.get("files", []):
            self.test.assertLessEqual(set(f), {"path", "is_dir", "file_size"}, f)
            self.test.assertIsInstance(f["path"], str)
            self.test.assertNotIn("/", f["path"], "the proxy lists basenames only")
            self.test.assertIsInstance(f["is_dir"], bool)
            if "file_size" in f:
                self.test.assertIs(type(f["file_size"]), int, "file_size is a JSON number")
                self.test.assertFalse(f["is_dir"], "directories have no file_size")
                self.test.assertGreater(f["file_size"], 0, "zero-byte files have no file_size")
            validated = validate_path_is_safe(f["path"])
            infos.append(
                FileInfo(
                    posixpath.join(path, validated) if path else validated,
                    f["is_dir"],
                    int(f["file_size"]) if "file_size" in f else None,
                )
            )
        names = [f["path"] for f in body.get("files", [])]
        self.test.assertEqual(names, sorted(names), "the server sorts the listing")
        return sorted(infos, key=lambda i: i.path)

    def download_file(self, remote_file_path, local_path):
        url = posixpath.join(self.artifact_uri, remote_file_path)
        with self.session.get(url, stream=True, timeout=120) as resp:
            self.test.assertEqual(resp.status_code, 200, resp.text[:300] if not resp.ok else "")
            self.test.assertEqual(resp.headers.get("Content-Type"), guess_mime_type(remote_file_path))
            self.test.assertEqual(
                resp.headers.get("Content-Disposition"),
                "attachment; filename=" + posixpath.basename(remote_file_path),
            )
            self.test.assertEqual(resp.headers.get("X-Content-Type-Options"), "nosniff")
            chunks = 0
            with open(local_path, "wb") as f:
                for chunk in resp.iter_content(chunk_size=DOWNLOAD_CHUNK_SIZE):
                    self.test.assertLessEqual(len(chunk), DOWNLOAD_CHUNK_SIZE)
                    f.write(chunk)
                    chunks += 1
        return chunks

    def delete_artifacts(self, artifact_path=None):
        url = posixpath.join(self.artifact_uri, artifact_path) if artifact_path else self.artifact_uri
        self.check_empty_json(self.session.delete(url, timeout=60), f"DELETE {url}")

    def mpu(self, op, artifact_path, payload):
        endpoint = posixpath.join("/mlflow-artifacts/mpu", op, self.root, artifact_path or "")
        return self.session.post(self.base + endpoint, json=payload, timeout=60)

    def try_multipart_upload(self, local_file, artifact_path, num_parts):
        """_try_multipart_upload's create call; True when the server did it."""
        resp = self.mpu("create", artifact_path, {"path": local_file, "num_parts": num_parts})
        if resp.status_code >= 400:
            body = resp.json()
            if body.get("message", "").startswith(MPU_UNSUPPORTED):
                return False, resp
            self.test.fail(f"mpu/create failed without the fallback message: {resp.text}")
        return True, resp

    def presigned(self, remote_file_path):
        url = posixpath.join(self.base + "/mlflow-artifacts/presigned", self.root, remote_file_path)
        return self.session.get(url, timeout=60)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FerryArtifactClientTest(FerryServerCase):
    """One ferry server for the class; each test uses its own run."""

    def setUp(self):
        super().setUp()
        self.run_id = uuid.uuid4().hex
        self.repo = HttpArtifactRepository(
            self,
            f"{self.server}/api/2.0/mlflow-artifacts/artifacts/0/{self.run_id}/artifacts",
            self.session,
        )
        self.local = tempfile.mkdtemp(prefix="ferry-py-local-")
        self.addCleanup(shutil.rmtree, self.local, True)

    def write(self, rel, data):
        path = os.path.join(self.local, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- tests ---------------------------------------------------------------

    def test_server_routes(self):
        r = self.session.get(self.server + "/health", timeout=10)
        self.assertEqual((r.status_code, r.text), (200, "OK"))
        r = self.session.get(self.server + "/version", timeout=10)
        self.assertEqual((r.status_code, r.text), (200, MLFLOW_VERSION))
        self.assertTrue(r.headers.get("X-Ferry-Version"))
        for api in ("/api", "/ajax-api"):
            r = self.session.get(self.server + api + "/3.0/mlflow/server-info", timeout=10)
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.headers.get("Content-Type"), "application/json")
            self.assertEqual(r.json(), {"store_type": "SqlStore", "workspaces_enabled": False})

    def test_log_list_download(self):
        files = {
            "a.txt": b"hello\n",
            "empty.txt": b"",
            "model/MLmodel": b"flavors:\n  python_function: {}\n",
            "model/model.pkl": os.urandom(1000),
            "model/data/weights.bin": os.urandom(3 * DOWNLOAD_CHUNK_SIZE + 17),
            "plots/c.png": b"\x89PNG\r\n\x1a\n" + os.urandom(100),
            "plots/d.pdf": b"%PDF-1.4\n" + os.urandom(100),
            "m.tar.gz": os.urandom(50),
        }
        for rel, data in files.items():
            self.write(rel, data)
        # log_artifacts of the directory, as mlflow.log_artifacts does.
        self.repo.log_artifacts(self.local)

        root = self.repo.list_artifacts()
        self.assertEqual(
            [(i.path, i.is_dir, i.file_size) for i in root],
            [("a.txt", False, 6), ("empty.txt", False, None), ("m.tar.gz", False, 50),
             ("model", True, None), ("plots", True, None)],
        )
        model = self.repo.list_artifacts("model")
        self.assertEqual(
            [(i.path, i.is_dir, i.file_size) for i in model],
            [("model/MLmodel", False, len(files["model/MLmodel"])), ("model/data", True, None),
             ("model/model.pkl", False, 1000)],
        )
        self.assertEqual(
            [i.path for i in self.repo.list_artifacts("model/data")], ["model/data/weights.bin"]
        )
        self.assertEqual(self.repo.list_artifacts("nope"), [])
        self.assertEqual(self.repo.list_artifacts("a.txt"), [], "a file lists as empty")

        # Download everything, as download_artifacts walks the listing.
        out = os.path.join(self.local, "_out")
        for rel, data in files.items():
            dst = os.path.join(out, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            chunks = self.repo.download_file(rel, dst)
            self.assertEqual(sha256_file(dst), hashlib.sha256(data).hexdigest(), rel)
            if rel == "model/data/weights.bin":
                self.assertGreaterEqual(chunks, 4, "a 3 MiB file streams in several 1 MiB chunks")

        # Overwrite keeps the newest content.
        self.write("a.txt", b"second version")
        self.repo.log_artifact(os.path.join(self.local, "a.txt"))
        self.repo.download_file("a.txt", os.path.join(out, "a2.txt"))
        with open(os.path.join(out, "a2.txt"), "rb") as f:
            self.assertEqual(f.read(), b"second version")

    def test_delete(self):
        for rel in ("keep.txt", "sub/a.txt", "sub/deeper/b.txt"):
            self.repo.log_artifact(self.write(rel, rel.encode()), posixpath.dirname(rel) or None)
        self.repo.delete_artifacts("sub")
        self.assertEqual([i.path for i in self.repo.list_artifacts()], ["keep.txt"])
        self.assertEqual(self.repo.list_artifacts("sub"), [])
        r = self.session.get(self.repo.artifact_uri + "/sub/a.txt", timeout=30)
        self.repo.check_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
        self.repo.delete_artifacts("never/existed")
        # mlflow gc deletes the whole run root.
        self.repo.delete_artifacts()
        self.assertEqual(self.repo.list_artifacts(), [])
        r = self.session.get(self.server + "/api/2.0/mlflow-artifacts/artifacts",
                             params={"path": self.repo.root}, timeout=30)
        self.assertEqual(r.content, b"{}")

    def test_multipart_upload_falls_back_to_put(self):
        data = os.urandom(2 * 1024 * 1024 + 5)
        local_file = self.write("big/weights.bin", data)
        did_mpu, resp = self.repo.try_multipart_upload(local_file, "checkpoints", 3)
        self.assertFalse(did_mpu)
        self.assertEqual(resp.status_code, 501)
        body = self.repo.check_error(resp, 501, "NOT_IMPLEMENTED", message=MPU_UNSUPPORTED)
        self.assertEqual(set(body), {"error_code", "message"})
        # The fallback: a single PUT to the same key.
        self.repo.log_artifact(local_file, "checkpoints")
        self.assertEqual(
            [(i.path, i.file_size) for i in self.repo.list_artifacts("checkpoints")],
            [("checkpoints/weights.bin", len(data))],
        )
        # complete and abort answer the same way (the client aborts on error).
        parts = [{"part_number": 1, "etag": '"e1"', "url": "http://x/1"}]
        for op, payload in (
            ("complete", {"path": local_file, "upload_id": "u", "parts": parts}),
            ("abort", {"path": local_file, "upload_id": "u"}),
        ):
            self.repo.check_error(self.repo.mpu(op, "checkpoints", payload), 501, "NOT_IMPLEMENTED",
                                  message=MPU_UNSUPPORTED)
        # A request the client would never send still gets validated first.
        r = self.repo.mpu("create", "checkpoints", {"num_parts": 3})
        self.repo.check_error(r, 400, "INVALID_PARAMETER_VALUE",
                              prefix="Missing value for required parameter 'path'")
        r = self.session.post(self.repo.base + "/mlflow-artifacts/mpu/create/" + self.repo.root,
                              data=json.dumps({"path": "x"}), headers={"Content-Type": "text/plain"}, timeout=30)
        self.repo.check_error(r, 400, "INVALID_PARAMETER_VALUE",
                              message="Bad Request. Content-Type must be one of ['application/json'].")

    def test_presigned_download_falls_back(self):
        data = os.urandom(1234)
        self.repo.log_artifact(self.write("m/model.bin", data), "m")
        r = self.repo.presigned("m/model.bin")
        body = self.repo.check_error(r, 501, "NOT_IMPLEMENTED", message=PRESIGN_UNSUPPORTED)
        self.assertEqual(set(body), {"error_code", "message"})
        # 404 or 501 make the client fall back to the proxied GET.
        dst = os.path.join(self.local, "dl.bin")
        self.repo.download_file("m/model.bin", dst)
        self.assertEqual(sha256_file(dst), hashlib.sha256(data).hexdigest())

    def test_errors_the_client_sees(self):
        r = self.session.get(self.repo.artifact_uri + "/no/such/file.txt", timeout=30)
        body = self.repo.check_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
        self.assertIn("No such artifact", body["message"])
        self.assertNotIn("Content-Disposition", r.headers)
        for bad in ("..%2F..%2Fsecret", "%252E%252E%252Fsecret", "a%00b"):
            r = self.session.get(self.repo.artifact_uri + "/" + bad, timeout=30)
            self.repo.check_error(r, 400, "INVALID_PARAMETER_VALUE", message="Invalid path")
            r = self.session.put(self.repo.artifact_uri + "/" + bad, data=b"x", timeout=30)
            self.repo.check_error(r, 400, "INVALID_PARAMETER_VALUE", message="Invalid path")
        r = self.session.get(self.server + "/api/2.0/mlflow-artifacts/artifacts",
                             params={"path": "../" + self.repo.root}, timeout=30)
        self.repo.check_error(r, 400, "INVALID_PARAMETER_VALUE", message="Invalid path")
        # The workspace header is refused while workspaces are off.
        r = self.session.get(self.repo.artifact_uri + "/x", headers={"X-MLFLOW-WORKSPACE": "team"}, timeout=30)
        self.repo.check_error(r, 500, "FEATURE_DISABLED")

    def test_client_revalidates_listed_paths(self):
        # A name that looks encoded is decoded by the server and must still
        # pass the client's own validation when listed back.
        name = "dog%step%100%timestamp%100.png"
        local_file = self.write(os.path.join("imgs", name), b"png")
        with open(local_file, "rb") as f:
            r = self.session.put(self.repo.artifact_uri + "/images/" + urllib.parse.quote(name, safe=""),
                                 data=f, headers={"Content-Type": "image/png"}, timeout=30)
        self.repo.check_empty_json(r, "PUT encoded name")
        listed = self.repo.list_artifacts("images")
        self.assertEqual([i.path for i in listed], ["images/" + name])
        r = self.session.get(self.repo.artifact_uri + "/images/" + urllib.parse.quote(name, safe=""), timeout=30)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers.get("Content-Disposition"), "attachment; filename=" + name)
        self.assertEqual(r.content, b"png")


if __name__ == "__main__":
    unittest.main()
