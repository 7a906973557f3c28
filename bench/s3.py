"""An S3-compatible server on loopback: moto on a free 127.0.0.1 port, stopped on exit.

The benchmarks' S3 contender and the tests' S3 fixtures both use this one launcher.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]  # the AWS_* settings a client needs
    process: subprocess.Popen[bytes]  # for tests that freeze the server (SIGSTOP)

    def new_bucket(self) -> str:
        import minio

        client = minio.Minio(
            self.endpoint.removeprefix("http://"),
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
            secure=False,
            region=self.env["AWS_REGION"],
        )
        bucket = f"ttg-{uuid.uuid4().hex[:10]}"
        client.make_bucket(bucket)
        return bucket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """`python -m moto.server` on 127.0.0.1, inheriting this environment; stopped on exit."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto S3 server did not start on 127.0.0.1") from None
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
        yield S3Server(endpoint, env, process)
    finally:
        process.send_signal(signal.SIGCONT)  # in case it was left frozen
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
