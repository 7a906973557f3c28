"""An S3 server for the S3 contender: moto on a free loopback port, a fresh bucket per run."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class S3Server:
    env: dict[str, str]

    def new_bucket(self) -> str:
        import minio

        client = minio.Minio(
            self.env["AWS_ENDPOINT_URL"].removeprefix("http://"),
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
            secure=False,
            region=self.env["AWS_REGION"],
        )
        bucket = f"ttg-bench-{uuid.uuid4().hex[:10]}"
        client.make_bucket(bucket)
        return bucket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """`python -m moto.server` on 127.0.0.1, stopped on exit."""
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
        yield S3Server(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": "us-east-1",
            }
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
