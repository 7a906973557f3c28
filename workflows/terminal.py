"""The consoles TTG prints through: plain text unless the code styles it explicitly.

rich reads `[...]` in a string as markup and silently drops what it takes for a tag, so a
message that quotes a spec (`[objective]`), a value or an error would lose text. TTG's
consoles therefore parse no markup and highlight nothing, in messages and in table cells
alike; what is styled says so with `rich.text.Text` (e.g. `Text.assemble(("done", "green"))`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

__all__ = ["make_console"]


def make_console(stderr: bool = False, **options: Any) -> Console:
    return Console(stderr=stderr, markup=False, highlight=False, **options)
