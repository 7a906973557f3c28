"""The subset of expr (https://expr-lang.org) the local executor evaluates for a
``retryStrategy.expression``: a recursive-descent parser that type-checks as it goes and
returns an evaluator, so an accepted expression never fails to evaluate. Which forms are
accepted, and why the rest is refused, is workflows/retries.py's docstring.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = [
    "MAX_EXPRESSION_CHARS",
    "MAX_NESTING",
    "SUPPORTED_FORMS",
    "VARIABLES",
    "Evaluate",
    "ExpressionError",
    "ExpressionParser",
    "shown",
]

MAX_EXPRESSION_CHARS = 4096  # an expression is a line or two; bounded as the rest of a manifest
MAX_NESTING = 32  # parentheses, lists and `!` inside one another

VARIABLES = {"lastRetry.exitCode": "text", "lastRetry.status": "text"}
SUPPORTED_FORMS = (
    "lastRetry.exitCode, lastRetry.status, asInt(...), literals, ==, !=, <, <=, >, >=, "
    "in, not in, !, &&, ||, ( )"
)

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,18}")  # what Go's strconv.Atoi takes, int64-sized
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<text>"[^"\\\n]*"|'[^'\\\n]*')
    | (?P<int>[0-9]+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>\|\||&&|==|!=|<=|>=|[-<>!()\[\],])
    )""",
    re.VERBOSE,
)
_END = re.compile(r"\s*\Z")
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


class ExpressionError(ValueError):
    """An expression outside the subset, or one that can only be a mistake; one line."""


Evaluate = Callable[[dict[str, str]], Any]


def shown(value: str) -> str:
    return _SHORT.repr(value)


class ExpressionParser:
    """Recursive descent over expr's precedence levels; each rule returns (type, evaluator)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokens(text)
        self.at = 0
        self.depth = 0

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while not _END.match(text, position):
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                rest = text[position:].lstrip()
                raise ExpressionError(
                    f"{shown(rest[:20])} is not supported by the local executor "
                    f"(it evaluates {SUPPORTED_FORMS})"
                )
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        return tokens

    def parse(self) -> tuple[str, Evaluate]:
        if not self.tokens:
            raise ExpressionError("is empty")
        result = self._or()
        if self.at < len(self.tokens):
            self._unexpected()
        return result

    # -- tokens ------------------------------------------------------------------------------

    def _peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _accept(self, value: str) -> bool:
        token = self._peek()
        if token is not None and token[0] in ("op", "name") and token[1] == value:
            self.at += 1
            return True
        return False

    def _expect(self, value: str) -> None:
        if not self._accept(value):
            self._unexpected(f"expected {value!r}")

    def _unexpected(self, hint: str = "") -> NoReturn:
        token = self._peek()
        what = "the end" if token is None else shown(token[1])
        raise ExpressionError(
            f"{shown(self.text)}: unexpected {what}{f' ({hint})' if hint else ''}"
        )

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"nested more than {MAX_NESTING} levels")

    # -- rules, loosest first ----------------------------------------------------------------

    def _or(self) -> tuple[str, Evaluate]:
        terms = [self._and()]
        while self._accept("||"):
            terms.append(self._and())
        if len(terms) == 1:
            return terms[0]
        operands = self._booleans(terms, "||")  # flat: a long chain nests no calls
        return "bool", lambda env: any(operand(env) for operand in operands)

    def _and(self) -> tuple[str, Evaluate]:
        terms = [self._comparison()]
        while self._accept("&&"):
            terms.append(self._comparison())
        if len(terms) == 1:
            return terms[0]
        operands = self._booleans(terms, "&&")
        return "bool", lambda env: all(operand(env) for operand in operands)

    @staticmethod
    def _booleans(terms: list[tuple[str, Evaluate]], operator: str) -> tuple[Evaluate, ...]:
        if any(kind != "bool" for kind, _ in terms):
            raise ExpressionError(f"{operator} needs true or false on both sides")
        return tuple(evaluate for _, evaluate in terms)

    def _comparison(self) -> tuple[str, Evaluate]:
        left_kind, left = self._unary()
        operator = self._comparison_operator()
        if operator is None:
            return left_kind, left
        right_kind, right = self._unary()
        result = _compare(operator, left_kind, left, right_kind, right)
        if self._comparison_operator(peek=True) is not None:
            raise ExpressionError(f"{shown(self.text)}: put a chain of comparisons in ( )")
        return "bool", result

    def _comparison_operator(self, peek: bool = False) -> str | None:
        token, after = self._peek(), self._peek(1)
        if token is None:
            return None
        if token == ("name", "not") and after == ("name", "in"):
            operator, width = "not in", 2
        elif token[1] in ("==", "!=", "<", "<=", ">", ">=") and token[0] == "op":
            operator, width = token[1], 1
        elif token == ("name", "in"):
            operator, width = "in", 1
        else:
            return None
        if not peek:
            self.at += width
        return operator

    def _unary(self) -> tuple[str, Evaluate]:
        if self._accept("!"):
            self._deeper()
            kind, operand = self._unary()
            self.depth -= 1
            if kind != "bool":
                raise ExpressionError(
                    f"{shown(self.text)}: ! applies to {kind} here (it binds tighter than "
                    "comparisons: write !(a in b), or a not in b)"
                )
            return "bool", lambda env: not operand(env)
        return self._primary()

    def _primary(self) -> tuple[str, Evaluate]:
        token = self._peek()
        if token is None:
            self._unexpected()
        kind, value = token
        if kind in ("text", "int") or (kind, value) in (
            ("op", "-"),
            ("name", "true"),
            ("name", "false"),
        ):
            literal_kind, literal = self._literal()
            return literal_kind, lambda env: literal
        if kind == "op" and value == "(":
            self.at += 1
            self._deeper()
            result = self._or()
            self._expect(")")
            self.depth -= 1
            return result
        if kind == "op" and value == "[":
            return self._list()
        if kind == "name" and value == "asInt":
            return self._as_int()
        if kind == "name" and value in VARIABLES:
            self.at += 1
            return VARIABLES[value], lambda env: env[value]
        if kind == "name":
            raise ExpressionError(
                f"{shown(value)} is not supported by the local executor (it evaluates "
                f"{SUPPORTED_FORMS})"
            )
        self._unexpected()

    def _literal(self) -> tuple[str, Any]:
        """Text, true, false, or an integer with an optional minus."""
        kind, value = self._peek() or ("", "")
        self.at += 1
        if kind == "text":
            return "text", value[1:-1]
        if kind == "name":
            return "bool", value == "true"
        sign = 1
        if value == "-":
            token = self._peek()
            if token is None or token[0] != "int":
                self._unexpected("- only before an integer")
            self.at += 1
            sign, value = -1, token[1]
        if len(value) > 18:
            raise ExpressionError(f"{shown(value)}: too large an integer")
        return "int", sign * int(value)

    def _list(self) -> tuple[str, Evaluate]:
        self._expect("[")
        self._deeper()
        items: list[Any] = []
        kinds: set[str] = set()
        while not self._accept("]"):
            if items:
                self._expect(",")
            if self._accept("]"):  # expr allows a trailing comma
                break
            token = self._peek()
            if token is None or not (token[0] in ("text", "int") or token in (("op", "-"),)):
                self._unexpected("a list holds text or integer literals")
            kind, value = self._literal()
            kinds.add(kind)
            items.append(value)
        self.depth -= 1
        if len(kinds) > 1:
            raise ExpressionError(f"{shown(self.text)}: a list mixes text and integers")
        frozen = tuple(items)
        return f"list of {kinds.pop() if kinds else 'anything'}", lambda env: frozen

    def _as_int(self) -> tuple[str, Evaluate]:
        self.at += 1
        self._expect("(")
        self._deeper()
        start = self.at
        kind, operand = self._or()
        self._expect(")")
        self.depth -= 1
        if kind == "int":
            return "int", operand
        if kind != "text":
            raise ExpressionError(f"asInt of {kind}: it takes text or an integer")
        argument = self.tokens[start : self.at - 1]
        if argument == [("name", "lastRetry.status")]:
            raise ExpressionError("asInt(lastRetry.status): a status is never a number")
        literal = argument[0][1] if len(argument) == 1 and argument[0][0] == "text" else None
        if literal is not None and not _INTEGER_TEXT.fullmatch(literal[1:-1]):
            raise ExpressionError(f"asInt({literal}): not an integer")
        return "int", lambda env: _as_int(operand(env))


def _as_int(value: str) -> int:
    if not _INTEGER_TEXT.fullmatch(value):  # the exit code is always an integer's text
        raise ExpressionError(f"asInt({value!r}): not an integer")
    return int(value)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(
    operator: str, left_kind: str, left: Evaluate, right_kind: str, right: Evaluate
) -> Evaluate:
    if operator in ("in", "not in"):
        if not right_kind.startswith("list of "):
            raise ExpressionError(f"{operator} needs a list on its right, got {right_kind}")
        element = right_kind.removeprefix("list of ")
        if element not in ("anything", left_kind):
            raise ExpressionError(
                f"{left_kind} {operator} a list of {element}: always "
                f"{'false' if operator == 'in' else 'true'} (lastRetry.exitCode is text: "
                'compare it with "3", or asInt(lastRetry.exitCode) with 3)'
            )
        if operator == "in":
            return lambda env: left(env) in right(env)
        return lambda env: left(env) not in right(env)
    if operator in ("==", "!="):
        if left_kind.startswith("list") or right_kind.startswith("list"):
            raise ExpressionError(f"{operator} between lists is not supported locally")
        if left_kind != right_kind:
            raise ExpressionError(
                f"{left_kind} {operator} {right_kind}: always "
                f"{'false' if operator == '==' else 'true'} (lastRetry.exitCode is text: "
                'compare it with "3", or asInt(lastRetry.exitCode) with 3)'
            )
        if operator == "==":
            return lambda env: left(env) == right(env)
        return lambda env: left(env) != right(env)
    if left_kind != "int" or right_kind != "int":
        raise ExpressionError(
            f"{operator} compares integers here, got {left_kind} and {right_kind}"
        )
    order = _ORDER[operator]
    return lambda env: order(left(env), right(env))
