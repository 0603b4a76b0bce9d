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

import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest
import uuid

import boto3
import botocore.config
import requests

from mpu_client import REPO, MultipartClient, backend_binary, ferry_bin, skip_or_fail, start_ferry, stop_ferry

S3SH = REPO / "test" / "backends" / "s3.sh"
CHUNK = 5 * 1024 * 1024  # the smallest part S3 accepts; the client default is 10 MiB
OWNER = "123456789012"


class FerryOnMinIO(MultipartClient, unittest.TestCase):
    CHUNK = CHUNK

    @staticmethod
    def tamper(url):
        return url.replace("X-Amz-Signature=", "X-Amz-Signature=0")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-s3-py-")
        cls.minio_pid = None
        cls.ferry = None
        if backend_binary(S3SH, "minio") is None:
            skip_or_fail("minio not installed; run test/backends/s3.sh install")
        ferry_bin()  # fails before the backend starts when FERRY_BIN is unset
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

            env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FERRY_", "AWS_"))}
            env.update({
                "MLFLOW_S3_ENDPOINT_URL": cls.endpoint,
                "AWS_ACCESS_KEY_ID": info["ACCESS_KEY"],
                "AWS_SECRET_ACCESS_KEY": info["SECRET_KEY"],
                "AWS_DEFAULT_REGION": "us-east-1",
                "MLFLOW_S3_EXPECTED_BUCKET_OWNER": OWNER,
            })
            start_ferry(cls, f"s3://{cls.bucket}/artifacts", env)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_ferry(cls)
        if cls.minio_pid:
            subprocess.run([str(S3SH), "stop", cls.minio_pid], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

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
