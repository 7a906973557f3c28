"""`run`'s manifest without importing Hera: the text `render` prints, kept by what decides it.

Importing Hera (and the pydantic models under it) costs ~0.5 s, a third of a default local
run, and only rendering needs it. The rendered text is a pure function of the spec (all of
it: resources and placement too), the build options, the kind, and the code that renders:
TTG's own modules, Hera, pydantic and Python. A digest of all of those names a cache entry,
so a changed spec, option, TTG file or library version renders afresh; what `run` executes
is byte for byte what `render` prints for the same inputs (tests/test_render_cache.py).

The run id is the Workflow's name, new for every run, and a run's store is often a new
folder, so entries are rendered under placeholders and the run's values are put in their
one place each (when YAML writes them plain; otherwise that value is part of the key). An entry records the digest of its
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
import re
import tempfile
from importlib import metadata
from pathlib import Path

from steps.spec import Spec
from workflows.options import BuildOptions

__all__ = [
    "MAX_ENTRIES",
    "PLACEHOLDER_RUN_ID",
    "PLACEHOLDER_STORES",
    "cache_dir",
    "cached_render",
    "render_key",
]

CACHE_VERSION = 1
MAX_ENTRIES = 64
PLACEHOLDER_RUN_ID = "ttg-render-cache-run-id"
PLACEHOLDER_STORES = {"folder": "/ttg-render-cache/store", "s3": "s3://ttg-render-cache/store"}
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


def _slots(options: BuildOptions) -> dict[str, str]:
    """The options that change with every run, as placeholder -> value: the run id (the
    Workflow's name) always, the store when YAML writes it plain (a scratch folder per run)."""
    assert options.run_id is not None
    slots = {PLACEHOLDER_RUN_ID: options.run_id}
    if _plain(options.store):
        scheme = "s3" if options.store.startswith("s3://") else "folder"
        slots[PLACEHOLDER_STORES[scheme]] = options.store
    return slots


def _placeholders(options: BuildOptions) -> BuildOptions:
    stand_ins = {v: k for k, v in _slots(options).items()}
    return dataclasses.replace(
        options,
        run_id=stand_ins.get(options.run_id or "", options.run_id),
        store=stand_ins.get(options.store, options.store),
    )


def render_key(spec: Spec, options: BuildOptions) -> str:
    """What decides the text of a Workflow rendered for `run`, as one digest."""
    inputs = {
        "cache": CACHE_VERSION,
        "spec": spec.document(),
        "options": dataclasses.asdict(_placeholders(options)),
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
    if options.run_id == options.store or not _plain(options.run_id):
        return _render(spec, options)  # one value for two slots, or one YAML quotes
    path = cache_dir() / f"{render_key(spec, options)}.yaml"
    text = _read(path)
    if text is None:
        text = _render(spec, _placeholders(options))
        _write(path, text)
    for placeholder, value in _slots(options).items():
        # each is one plain scalar of its own, in one place; anything else renders afresh
        if text.count(placeholder) != 1 or text.count(f": {placeholder}\n") != 1:
            return _render(spec, options)
        text = text.replace(f": {placeholder}\n", f": {value}\n")
    if not _names_this_run(text, spec, options):  # a stale or edited entry: never run it
        _write(path, _render(spec, _placeholders(options)))
        return _render(spec, options)
    return text


def _names_this_run(text: str, spec: Spec, options: BuildOptions) -> bool:
    """The entry holds this spec, store and run id, as the pods will read them: what decides
    the rows, held to the request whatever the digest says (an entry is a file anyone with
    the cache folder's permissions could have edited)."""
    import yaml

    try:
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        parameters = {p["name"]: p["value"] for p in document["spec"]["arguments"]["parameters"]}
        name = document["metadata"]["name"]
    except (yaml.YAMLError, KeyError, TypeError):
        return False
    expected = {"spec": spec.to_json(), "store": options.store}
    return bool(name == options.run_id and parameters == expected)


def _render(spec: Spec, options: BuildOptions) -> str:
    from workflows.build import render

    return render(spec, options)


_PLAIN = re.compile(r"\A[A-Za-z0-9/][A-Za-z0-9._/:-]{0,511}\Z")


def _plain(value: str) -> bool:
    """Written by YAML as it is (no quotes, no folding), as the placeholders are: no space,
    no character YAML gives a meaning, and it reads back as the same string (not `123`,
    `true`, `null` or a date)."""
    import yaml

    if not _PLAIN.match(value) or ": " in value or value.endswith(":"):
        return False
    try:
        return bool(yaml.safe_load(value) == value)
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
