"""Shared code of the multipart tests (test_s3/azure/gcs_multipart.py).

MultipartClient plays MLflow 3.11's client algorithm (HttpArtifactRepository.
_try_multipart_upload, spec multipart.md section 2) with plain `requests`:
mpu/create, one PUT per credential to its presigned URL with exactly the
credential's headers (a thread pool), mpu/complete with the parts sorted by
part_number, mpu/abort when anything fails. A test class mixes it in and sets
``CHUNK``, ``tmp``, ``base`` and ``tamper(url)`` (how a tampered part URL is
made for that backend). start_ferry/stop_ferry run the ferry server the
classes share; backend_binary finds an emulator installed by its script.
"""

import concurrent.futures
import math
import os
import pathlib
import shutil
import signal
import subprocess
import time
import unittest

import requests

from ferry_server import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("FERRY_REQUIRE_BACKENDS") == "1"


def backend_binary(script, name):
    """The emulator `name` from `script bin`, else from PATH, else None."""
    out = subprocess.run([str(script), "bin"], capture_output=True, text=True, check=True).stdout.strip()
    path = pathlib.Path(out) / name
    if path.exists():
        return path
    found = shutil.which(name)
    return pathlib.Path(found) if found else None


def skip_or_fail(msg):
    """Without the backend: fail when REQUIRED, else skip the class."""
    if REQUIRED:
        raise RuntimeError(msg)
    raise unittest.SkipTest(msg)


def ferry_bin():
    path = os.environ.get("FERRY_BIN")
    if not path:
        raise RuntimeError("FERRY_BIN is not set; build ferry and point FERRY_BIN at it (test/run.sh does)")
    return path


def start_ferry(cls, destination, env):
    """Start ferry for cls on a free port (cls.base, cls.ferry, cls.ferry_log) and wait for /health."""
    port = free_port()
    cls.base = f"http://127.0.0.1:{port}"
    cls.ferry_log = open(os.path.join(cls.tmp, "ferry.log"), "wb")
    cls.ferry = subprocess.Popen(
        [ferry_bin(), "server", "--host", "127.0.0.1", "--port", str(port),
         "--artifacts-destination", destination,
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


def stop_ferry(cls):
    if cls.ferry is not None:
        cls.ferry.send_signal(signal.SIGTERM)
        try:
            cls.ferry.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cls.ferry.kill()
        cls.ferry_log.close()


class MultipartClient:
    """Mixin for a unittest.TestCase: the MLflow client's multipart algorithm."""

    CHUNK = None

    @staticmethod
    def tamper(url):
        raise NotImplementedError

    def mpu(self, op, artifact_dir, body):
        return requests.post(f"{self.base}/api/2.0/mlflow-artifacts/mpu/{op}/{artifact_dir}", json=body, timeout=120)

    def log_artifact_multipart(self, local_file, artifact_dir, tamper_part=None):
        """_try_multipart_upload: create, parts through presigned URLs, complete; abort on failure."""
        chunk = self.CHUNK
        size = os.path.getsize(local_file)
        num_parts = math.ceil(size / chunk)
        resp = self.mpu("create", artifact_dir, {"path": local_file, "num_parts": num_parts})
        self.assertEqual(resp.status_code, 200, resp.text)
        create = resp.json()
        credentials = create.get("credentials", [])
        self.assertEqual([c["part_number"] for c in credentials], list(range(1, num_parts + 1)))

        def upload_part(index, credential):
            with open(local_file, "rb") as f:
                f.seek(chunk * index)
                data = f.read(chunk)
            url = credential["url"]
            if index == tamper_part:
                url = self.tamper(url)
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
