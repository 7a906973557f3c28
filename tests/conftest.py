"""Shared fixtures: a real MinIO server on 127.0.0.1, spoken to over HTTP."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.s3 import S3Server, minio_server
from tests.tools import tool

__all__ = ["ROOT", "SWEEPS", "S3Server", "minio_server", "s3_server_or_skip"]

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "workflows" / "sweeps"


@pytest.fixture(scope="session", autouse=True)
def task_logs_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`run` keeps task logs (workflows/run_logs.py); the tests' runs keep theirs here, not
    in the home folder. A test that sets TTG_LOG_DIR itself wins."""
    os.environ["TTG_LOG_DIR"] = str(tmp_path_factory.mktemp("task-logs"))
    # and `run`'s cached renders (workflows/render_cache.py), kept out of the home folder too
    os.environ["TTG_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3 server for the whole session."""
    with s3_server_or_skip() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server's settings in this process's environment (and so in subprocesses)."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TTG_S3_BACKOFF", "0.05")
    return s3_server


def s3_server_or_skip() -> contextlib.AbstractContextManager[S3Server]:
    """A MinIO server; the test skips (under CI: fails) when `make tools` has not built one."""
    tool("minio")
    return minio_server()
