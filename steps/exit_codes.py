"""The exit codes of the pod entry points, `python -m steps.compute` and `python -m steps.reduce`,
and how every TTG process ends: `exit_now`.

A retry must know a bug from a hiccup: an error in the user's function repeats on every
attempt, a store outage or a killed pod may pass. So the steps tell them apart by exit code,
and the compute template's `retryStrategy.expression` (workflows/build.py) retries every
failure except the deterministic ones (`DETERMINISTIC`). The table of codes, and what each
retries: README.md#the-command-line. Argo's retries:
https://argo-workflows.readthedocs.io/en/latest/retries/
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Final, NoReturn

__all__ = ["BAD_INPUT", "DETERMINISTIC", "FAILED", "OK", "STORE", "USER_CODE", "exit_now"]

OK: Final = 0
FAILED: Final = 1
BAD_INPUT: Final = 2
USER_CODE: Final = 3
STORE: Final = 4

# Failures that an identical attempt repeats: never retried (USER_CODE only if the spec opts in).
DETERMINISTIC: Final = (BAD_INPUT, USER_CODE)


def exit_now(code: int) -> NoReturn:
    """End the process with `code` once its work is done and written, without finalizing the
    interpreter. pyarrow frees a buffer read through a Python file object on its own threads,
    which take the GIL to do it: one still doing so while the interpreter finalizes is killed
    mid-unwind, and the process aborts (SIGABRT, "terminate called without an active
    exception") after its work succeeded, about one exit in twenty measured on `verify`.
    Everything TTG writes is closed (and synced) before this; only the standard streams may
    hold text, so they are flushed, and output that cannot be written fails the exit as the
    interpreter's own would (a reader that went away, `ttg list | head`, does not)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass
        except ValueError:  # closed by the program itself: nothing of it is pending
            pass
        except OSError as exc:
            with contextlib.suppress(OSError, ValueError):
                os.write(2, f"error: cannot write the output: {exc.strerror or exc}\n".encode())
            code = code or FAILED
    os._exit(code)
