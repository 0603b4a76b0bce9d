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

import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest
import uuid

import requests

from mpu_client import REPO, MultipartClient, backend_binary, ferry_bin, skip_or_fail, start_ferry, stop_ferry

AZSH = REPO / "test" / "backends" / "azure.sh"
CHUNK = 4 * 1024 * 1024


def put_bytes_metric(base):
    total = 0.0
    for line in requests.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("ferry_store_transferred_bytes_total{") and 'op="put"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class FerryOnAzurite(MultipartClient, unittest.TestCase):
    CHUNK = CHUNK

    @staticmethod
    def tamper(url):
        return url.replace("sig=", "sig=A", 1)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-azure-py-")
        cls.azurite_pid = None
        cls.ferry = None
        if backend_binary(AZSH, "azurite-blob") is None:
            skip_or_fail("azurite not installed; run test/backends/azure.sh install")
        ferry_bin()  # fails before the backend starts when FERRY_BIN is unset
        try:
            out = subprocess.run([str(AZSH), "start", cls.tmp], capture_output=True, text=True,
                                 check=True, timeout=120).stdout
            info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            cls.azurite_pid = info["PID"]
            cls.endpoint = info["ENDPOINT"]
            container = "mpu-" + uuid.uuid4().hex[:10]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FERRY_", "AZURE_"))}
            env.update({
                "FERRY_AZURE_BLOB_ENDPOINT_URL": cls.endpoint,
                "AZURE_STORAGE_ACCESS_KEY": info["ACCOUNT_KEY"],
            })
            start_ferry(cls, f"wasbs://{container}@{info['ACCOUNT']}.blob.core.windows.net/artifacts", env)
            # Ferry, as upstream, creates no container: make it with one
            # SharedKey-signed request (no Azure SDK needed).
            create_container(cls.endpoint, info["ACCOUNT"], info["ACCOUNT_KEY"], container)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_ferry(cls)
        if cls.azurite_pid:
            subprocess.run([str(AZSH), "stop", cls.azurite_pid], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

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
