"""Which failed attempts a ``retryStrategy`` retries: its policy AND its expression, as Argo's.

Argo decides after each failed attempt (operator.go, ``processNodeRetries``): the policy must
allow the attempt's status, a retry must be left, and ``expression`` must be true. The subset
of expr evaluated here, and what it refuses before any task starts: workflows/retry_expr.py
and docs/local-executor.md#retries-the-policy-and-the-expression.
Argo's definition: https://argo-workflows.readthedocs.io/en/latest/retries/
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.retry_expr import (
    MAX_EXPRESSION_CHARS,
    Evaluate,
    ExpressionError,
    ExpressionParser,
    shown,
)

__all__ = [
    "POLICY_RETRIES",
    "STATUSES",
    "Attempt",
    "ExpressionError",
    "RetryExpression",
    "parse_expression",
    "retry_refusal",
]

STATUSES = ("Failed", "Error")  # Argo's node phases of a failed attempt
POLICY_RETRIES = {
    "Always": frozenset(STATUSES),
    "OnFailure": frozenset({"Failed"}),
    "OnError": frozenset({"Error"}),
    "OnTransientError": frozenset(),  # transient Kubernetes API errors: none locally
}


@dataclass(frozen=True)
class Attempt:
    """A failed attempt as Argo's retry variables describe it."""

    status: str  # "Failed" or "Error": the attempt's node phase
    exit_code: str  # lastRetry.exitCode: the main container's exit code as text, "-1" if none

    def variables(self) -> dict[str, str]:
        return {"lastRetry.exitCode": self.exit_code, "lastRetry.status": self.status}


@dataclass(frozen=True)
class RetryExpression:
    """A parsed ``retryStrategy.expression``: `evaluate` an attempt to true or false."""

    text: str
    _evaluate: Evaluate

    def evaluate(self, attempt: Attempt) -> bool:
        return bool(self._evaluate(attempt.variables()))


def parse_expression(text: str) -> RetryExpression:
    """Parse and type-check `text`; ExpressionError (one line) if it is outside the subset."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    if "{{" in text:
        raise ExpressionError(
            "{{...}} substitutions in an expression are not supported by the local executor"
        )
    kind, evaluate = ExpressionParser(text).parse()
    if kind != "bool":
        raise ExpressionError(f"{shown(text)} is {kind}, not true or false")
    return RetryExpression(text, evaluate)


def retry_refusal(policy: str | None, expression: RetryExpression | None, attempt: Attempt) -> str:
    """Why the failed `attempt` is not retried ("" when it is, if a retry is left)."""
    actual = policy or ("Always" if expression is not None else "OnFailure")
    if attempt.status not in POLICY_RETRIES[actual]:
        return f"retryPolicy {actual} does not retry an attempt with status {attempt.status}"
    try:
        retried = expression is None or expression.evaluate(attempt)
    except ExpressionError as exc:  # not for an accepted expression; Argo fails the node too
        return f"retryStrategy.expression cannot be evaluated: {exc}"
    if not retried:
        return (
            f"retryStrategy.expression is false (lastRetry.exitCode {attempt.exit_code!r}, "
            f"lastRetry.status {attempt.status!r})"
        )
    return ""
