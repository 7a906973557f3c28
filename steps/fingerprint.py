"""The code fingerprint: which code computed a shard.

TTG promises the same bytes whatever the sharding, but only for the same code: a run
resumed after the function changed would otherwise mix old rows and new. Each shard records
the fingerprint of the code that computed it, computed where it is computed (in the pod on a
cluster, so a moved image tag between two retries is caught too); resume recomputes shards
of other code, reduce refuses a mixture, `verify` refuses to compare against other code.

What it covers, and what not, is in docs/integrity.md ("Code identity"): in short, the
sources of the function's module and of its top-level package (or, for a package installed
from a distribution, that distribution's version), TTG's own source, the function's name,
numpy's, pyarrow's and Python's versions, and the spec's `code_version`. Not covered:
compiled extensions, files the function reads at run time, other packages it imports.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import platform
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from steps.spec import Spec

__all__ = [
    "MAX_PACKAGE_FILES",
    "CodeFingerprint",
    "FingerprintError",
    "code_fingerprint",
    "describe_difference",
    "mixture",
]

MAX_PACKAGE_FILES = 10_000  # hashing more sources than this is not a fingerprint but a scan
_TTG_PACKAGE = Path(__file__).resolve().parent  # steps/: what every TTG pod runs


class FingerprintError(Exception):
    """The function's code cannot be fingerprinted (one line)."""


@dataclass(frozen=True)
class CodeFingerprint:
    """`parts` says what went in (each a short text), `digest` is the sha256 over them."""

    parts: dict[str, str]

    @property
    def digest(self) -> str:
        text = json.dumps(self.parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(self.parts, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CodeFingerprint:
        """Read back `to_json` (untrusted: ValueError if it is not an object of strings)."""
        parts = json.loads(text)
        if not isinstance(parts, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parts.items()
        ):
            raise ValueError("the code fingerprint is not an object of strings")
        return cls(parts)


def code_fingerprint(spec: Spec) -> CodeFingerprint:
    """The fingerprint of the code `spec`'s function would run with here and now."""
    import numpy as np  # here: whoever only reads fingerprints (results, reduce) needs neither
    import pyarrow as pa

    module_name = spec.function.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a module may fail, or exit, at import
        raise FingerprintError(
            f"cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    parts = {
        "function": spec.function,
        "module": _file_digest(module),
        "package": _package(module),
        "ttg": _tree_digest(_TTG_PACKAGE),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "python": platform.python_version(),
    }
    if spec.code_version is not None:
        parts["code_version"] = spec.code_version
    return CodeFingerprint(parts)


def describe_difference(stored: CodeFingerprint, current: CodeFingerprint) -> str:
    """Which parts differ, as a short phrase ("module and ttg changed")."""
    names = sorted(set(stored.parts) | set(current.parts))
    changed = [n for n in names if stored.parts.get(n) != current.parts.get(n)]
    return f"{' and '.join(changed) or 'nothing'} changed"


def _file_digest(module: ModuleType) -> str:
    source = getattr(module, "__file__", None)
    if not source:
        return f"no source file ({module.__name__})"
    return "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()


def _package(module: ModuleType) -> str:
    """The top-level package the module belongs to: its distribution's version if it was
    installed from one, else the sha256 of its Python sources; '-' for a top-level module."""
    top = module.__name__.partition(".")[0]
    if top == module.__name__ and not hasattr(module, "__path__"):
        return "-"
    package = sys.modules.get(top)
    # One folder once: a namespace package's __path__ lists a folder as often as sys.path
    # reaches it (the working folder and $PYTHONPATH may both), which must not change it.
    folders = list(dict.fromkeys(Path(p).resolve() for p in getattr(package, "__path__", [])))
    if not folders:
        return f"no source folder ({top})"
    source = getattr(module, "__file__", None)
    installed = _installed_version(top, Path(source) if source else folders[0])
    if installed is not None and len(folders) == 1:
        return installed
    return _tree_digest(*folders)


def _installed_version(top: str, folder: Path) -> str | None:
    """`dist==version` when the function's module lives in site-packages (not an editable
    checkout). A namespace package spread over several folders is hashed instead: one of
    its portions being installed says nothing of the others."""
    roots = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    if not any(folder.resolve().is_relative_to(root) for root in roots):
        return None
    names = importlib.metadata.packages_distributions().get(top) or []
    if not names:
        return None
    return ",".join(f"{n}=={importlib.metadata.version(n)}" for n in sorted(set(names)))


def _tree_digest(*folders: Path) -> str:
    """sha256 over every `.py` file below `folders`: relative path and bytes, in order."""
    digest = hashlib.sha256()
    files = sorted(
        (path.relative_to(folder).as_posix(), path)
        for folder in folders
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    )
    if len(files) > MAX_PACKAGE_FILES:
        raise FingerprintError(
            f"{folders[0]} holds {len(files):,} Python files, more than the "
            f"{MAX_PACKAGE_FILES:,} a code fingerprint reads: put the function in a smaller package"
        )
    for name, path in files:
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def mixture(codes: list[tuple[int, CodeFingerprint | None]]) -> str | None:
    """Why shards `(index, code)` cannot make one result, if they were computed by different
    code (or some by code unknown): a result must come from one version of the function."""
    groups: dict[str | None, list[int]] = {}
    for index, code in codes:
        groups.setdefault(None if code is None else code.digest, []).append(index)
    if len(groups) <= 1:
        return None
    described = []
    for digest, indexes in sorted(groups.items(), key=lambda g: g[1][0]):
        who = f"shard {indexes[0]}" + (f" and {len(indexes) - 1} more" if len(indexes) > 1 else "")
        described.append(f"{who} by {'unrecorded code' if digest is None else digest[:12]}")
    by_index = dict(codes)
    known = [c for c in (by_index[g[0]] for g in groups.values()) if c is not None]
    why = f" ({describe_difference(known[0], known[1])})" if len(known) >= 2 else ""
    return (
        f"shards were computed by different code: {'; '.join(described)}{why}; "
        "`run --resume` recomputes those of other code than the current"
    )
