"""A ferry server per test class, for the Python client tests.

FerryServerCase starts `$FERRY_BIN server` on a free 127.0.0.1 port with its
own temporary working directory and artifacts destination (``cls.dest``),
waits for /health, gives the class a ``requests`` session (``cls.session``)
and the base URL (``cls.server``), and stops the server with SIGTERM after the
class, failing if it does not exit cleanly. A missing or broken FERRY_BIN
fails every test with a message that says what to do.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FerryServerCase(unittest.TestCase):
    proc = None
    setup_error = None

    @classmethod
    def server_args(cls, tmp):
        """Extra `ferry server` arguments; tmp is the class's temp dir."""
        return []

    @classmethod
    def server_env(cls, tmp):
        """Extra environment variables for the server (set after the filter)."""
        return {}

    @classmethod
    def setUpClass(cls):
        binary = os.environ.get("FERRY_BIN", "")
        if not binary:
            cls.setup_error = (
                "FERRY_BIN is not set: build the binary (go build -o /tmp/ferry .) and "
                "export FERRY_BIN=/tmp/ferry, or run test/run.sh, which does both"
            )
            return
        if not os.access(binary, os.X_OK):
            cls.setup_error = f"FERRY_BIN={binary} is not an executable file"
            return
        cls.tmp = tempfile.mkdtemp(prefix="ferry-py-")
        cls.dest = os.path.join(cls.tmp, "artifacts")
        work = os.path.join(cls.tmp, "work")
        os.makedirs(work)
        cls.port = free_port()
        # The server must not pick up the caller's MLflow or Ferry settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "_MLFLOW_", "FERRY_"))}
        env.update(cls.server_env(cls.tmp))
        cls.log = open(os.path.join(cls.tmp, "ferry.log"), "wb")
        cls.proc = subprocess.Popen(
            [binary, "server", "--host", "127.0.0.1", "--port", str(cls.port),
             "--artifacts-destination", cls.dest] + cls.server_args(cls.tmp),
            cwd=work, env=env, stdout=cls.log, stderr=subprocess.STDOUT,
        )
        cls.server = f"http://127.0.0.1:{cls.port}"
        cls.session = requests.Session()
        cls.session.trust_env = False  # no proxies from the environment
        deadline = time.monotonic() + 30
        while True:
            if cls.proc.poll() is not None:
                cls.setup_error = f"ferry exited with {cls.proc.returncode}: {cls.logs()}"
                return
            try:
                if cls.session.get(cls.server + "/health", timeout=2).text == "OK":
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                cls.setup_error = f"ferry did not answer /health within 30 s: {cls.logs()}"
                return
            time.sleep(0.05)

    @classmethod
    def logs(cls):
        try:
            with open(os.path.join(cls.tmp, "ferry.log"), "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    @classmethod
    def tearDownClass(cls):
        if cls.proc is None:
            return
        cls.session.close()
        if cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                cls.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
                raise AssertionError("ferry did not exit within 30 s of SIGTERM")
        cls.log.close()
        code = cls.proc.returncode
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"ferry exited with {code} after SIGTERM")

    def setUp(self):
        if self.setup_error:
            self.fail(self.setup_error)
