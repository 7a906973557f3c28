"""A real MinIO server on loopback: a free 127.0.0.1 port, a temporary data folder,
generated root credentials, stopped by pid on exit.

The benchmarks' S3 contender and the tests' S3 fixtures both use this one launcher. The
binary is built from MinIO's Go module by `make tools` (.venv-tools/bin/minio); MinIO
publishes its server as source only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import minio

ROOT = Path(__file__).resolve().parents[1]
MINIO = ROOT / ".venv-tools" / "bin" / "minio"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]  # the AWS_* settings a client needs
    process: subprocess.Popen[bytes]  # for tests that freeze the server (SIGSTOP)

    def client(self) -> minio.Minio:
        import minio

        return minio.Minio(
            self.endpoint.removeprefix("http://"),
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
            secure=False,
            region=self.env["AWS_REGION"],
        )

    def new_bucket(self) -> str:
        bucket = f"ttg-{uuid.uuid4().hex[:10]}"
        self.client().make_bucket(bucket)
        return bucket

    def traffic(self) -> tuple[int, int]:
        """Bytes of S3 requests the server has received and of the answers it has sent, by
        its own count (metrics v3: updated at once; server-side copies are in neither)."""
        url = f"{self.endpoint}/minio/metrics/v3/api/requests"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        counts = {"received": 0.0, "sent": 0.0}
        for line in text.splitlines():
            for way in counts:
                if (
                    line.startswith(f"minio_api_requests_traffic_{way}_bytes{{")
                    and 'type="s3"' in line
                ):
                    counts[way] += float(line.rsplit(" ", 1)[1])
        return int(counts["received"]), int(counts["sent"])

    def object_size(self, bucket: str, name: str) -> int:
        return int(self.client().stat_object(bucket, name).size or 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MinioMissingError(RuntimeError):
    """No MinIO binary: `make tools` builds it (it needs Go and the Go module proxy)."""


def minio_binary() -> str:
    found = str(MINIO) if MINIO.exists() else shutil.which("minio")
    if found is None:
        raise MinioMissingError(
            f"minio not found in {MINIO.parent} or on PATH (run `make tools`, which needs Go)"
        )
    return found


@contextlib.contextmanager
def minio_server() -> Iterator[S3Server]:
    """`minio server` on 127.0.0.1 with its own data folder and root credentials; nothing
    listens beyond loopback, the web console is off, nothing phones home."""
    port, console = _free_port(), _free_port()
    data = Path(tempfile.mkdtemp(prefix="ttg-minio-"))
    user, password = f"ttg{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "MINIO_ROOT_USER": user,
        "MINIO_ROOT_PASSWORD": password,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CALLHOME_ENABLE": "off",
        "MINIO_PROMETHEUS_AUTH_TYPE": "public",  # its traffic counters, on loopback only
    }
    command = [
        minio_binary(), "server", str(data), "--quiet",
        "--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{console}",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_live(endpoint, process)
        yield S3Server(
            endpoint,
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": user,
                "AWS_SECRET_ACCESS_KEY": password,
                "AWS_REGION": "us-east-1",
            },
            process,
        )
    finally:
        process.send_signal(signal.SIGCONT)  # in case it was left frozen
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data, ignore_errors=True)


def _wait_until_live(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/minio/health/live", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"MinIO did not start on {endpoint}")
        time.sleep(0.1)
