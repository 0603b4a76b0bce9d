"""MLflow's proxied multipart upload, end to end through Ferry on Azurite.

The test plays MLflow 3.11's client algorithm (HttpArtifactRepository.
_try_multipart_upload, spec multipart.md section 2) against a ferry whose
destination is wasbs://: mpu/create with the local path and num_parts =
ceil(size / chunk), one PUT per credential to its block-SAS URL with exactly
the credential's headers (plain requests, no auth, a thread pool), mpu/complete
with the parts (their url carries the block id, as upstream's Azure repository
reads it), and mpu/abort when anything fails. The bytes read back through
Ferry must match, and Ferry's byte counters must not move: the blocks go
straight to Azurite, which checks every SAS signature.

Azurite comes from test/backends/azure.sh (npm, cached in $FERRY_TEST_CACHE);
the ferry binary from $FERRY_BIN. Without Azurite the tests are skipped, or
fail when CI=true or FERRY_REQUIRE_BACKENDS=1. Only the standard library and
requests are used.
"""

import concurrent.futures
import math
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
AZSH = REPO / "test" / "backends" / "azure.sh"
CHUNK = 4 * 1024 * 1024
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("FERRY_REQUIRE_BACKENDS") == "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def azurite_binary():
    out = subprocess.run([str(AZSH), "bin"], capture_output=True, text=True, check=True).stdout.strip()
    path = pathlib.Path(out) / "azurite-blob"
    if path.exists():
        return path
    found = shutil.which("azurite-blob")
    return pathlib.Path(found) if found else None


def put_bytes_metric(base):
    total = 0.0
    for line in requests.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("ferry_store_transferred_bytes_total{") and 'op="put"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class FerryOnAzurite(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-azure-py-")
        cls.azurite_pid = None
        cls.ferry = None
        if azurite_binary() is None:
            msg = "azurite not installed; run test/backends/azure.sh install"
            if REQUIRED:
                raise RuntimeError(msg)
            raise unittest.SkipTest(msg)
        ferry_bin = os.environ.get("FERRY_BIN")
        if not ferry_bin:
            raise RuntimeError("FERRY_BIN is not set; build ferry and point FERRY_BIN at it (test/run.sh does)")
        try:
            out = subprocess.run([str(AZSH), "start", cls.tmp], capture_output=True, text=True,
                                 check=True, timeout=120).stdout
            info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            cls.azurite_pid = info["PID"]
            cls.endpoint = info["ENDPOINT"]
            container = "mpu-" + uuid.uuid4().hex[:10]
            port = free_port()
            cls.base = f"http://127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FERRY_", "AZURE_"))}
            env.update({
                "FERRY_AZURE_BLOB_ENDPOINT_URL": cls.endpoint,
                "AZURE_STORAGE_ACCESS_KEY": info["ACCOUNT_KEY"],
            })
            cls.ferry_log = open(os.path.join(cls.tmp, "ferry.log"), "wb")
            cls.ferry = subprocess.Popen(
                [ferry_bin, "server", "--host", "127.0.0.1", "--port", str(port),
                 "--artifacts-destination", f"wasbs://{container}@{info['ACCOUNT']}.blob.core.windows.net/artifacts",
                 "--backend-store-uri", "sqlite:///" + os.path.join(cls.tmp, "mlflow.db")],
                cwd=cls.tmp, env=env, stdout=cls.ferry_log, stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while True:
                try:
                    if requests.get(cls.base + "/health", timeout=2).text == "OK":
                        break
                except requests.ConnectionError:
                    pass
                if cls.ferry.poll() is not None or time.time() > deadline:
                    raise RuntimeError("ferry did not start: " + pathlib.Path(cls.ferry_log.name).read_text())
                time.sleep(0.05)
            # Ferry, as upstream, creates no container: make it with one
            # SharedKey-signed request (no Azure SDK needed).
            create_container(cls.endpoint, info["ACCOUNT"], info["ACCOUNT_KEY"], container)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.ferry is not None:
            cls.ferry.send_signal(signal.SIGTERM)
            try:
                cls.ferry.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.ferry.kill()
            cls.ferry_log.close()
        if cls.azurite_pid:
            subprocess.run([str(AZSH), "stop", cls.azurite_pid], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- the MLflow client's algorithm -----------------------------------

    def mpu(self, op, artifact_dir, body):
        return requests.post(f"{self.base}/api/2.0/mlflow-artifacts/mpu/{op}/{artifact_dir}", json=body, timeout=120)

    def log_artifact_multipart(self, local_file, artifact_dir, tamper_part=None):
        """_try_multipart_upload: create, parts through presigned URLs, complete; abort on failure."""
        size = os.path.getsize(local_file)
        num_parts = math.ceil(size / CHUNK)
        resp = self.mpu("create", artifact_dir, {"path": local_file, "num_parts": num_parts})
        self.assertEqual(resp.status_code, 200, resp.text)
        create = resp.json()
        credentials = create.get("credentials", [])
        self.assertEqual([c["part_number"] for c in credentials], list(range(1, num_parts + 1)))

        def upload_part(index, credential):
            with open(local_file, "rb") as f:
                f.seek(CHUNK * index)
                data = f.read(CHUNK)
            url = credential["url"]
            if index == tamper_part:
                url = url.replace("sig=", "sig=A", 1)
            r = requests.put(url, data=data, headers=credential.get("headers", {}), timeout=120)
            r.raise_for_status()
            return {"part_number": credential["part_number"], "etag": r.headers.get("ETag", ""), "url": credential["url"]}

        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(2 * (os.cpu_count() or 1), 20)) as pool:
                futures = [pool.submit(upload_part, i, c) for i, c in enumerate(credentials)]
                errors = {}
                parts = []
                for i, fut in enumerate(futures):
                    try:
                        parts.append(fut.result())
                    except Exception as e:  # noqa: BLE001 - the client collects every part's error
                        errors[i + 1] = repr(e)
            if errors:
                raise RuntimeError(f"Failed to upload at least one part of {local_file}. Errors: {errors}")
            parts.sort(key=lambda p: p["part_number"])
            resp = self.mpu("complete", artifact_dir,
                            {"path": local_file, "upload_id": create.get("upload_id"), "parts": parts})
            if resp.status_code != 200:
                raise RuntimeError(f"complete: {resp.status_code} {resp.text}")
        except Exception:
            resp = self.mpu("abort", artifact_dir, {"path": local_file, "upload_id": create.get("upload_id")})
            self.assertEqual(resp.status_code, 200, resp.text)
            raise
        return create

    def make_file(self, name, size):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        return path

    def get(self, path):
        return requests.get(f"{self.base}/api/2.0/mlflow-artifacts/artifacts/{path}", timeout=60)

    # --- tests ------------------------------------------------------------

    def test_multipart_upload_round_trip(self):
        local = self.make_file("model.bin", 2 * CHUNK + 12345)
        before = put_bytes_metric(self.base)
        create = self.log_artifact_multipart(local, "0/run1/artifacts/weights")
        for c in create["credentials"]:
            self.assertIn("comp=block", c["url"])
            self.assertIn("blockid=", c["url"])
            self.assertEqual(c.get("headers", {}), {})
        self.assertEqual(put_bytes_metric(self.base), before, "block PUTs went through ferry")
        r = self.get("0/run1/artifacts/weights/model.bin")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.content, pathlib.Path(local).read_bytes())

    def test_abort_leaves_the_earlier_blob(self):
        old = b"committed earlier"
        r = requests.put(f"{self.base}/api/2.0/mlflow-artifacts/artifacts/0/run2/artifacts/aborted.bin", data=old, timeout=60)
        self.assertEqual(r.status_code, 200, r.text)
        local = self.make_file("aborted.bin", CHUNK + 1)
        resp = self.mpu("create", "0/run2/artifacts", {"path": local, "num_parts": 2})
        self.assertEqual(resp.status_code, 200, resp.text)
        create = resp.json()
        first = create["credentials"][0]
        with open(local, "rb") as f:
            r = requests.put(first["url"], data=f.read(CHUNK), headers=first.get("headers", {}), timeout=60)
        self.assertEqual(r.status_code, 201, r.text)
        resp = self.mpu("abort", "0/run2/artifacts", {"path": local, "upload_id": create["upload_id"]})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.json(), {})
        self.assertEqual(self.get("0/run2/artifacts/aborted.bin").content, old)

    def test_tampered_part_fails_and_commits_nothing(self):
        local = self.make_file("broken.bin", 2 * CHUNK)
        with self.assertRaisesRegex(RuntimeError, "Failed to upload at least one part"):
            self.log_artifact_multipart(local, "0/run3/artifacts", tamper_part=1)
        self.assertEqual(self.get("0/run3/artifacts/broken.bin").status_code, 404)


def create_container(endpoint, account, key, name):
    """PUT ?restype=container signed with the account key (SharedKey)."""
    import base64
    import hashlib
    import hmac
    from email.utils import formatdate
    from urllib.parse import urlparse

    date = formatdate(usegmt=True)
    version = "2021-08-06"
    path = urlparse(endpoint).path + "/" + name
    canonical_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
    canonical_resource = f"/{account}{path}\nrestype:container"
    to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + canonical_headers + canonical_resource
    sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
    r = requests.put(f"{endpoint}/{name}?restype=container", timeout=30, headers={
        "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}",
        "Content-Length": "0"})
    if r.status_code != 201:
        raise RuntimeError(f"create container: {r.status_code} {r.text}")


if __name__ == "__main__":
    unittest.main()
