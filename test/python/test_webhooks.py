"""Webhooks end to end through the `ferry server` binary, sent the way
MLflow 3.11's client (RestStore / MlflowClient.create_webhook, ...) sends
them, with a real receiver on 127.0.0.1 that checks every delivery's
signature (HMAC-SHA256 over "<delivery id>.<timestamp>.<body>").

The server gets upstream's webhook variables: http allowed, private
addresses allowed (the receiver is local), no cache, a Fernet key. The
secret at rest is checked to be a Fernet token of that key (decrypted with
Python's cryptography when it is installed). Shutdown by SIGTERM must stay
clean with the delivery pool running (FerryServerCase checks the exit).
"""

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ferry_server import FerryServerCase

API = "/api/2.0/mlflow"
KEY = "pTFqrmYwQfkXbSwOI72BbrJXsZ0vsYr3L6OjSfwrbLU="
SECRET = "receiver-secret"


class Receiver(ThreadingHTTPServer):
    def __init__(self):
        self.deliveries = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def wait(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= n:
                    return list(self.deliveries)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.deliveries)} deliveries after {timeout} s, want {n}")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        delivery_id = self.headers["X-MLflow-Delivery-Id"]
        ts = self.headers["X-MLflow-Timestamp"]
        expected = "v1," + base64.b64encode(
            hmac.new(SECRET.encode(), f"{delivery_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        with self.server.lock:
            self.server.deliveries.append(
                {"body": json.loads(body), "signed": self.headers.get("X-MLflow-Signature") == expected}
            )
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class WebhooksTest(FerryServerCase):
    @classmethod
    def server_args(cls, tmp):
        cls.db = os.path.join(tmp, "mlflow.db")
        return ["--backend-store-uri", "sqlite:///" + cls.db]

    @classmethod
    def server_env(cls, tmp):
        return {
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": KEY,
            "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "3",
            "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "10",
            "MLFLOW_WEBHOOK_CACHE_TTL": "0",
        }

    @classmethod
    def setUpClass(cls):
        cls.receiver = Receiver()
        threading.Thread(target=cls.receiver.serve_forever, daemon=True).start()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.receiver.shutdown()
        cls.receiver.server_close()

    def call(self, method, endpoint, body=None, params=None, expect=200):
        r = self.session.request(method, self.server + API + endpoint, json=body, params=params, timeout=60)
        self.assertEqual(r.status_code, expect, r.text)
        return r.json()

    def test_webhook_lifecycle_and_deliveries(self):
        url = f"http://127.0.0.1:{self.receiver.server_address[1]}/hook"
        hook = self.call("POST", "/webhooks", {
            "name": "e2e", "url": url, "secret": SECRET, "description": "d",
            "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"},
                       {"entity": "MODEL_VERSION", "action": "CREATED"},
                       {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"},
                       {"entity": "MODEL_VERSION_TAG", "action": "SET"}],
        })["webhook"]
        self.assertEqual(hook["status"], "ACTIVE")
        self.assertNotIn("secret", hook)
        self.assertIsInstance(hook["creation_timestamp"], int)

        # The secret is stored as a Fernet token of the key, never in clear.
        with sqlite3.connect(self.db) as conn:
            (token,) = conn.execute("SELECT secret FROM webhooks WHERE webhook_id = ?", (hook["webhook_id"],)).fetchone()
        self.assertNotIn(SECRET, token)
        try:
            from cryptography.fernet import Fernet
        except ImportError:
            pass
        else:
            self.assertEqual(Fernet(KEY.encode()).decrypt(token.encode()).decode(), SECRET)

        listed = self.call("GET", "/webhooks", params={"max_results": 10})["webhooks"]
        self.assertEqual([w["webhook_id"] for w in listed], [hook["webhook_id"]])

        self.call("POST", "/registered-models/create", {"name": "wm", "description": "m", "tags": [{"key": "a", "value": "1"}]})
        self.call("POST", "/model-versions/create", {"name": "wm", "source": "s3://b/m", "run_id": "r1"})
        self.call("POST", "/registered-models/alias", {"name": "wm", "alias": "champion", "version": "1"})
        self.call("POST", "/model-versions/set-tag", {"name": "wm", "version": "1", "key": "k", "value": "v"})
        got = self.receiver.wait(4)
        self.assertTrue(all(d["signed"] for d in got), got)
        by_event = {(d["body"]["entity"], d["body"]["action"]): d["body"]["data"] for d in got}
        self.assertEqual(by_event[("registered_model", "created")], {"name": "wm", "tags": {"a": "1"}, "description": "m"})
        self.assertEqual(by_event[("model_version", "created")],
                         {"name": "wm", "version": "1", "source": "s3://b/m", "run_id": "r1", "tags": {}, "description": None})
        self.assertEqual(by_event[("model_version_alias", "created")], {"name": "wm", "alias": "champion", "version": "1"})
        self.assertEqual(by_event[("model_version_tag", "set")], {"name": "wm", "version": "1", "key": "k", "value": "v"})

        result = self.call("POST", f"/webhooks/{hook['webhook_id']}/test", {})["result"]
        self.assertEqual(result, {"success": True, "response_status": 200, "response_body": "ok"})
        self.assertTrue(self.receiver.wait(5)[4]["signed"])

        updated = self.call("PATCH", f"/webhooks/{hook['webhook_id']}", {"status": "DISABLED"})["webhook"]
        self.assertEqual(updated["status"], "DISABLED")
        self.call("POST", "/registered-models/create", {"name": "quiet"})
        self.call("DELETE", f"/webhooks/{hook['webhook_id']}")
        self.call("GET", f"/webhooks/{hook['webhook_id']}", expect=404)
        time.sleep(0.5)
        self.assertEqual(len(self.receiver.deliveries), 5, "a disabled webhook was delivered to")

    def test_scheme_outside_the_allow_list_refused(self):
        # https is not allowed on this server (http only), and the scheme
        # check comes first.
        err = self.call("POST", "/webhooks", {"name": "x", "url": "https://169.254.169.254/",
                                              "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]}, expect=400)
        self.assertEqual(err["error_code"], "INVALID_PARAMETER_VALUE")


if __name__ == "__main__":
    unittest.main()
