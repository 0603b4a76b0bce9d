"""MLflow's proxied multipart upload, end to end through Ferry on MinIO.

The test plays MLflow 3.11's client algorithm (HttpArtifactRepository.
_try_multipart_upload, spec multipart.md section 2): mpu/create with the
local path and num_parts = ceil(size / chunk), one PUT per credential to its
presigned URL with exactly the credential's headers (plain requests, no
auth, a thread pool), the ETag header of each answer, mpu/complete with the
parts sorted by part_number, and mpu/abort when anything fails. The bytes
then read back from S3 (boto3) and through Ferry must match.

Ferry runs with MLFLOW_S3_EXPECTED_BUCKET_OWNER set: MinIO does not check the
owner, but it does check signatures, and the part URLs are signed with the
owner header, so a part PUT without the credential's headers is refused.

MinIO comes from test/backends/s3.sh (built into $FERRY_TEST_CACHE/bin); the
ferry binary from $FERRY_BIN. Without MinIO the tests are skipped, or fail
when CI=true or FERRY_REQUIRE_BACKENDS=1. Only the standard library, boto3
and requests are used.
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

import boto3
import botocore.config
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
S3SH = REPO / "test" / "backends" / "s3.sh"
CHUNK = 5 * 1024 * 1024  # the smallest part S3 accepts; the client default is 10 MiB
OWNER = "123456789012"
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("FERRY_REQUIRE_BACKENDS") == "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def minio_binary():
    out = subprocess.run([str(S3SH), "bin"], capture_output=True, text=True, check=True).stdout.strip()
    path = pathlib.Path(out) / "minio"
    if path.exists():
        return path
    found = shutil.which("minio")
    return pathlib.Path(found) if found else None


class FerryOnMinIO(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-s3-py-")
        cls.minio_pid = None
        cls.ferry = None
        if minio_binary() is None:
            msg = "minio not installed; run test/backends/s3.sh install"
            if REQUIRED:
                raise RuntimeError(msg)
            raise unittest.SkipTest(msg)
        ferry_bin = os.environ.get("FERRY_BIN")
        if not ferry_bin:
            raise RuntimeError("FERRY_BIN is not set; build ferry and point FERRY_BIN at it (test/run.sh does)")
        try:
            out = subprocess.run([str(S3SH), "start", "minio", cls.tmp], capture_output=True, text=True,
                                 check=True, timeout=120).stdout
            info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            cls.minio_pid = info["PID"]
            cls.endpoint = info["ENDPOINT"]
            cls.s3 = boto3.client(
                "s3", endpoint_url=cls.endpoint, aws_access_key_id=info["ACCESS_KEY"],
                aws_secret_access_key=info["SECRET_KEY"], region_name="us-east-1",
                config=botocore.config.Config(s3={"addressing_style": "path"}))
            cls.bucket = "mpu-" + uuid.uuid4().hex[:10]
            cls.s3.create_bucket(Bucket=cls.bucket)

            port = free_port()
            cls.base = f"http://127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FERRY_", "AWS_"))}
            env.update({
                "MLFLOW_S3_ENDPOINT_URL": cls.endpoint,
                "AWS_ACCESS_KEY_ID": info["ACCESS_KEY"],
                "AWS_SECRET_ACCESS_KEY": info["SECRET_KEY"],
                "AWS_DEFAULT_REGION": "us-east-1",
                "MLFLOW_S3_EXPECTED_BUCKET_OWNER": OWNER,
            })
            cls.ferry_log = open(os.path.join(cls.tmp, "ferry.log"), "wb")
            cls.ferry = subprocess.Popen(
                [ferry_bin, "server", "--host", "127.0.0.1", "--port", str(port),
                 "--artifacts-destination", f"s3://{cls.bucket}/artifacts",
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
        if cls.minio_pid:
            subprocess.run([str(S3SH), "stop", cls.minio_pid], check=False)
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
                url = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
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

    def open_uploads(self):
        return self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    # --- tests ------------------------------------------------------------

    def test_multipart_upload_round_trip(self):
        local = self.make_file("model.bin", 2 * CHUNK + 12345)
        create = self.log_artifact_multipart(local, "0/run1/artifacts/weights")
        self.assertTrue(create["upload_id"])
        for c in create["credentials"]:
            self.assertEqual(c.get("headers"), {"x-amz-expected-bucket-owner": OWNER},
                             "each credential carries the header its URL is signed with")
        want = pathlib.Path(local).read_bytes()
        obj = self.s3.get_object(Bucket=self.bucket, Key="artifacts/0/run1/artifacts/weights/model.bin")
        self.assertEqual(obj["Body"].read(), want)
        self.assertTrue(obj["ETag"].strip('"').endswith("-3"), obj["ETag"])
        r = requests.get(f"{self.base}/api/2.0/mlflow-artifacts/artifacts/0/run1/artifacts/weights/model.bin", timeout=60)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.content, want)
        self.assertEqual(self.open_uploads(), [])

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
        self.assertEqual(self.open_uploads(), [])
        with self.assertRaises(self.s3.exceptions.ClientError):
            self.s3.head_object(Bucket=self.bucket, Key="artifacts/0/run2/artifacts/aborted.bin")

    def test_failed_part_aborts_and_leaves_nothing(self):
        local = self.make_file("broken.bin", 2 * CHUNK)
        with self.assertRaisesRegex(RuntimeError, "Failed to upload at least one part"):
            self.log_artifact_multipart(local, "0/run3/artifacts", tamper_part=1)
        self.assertEqual(self.open_uploads(), [])
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="artifacts/0/run3/")
        self.assertEqual(listed.get("KeyCount", 0), 0)

    def test_part_needs_the_credential_headers(self):
        resp = self.mpu("create", "0/run4/artifacts", {"path": "x.bin", "num_parts": 1})
        self.assertEqual(resp.status_code, 200, resp.text)
        create = resp.json()
        try:
            r = requests.put(create["credentials"][0]["url"], data=b"x", timeout=60)  # headers left out
            # MinIO answers 400 AccessDenied ("headers ... not signed"); AWS 403.
            self.assertIn(r.status_code, (400, 403), r.text)
            self.assertIn("AccessDenied", r.text)
        finally:
            self.mpu("abort", "0/run4/artifacts", {"path": "x.bin", "upload_id": create["upload_id"]})


if __name__ == "__main__":
    unittest.main()
