"""What every command of `sweep.py` shares: its argument parser, argument types, the
spec argument, and the error that is bad input found by the CLI itself."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from steps.spec import Spec, load_spec

__all__ = [
    "DEFAULT_LOCAL_STORE",
    "DEFAULT_SPEC",
    "CliParser",
    "UsageError",
    "called_as_ttg",
    "command_name",
    "load_spec_arg",
    "non_negative",
    "positive",
    "positive_seconds",
]

DEFAULT_SPEC = Path(__file__).resolve().parent / "sweeps" / "rosenbrock.toml"
DEFAULT_LOCAL_STORE = "runs"


class UsageError(Exception):
    """Bad input found by the CLI itself."""


class CliParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _integer_at_least(minimum: int, wanted: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`, refused as "expected `wanted`"."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got '{value}'") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {number}")
        return number

    return parse


non_negative = _integer_at_least(0, "an integer >= 0")
positive = _integer_at_least(1, "a positive integer")


def load_spec_arg(path: str | None, shards: int | None) -> Spec:
    spec = load_spec(path or DEFAULT_SPEC)
    return spec.with_fields(shards=shards) if shards is not None else spec


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{value}'") from None
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value}")
    return seconds


def called_as_ttg() -> bool:
    """The user ran the `ttg` console script, not `python workflows/sweep.py`."""
    return Path(sys.argv[0]).name == "ttg"


def command_name() -> str:
    """How the user called TTG, for usage lines: `ttg`, or the script."""
    return "ttg" if called_as_ttg() else "sweep.py"
