"""What every baseline process shares: its arguments, and the one line it reports back."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from steps.spec import Spec, spec_from_json

RESULT_PREFIX = "BENCH "


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spec", type=Path, required=True, help="the spec as a JSON file")
    parser.add_argument("--out", type=Path, required=True, help="folder to write Parquet into")
    return parser


def load(args: argparse.Namespace) -> Spec:
    args.out.mkdir(parents=True, exist_ok=True)
    return spec_from_json(args.spec.read_text())


def report(detail: dict[str, Any]) -> None:
    """The process's own timings, as one line the driver picks out of its output."""
    print(RESULT_PREFIX + json.dumps(detail), flush=True)


def parse_report(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            detail: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return detail
    return {}
