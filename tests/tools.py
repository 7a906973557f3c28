"""The tools the tests run that are not Python packages of the project: validators and servers.

They come from `.venv-tools/bin` (`make tools`: MinIO and Argo's linter built from their Go
modules, the Python validators) or PATH. On a user's machine a missing one skips its test
with a line saying what is missing; under CI (CI=true), where `.ci/run` builds and installs
them all, a missing one fails instead, so nothing skips there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS_BIN = ROOT / ".venv-tools" / "bin"
DEBIAN_TOOLS = {"shellcheck", "strace"}
GO_TOOLS = {"minio", "argo"}


def find_tool(name: str) -> str | None:
    local = TOOLS_BIN / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def tool(name: str) -> str:
    """The tool's path; skip (or, under CI, fail) when it is missing."""
    found = find_tool(name)
    if found:
        return found
    if name in DEBIAN_TOOLS:
        hint = f"install the Debian package {name}"
    elif name in GO_TOOLS:
        hint = "run `make tools`, which needs Go and the Go module proxy"
    else:
        hint = "run `make tools`"
    message = f"{name} not found in .venv-tools/bin or on PATH ({hint})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must have every tool: {message}")
    pytest.skip(message)
