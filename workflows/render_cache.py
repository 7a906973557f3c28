"""`run`'s manifest without importing Hera: the text `render` prints, kept by what decides it.

Importing Hera (and the pydantic models under it) costs ~0.5 s, a third of a default local
run, and only rendering needs it. The rendered text is a pure function of the spec (all of
it: resources and placement too), the build options, the kind, and the code that renders:
TTG's own modules, Hera, pydantic and Python. A digest of all of those names a cache entry,
so a changed spec, option, TTG file or library version renders afresh; what `run` executes
is byte for byte what `render` prints for the same inputs (tests/test_render_cache.py).

The run id is the Workflow's name, new for every run, so entries are rendered under a
placeholder name and the run's is put in its one place. An entry records the digest of its
text: a damaged one is rendered again, never executed. Entries live in
`$TTG_CACHE_DIR/renders` (default `~/.cache/ttg`), at most MAX_ENTRIES of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

from steps.spec import Spec
from workflows.options import BuildOptions

__all__ = ["MAX_ENTRIES", "PLACEHOLDER_RUN_ID", "cache_dir", "cached_render", "render_key"]

CACHE_VERSION = 1
MAX_ENTRIES = 64
PLACEHOLDER_RUN_ID = "ttg-render-cache-run-id"
_ROOT = Path(__file__).resolve().parent.parent
_SOURCES = ("steps", "workflows")  # every module that can shape a manifest, and more


def cache_dir() -> Path:
    if os.environ.get("TTG_CACHE_DIR"):
        return Path(os.environ["TTG_CACHE_DIR"]) / "renders"
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser())
    return home / "ttg" / "renders"


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("hera", "pydantic", "pydantic-core", "PyYAML"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "none"
    return found


def _code_digest() -> str:
    """Every TTG source file, by content: an edited checkout renders afresh."""
    digest = hashlib.sha256()
    for folder in _SOURCES:
        for path in sorted((_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def render_key(spec: Spec, options: BuildOptions) -> str:
    """What decides the text of a Workflow rendered for `run`, as one digest."""
    inputs = {
        "cache": CACHE_VERSION,
        "spec": spec.document(),
        "options": dataclasses.asdict(dataclasses.replace(options, run_id=PLACEHOLDER_RUN_ID)),
        "versions": _versions(),
        "code": _code_digest(),
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_render(spec: Spec, options: BuildOptions) -> str:
    """The Workflow `render` prints for `spec` and `options` (a fixed run id), from the
    cache when an intact entry holds it, else rendered with Hera and kept."""
    if options.run_id is None:
        raise ValueError("a cached render needs the run id it names the Workflow with")
    path = cache_dir() / f"{render_key(spec, options)}.yaml"
    text = _read(path)
    if text is None:
        from workflows.build import render

        text = render(spec, dataclasses.replace(options, run_id=PLACEHOLDER_RUN_ID))
        _write(path, text)
    name = f"  name: {PLACEHOLDER_RUN_ID}\n"
    if text.count(PLACEHOLDER_RUN_ID) != 1 or text.count(name) != 1 or not _plain(options.run_id):
        from workflows.build import render  # the placeholder is not only the name, or the
        # run id is one YAML would quote (`123`, `true`, `null`): rendered as it comes

        return render(spec, options)
    return text.replace(name, f"  name: {options.run_id}\n")


def _plain(run_id: str) -> bool:
    """Written unquoted by YAML, as the placeholder is: it reads back as the same string."""
    import yaml

    try:
        return bool(yaml.safe_load(run_id) == run_id)
    except yaml.YAMLError:
        return False


def _read(path: Path) -> str | None:
    """An entry's text if it is intact: its first line is the digest of the rest."""
    try:
        head, _, text = path.read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if head != f"# sha256 {hashlib.sha256(text.encode()).hexdigest()}":
        return None
    return text


def _write(path: Path, text: str) -> None:
    """Atomically, best effort: a cache that cannot be written only costs the next render."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry = f"# sha256 {hashlib.sha256(text.encode()).hexdigest()}\n{text}"
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".render-", suffix=".tmp")
        temp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(entry)
            temp.replace(path)
        except OSError:
            temp.unlink()
            raise
        _prune(path.parent)


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.yaml"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            stale.unlink()
