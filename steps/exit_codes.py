"""The exit codes of the pod entry points, `python -m steps.compute` and `python -m steps.reduce`.

A retry must know a bug from a hiccup: an error in the user's function repeats on every
attempt, a store outage or a killed pod may pass. So the steps tell them apart by exit code,
and the compute template's `retryStrategy.expression` (workflows/build.py) retries every
failure except the deterministic ones (`DETERMINISTIC`). The table of codes, and what each
retries: README.md#the-command-line. Argo's retries:
https://argo-workflows.readthedocs.io/en/latest/retries/
"""

from __future__ import annotations

from typing import Final

__all__ = ["BAD_INPUT", "DETERMINISTIC", "FAILED", "OK", "STORE", "USER_CODE"]

OK: Final = 0
FAILED: Final = 1
BAD_INPUT: Final = 2
USER_CODE: Final = 3
STORE: Final = 4

# Failures that an identical attempt repeats: never retried (USER_CODE only if the spec opts in).
DETERMINISTIC: Final = (BAD_INPUT, USER_CODE)
