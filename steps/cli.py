"""What the pod entry points (`steps.compute`, `steps.reduce`) share: arguments and checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from steps import layout
from steps.spec import Spec, SpecError, spec_from_json
from steps.store import Store, open_store

__all__ = ["spec_and_store", "step_parser", "write_outputs"]


def step_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").splitlines()[0])
    parser.add_argument("--spec", required=True, help="the spec as JSON (canonical form)")
    parser.add_argument("--store", required=True, help="store URI: folder, file:// or s3://")
    parser.add_argument("--run-id", required=True, help="the Workflow's name")
    parser.add_argument("--outputs", type=Path, help="folder for Argo output parameter files")
    return parser


def write_outputs(directory: Path | None, values: dict[str, str]) -> None:
    """Small scalars for Argo output parameters; anything bigger belongs in the store."""
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / name).write_text(value)


def spec_and_store(args: argparse.Namespace) -> tuple[Spec, Store]:
    """Validate the common arguments; SpecError or StoreError means exit 2."""
    spec = spec_from_json(args.spec)
    if not layout.RUN_ID_RE.fullmatch(args.run_id):
        raise SpecError("--run-id", f"'{args.run_id}' is not a DNS-1123 label")
    return spec, open_store(args.store)
