"""The exit codes of the pod entry points, `python -m steps.compute` and `python -m steps.reduce`.

A retry must know a bug from a hiccup. An error in the user's function is deterministic: the
same rows give the same error on every attempt, so retrying it only delays the failure. A
store outage, a killed pod or an unexpected crash may well pass. So the steps tell them apart
by exit code, and the compute template's `retryStrategy.expression` (workflows/build.py)
retries every failure except the deterministic ones (`DETERMINISTIC`); a spec that sets
`retry_user_errors = true` retries `USER_CODE` too, for a function that calls a flaky service.

| code | name         | meaning                                                          | compute retried |
|------|--------------|------------------------------------------------------------------|-----------------|
| 0    | `OK`         | done (a shard already complete counts)                           | --              |
| 1    | `FAILED`     | anything else: an unexpected exception (Python's own exit code   | yes             |
|      |              | for an uncaught one), or reduce refusing a shard                 |                 |
| 2    | `BAD_INPUT`  | the arguments or the spec are invalid (argparse's usage errors   | no              |
|      |              | exit 2 too), or the run id already holds another spec's run      |                 |
| 3    | `USER_CODE`  | the user's function failed: it could not be imported, raised, or | only with       |
|      |              | returned the wrong length, type or columns (or NaN in the        | `retry_user_`   |
|      |              | objective)                                                       | `errors = true` |
| 4    | `STORE`      | the store failed: unreachable, refused an operation, out of      | yes             |
|      |              | space, or still failing after the S3 client's own retries        |                 |
| 128+n| --           | killed by signal n, e.g. 137 (SIGKILL: OOM-killed, evicted); the | yes             |
|      |              | local executor shows -n as a signal and counts it as Argo does   |                 |

An attempt Argo records with no exit code at all (a pod deleted or lost, an init or wait
container that failed: status `Error`, `lastRetry.exitCode` "-1") is retried too.
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
