"""The CLI as users run it: `python workflows/sweep.py ...`, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import ROOT

SWEEP = ROOT / "workflows" / "sweep.py"


def sweep(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path = ROOT,
    timeout: float = 300,
    inherit: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`env` is added to this process's environment (or, with inherit=False, is all of it)."""
    base = dict(os.environ) if inherit else {}
    return subprocess.run(
        [sys.executable, str(SWEEP), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**base, **(env or {})},
        input=stdin,
    )
