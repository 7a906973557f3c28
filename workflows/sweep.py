"""`python workflows/sweep.py`: the TTG command line. Thin: parse, call, print.

Exit codes: 0 success, 1 a run failed, 2 bad input (one line on stderr, no traceback).

The commands live with their kin: workflows/cli_local.py (`run`, `exec`),
workflows/cli_cluster.py (`render`, `submit`, `schedule`, `status`),
workflows/cli_results.py (`results`, `verify`), workflows/cli_runs.py (`list`, `delete`,
`logs`) and workflows/cli_plan.py (`plan`). Each imports what only it needs in its handler, so that `render` and `run` start
without the Argo client or the plotting.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

# Run as a script, Python puts workflows/ itself first on sys.path, where its modules could
# shadow installed ones; the project root is what imports should resolve against.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)

from steps.exit_codes import exit_now  # noqa: E402
from steps.spec import SpecError  # noqa: E402
from steps.store import StoreError  # noqa: E402
from workflows import cli_cluster, cli_local, cli_plan, cli_results, cli_runs  # noqa: E402
from workflows.cli_args import CliParser, UsageError, command_name  # noqa: E402
from workflows.options import BuildError  # noqa: E402

__all__ = ["build_parser", "console_main", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog=command_name(), description="TTG: large parameter sweeps on Argo Workflows."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    cli_local.add_commands(sub)
    cli_cluster.add_commands(sub)
    cli_results.add_commands(sub)
    cli_runs.add_commands(sub)
    cli_plan.add_commands(sub)
    return parser


def bad_input() -> tuple[type[Exception], ...]:
    """The errors that are bad input. Called only once a command failed, so that its imports
    (the Argo client, the function contract, ...) cost nothing to the commands that succeed."""
    from steps.function import FunctionError
    from workflows.argo import ArgoError
    from workflows.manifest import ManifestError
    from workflows.results import ResultsError
    from workflows.runs import RunChoiceError

    return (
        SpecError,
        StoreError,
        FunctionError,
        ManifestError,
        RunChoiceError,
        UsageError,
        ArgoError,
        BuildError,
        ResultsError,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `function = "mymodel:f"` names a module of the folder the user runs in, as it does in
    # the pods (`python -m` puts their working folder on sys.path). Last, not first: a
    # user's `rich.py` or `yaml.py` must not take the place of what TTG itself imports.
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.append(here)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except bad_input() as exc:  # evaluated only when an exception reaches this clause
        print(f"error: {exc}", file=sys.stderr)
        return 2


def console_main() -> None:
    """The `ttg` command (pyproject.toml's console script), and `python workflows/sweep.py`."""
    try:
        code = main()
    except BrokenPipeError:  # `ttg list | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    exit_now(code)  # without the interpreter's teardown: steps/exit_codes.py says why


if __name__ == "__main__":
    console_main()
