"""Shared fixtures: a real S3-compatible server (moto) on 127.0.0.1, spoken to over HTTP."""

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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "workflows" / "sweeps"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

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


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's S3 server as a subprocess on a free loopback port; stopped on exit."""
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
                    pytest.fail("moto S3 server did not start on 127.0.0.1")
                time.sleep(0.1)
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
        yield S3Server(env["AWS_ENDPOINT_URL"], env, process)
    finally:
        process.send_signal(signal.SIGCONT)  # in case a test left it frozen
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3 server for the whole session."""
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server's settings in this process's environment (and so in subprocesses)."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TTG_S3_BACKOFF", "0.05")
    return s3_server
