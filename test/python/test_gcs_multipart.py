"""MLflow's proxied multipart upload, end to end through Ferry on GCS.

The test plays MLflow 3.11's client algorithm (HttpArtifactRepository.
_try_multipart_upload, spec multipart.md section 2) against Ferry with a
gs:// destination: mpu/create, one PUT per credential to its V4-signed
XML-API part URL with exactly the credential's headers (plain requests, a
thread pool), the ETag header of each answer, mpu/complete with the parts
sorted, mpu/abort when anything fails. The object must then read back byte
for byte through Ferry and straight from the emulator, with no part byte
counted by Ferry.

fake-gcs-server (test/backends/gcs.sh) has no XML multipart API and does not
check signatures, so Ferry talks to test/backends/gcsxml in front of it: it
verifies every signed URL (a tampered part URL is refused), requires the
OAuth tokens it issues for the service-account key it writes, and keeps the
parts until complete or abort. gcsxml is built from the repository with
`go build`; the ferry binary comes from $FERRY_BIN. Without fake-gcs-server
the tests are skipped, or fail when CI=true or FERRY_REQUIRE_BACKENDS=1.
"""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import unittest
import uuid

import requests

from mpu_client import REPO, MultipartClient, backend_binary, ferry_bin, skip_or_fail, start_ferry, stop_ferry

GCSSH = REPO / "test" / "backends" / "gcs.sh"
CHUNK = 5 * 1024 * 1024  # the smallest part the XML API accepts; the client default is 10 MiB
PREFIX = "artifacts"


class FerryOnGCS(MultipartClient, unittest.TestCase):
    CHUNK = CHUNK

    @staticmethod
    def tamper(url):
        return url.replace("partNumber=", "partNumber=1")  # another part than the one signed

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-gcs-py-")
        cls.gcs_pid = None
        cls.xml = None
        cls.ferry = None
        if backend_binary(GCSSH, "fake-gcs-server") is None:
            skip_or_fail("fake-gcs-server not installed; run test/backends/gcs.sh install")
        ferry_bin()  # fails before the backend starts when FERRY_BIN is unset
        try:
            out = subprocess.run([str(GCSSH), "start", cls.tmp], capture_output=True, text=True,
                                 check=True, timeout=120).stdout
            info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            cls.gcs_pid = info["PID"]
            cls.gcs = "http://" + info["HOST"]
            cls.bucket = "mpu-" + uuid.uuid4().hex[:10]
            requests.post(cls.gcs + "/storage/v1/b?project=ferry-test", json={"name": cls.bucket},
                          timeout=30).raise_for_status()

            xml_bin = os.path.join(cls.tmp, "gcsxml")
            subprocess.run(["go", "build", "-o", xml_bin, "./test/backends/gcsxml/cmd/gcsxml"],
                           cwd=REPO, check=True, timeout=600)
            xml_dir = os.path.join(cls.tmp, "gcsxml-data")
            os.makedirs(xml_dir)
            cls.xml = subprocess.Popen([xml_bin, "-upstream", cls.gcs, "-dir", xml_dir],
                                       stdout=subprocess.PIPE, text=True)
            xinfo = {}
            while len(xinfo) < 2:
                line = cls.xml.stdout.readline()
                if not line:
                    raise RuntimeError("gcsxml exited at start")
                k, _, v = line.strip().partition("=")
                xinfo[k] = v
            cls.xml_url = "http://" + xinfo["HOST"]

            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("MLFLOW_", "FERRY_", "AWS_", "GOOGLE_", "STORAGE_EMULATOR_HOST", "GCE_METADATA_HOST"))}
            env.update({"STORAGE_EMULATOR_HOST": xinfo["HOST"], "GOOGLE_APPLICATION_CREDENTIALS": xinfo["KEY"]})
            start_ferry(cls, f"gs://{cls.bucket}/{PREFIX}", env)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_ferry(cls)
        if cls.xml is not None:
            cls.xml.send_signal(signal.SIGTERM)
            try:
                cls.xml.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.xml.kill()
            cls.xml.stdout.close()
        if cls.gcs_pid:
            subprocess.run([str(GCSSH), "stop", cls.gcs_pid], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- helpers ----------------------------------------------------------

    def stats(self):
        return requests.get(self.xml_url + "/_gcsxml/stats", timeout=10).json()

    def ferry_put_bytes(self):
        text = requests.get(self.base + "/metrics", timeout=10).text
        return sum(float(m.group(1)) for m in re.finditer(
            r'^ferry_store_transferred_bytes_total\{[^}]*op="put"[^}]*\} (\S+)$', text, re.M))

    def emulator_object(self, name):
        r = requests.get(f"{self.gcs}/storage/v1/b/{self.bucket}/o/{requests.utils.quote(name, safe='')}",
                         params={"alt": "media"}, timeout=60)
        return r.status_code, r.content

    # --- tests ------------------------------------------------------------

    def test_multipart_upload_round_trip(self):
        local = self.make_file("model.bin", 2 * CHUNK + 12345)
        put_before, parts_before = self.ferry_put_bytes(), self.stats()["part_bytes"]
        create = self.log_artifact_multipart(local, "0/run1/artifacts/weights")
        self.assertTrue(create["upload_id"])
        for c in create["credentials"]:
            self.assertNotIn("headers", c, "GCS part URLs need no headers (as upstream)")
            self.assertIn("X-Goog-Signature=", c["url"])
        want = pathlib.Path(local).read_bytes()
        self.assertEqual(self.stats()["part_bytes"] - parts_before, len(want), "every part went to the server")
        self.assertEqual(self.ferry_put_bytes(), put_before, "no part byte went through ferry")
        code, got = self.emulator_object(f"{PREFIX}/0/run1/artifacts/weights/model.bin")
        self.assertEqual(code, 200)
        self.assertEqual(got, want)
        r = requests.get(f"{self.base}/api/2.0/mlflow-artifacts/artifacts/0/run1/artifacts/weights/model.bin", timeout=60)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.content, want)
        self.assertEqual(self.stats()["open_uploads"], 0)

    def test_abort(self):
        local = self.make_file("aborted.bin", CHUNK + 1)
        resp = self.mpu("create", "0/run2/artifacts", {"path": local, "num_parts": 2})
        self.assertEqual(resp.status_code, 200, resp.text)
        create = resp.json()
        first = create["credentials"][0]
        with open(local, "rb") as f:
            r = requests.put(first["url"], data=f.read(CHUNK), headers=first.get("headers", {}), timeout=60)
        self.assertEqual(r.status_code, 200, r.text)
        resp = self.mpu("abort", "0/run2/artifacts", {"path": local, "upload_id": create["upload_id"]})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.json(), {})
        self.assertEqual(self.stats()["open_uploads"], 0)
        self.assertEqual(self.emulator_object(f"{PREFIX}/0/run2/artifacts/aborted.bin")[0], 404)

    def test_tampered_part_url_refused_and_aborted(self):
        local = self.make_file("broken.bin", 2 * CHUNK)
        refused_before = self.stats()["signed_refused"]
        with self.assertRaisesRegex(RuntimeError, "Failed to upload at least one part"):
            self.log_artifact_multipart(local, "0/run3/artifacts", tamper_part=1)
        self.assertGreater(self.stats()["signed_refused"], refused_before)
        self.assertEqual(self.stats()["open_uploads"], 0)
        self.assertEqual(self.emulator_object(f"{PREFIX}/0/run3/artifacts/broken.bin")[0], 404)


if __name__ == "__main__":
    unittest.main()
