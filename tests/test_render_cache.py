"""`run`'s cached render (workflows/render_cache.py): always the text `render` prints for the
same spec and options, never Hera's import cost on a hit, never a damaged entry."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from steps.spec import load_spec
from tests.conftest import ROOT, SWEEPS
from workflows import render_cache
from workflows.build import render
from workflows.options import BuildOptions
from workflows.render_cache import cache_dir, cached_render, render_key

EXAMPLES = sorted(SWEEPS.glob("*.toml"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TTG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("store", ["runs", "s3://bucket/runs"])
def test_a_cached_render_is_what_render_prints_on_a_miss_and_on_a_hit(
    path: Path, store: str
) -> None:
    spec = load_spec(path)
    for run_id in ("first-abcde", "second-fghij"):
        options = BuildOptions(store=store, run_id=run_id)
        assert cached_render(spec, options) == render(spec, options)
    assert len(list(cache_dir().glob("*.yaml"))) == 1  # one entry served both run ids


@pytest.mark.parametrize(
    "store",
    [
        "/tmp/a b/runs",
        "/tmp/" + "x" * 90,
        "/tmp/é",
        "/tmp/a: b",
        "runs#1",
        "2026-12-01",
        "s3://b/x y",
    ],
)
def test_stores_yaml_would_quote_or_fold_are_rendered_as_render_writes_them(store: str) -> None:
    spec = load_spec(SWEEPS / "rosenbrock.toml")
    options = BuildOptions(store=store, run_id="r-1")
    assert cached_render(spec, options) == render(spec, options)
    assert cached_render(spec, options) == render(spec, options)  # and on a hit


def test_a_new_scratch_store_per_run_still_hits_the_cache(tmp_path: Path) -> None:
    spec = load_spec(SWEEPS / "rosenbrock.toml")
    for n in range(3):
        options = BuildOptions(store=str(tmp_path / f"scratch-{n}" / "store"), run_id=f"r-{n}")
        assert cached_render(spec, options) == render(spec, options)
    s3 = BuildOptions(store="s3://bucket/runs", run_id="r-9")
    assert cached_render(spec, s3) == render(spec, s3)
    assert len(list(cache_dir().glob("*.yaml"))) == 2  # one for folders, one for S3


@pytest.mark.parametrize("run_id", ["123", "true", "null", "1e3", "on", "no"])
def test_run_ids_yaml_would_quote_are_rendered_as_render_quotes_them(run_id: str) -> None:
    spec = load_spec(SWEEPS / "rosenbrock.toml")
    options = BuildOptions(store="runs", run_id=run_id)
    cached_render(spec, BuildOptions(store="runs", run_id="warm-up"))
    assert cached_render(spec, options) == render(spec, options)


def test_a_damaged_entry_is_rendered_again_never_executed() -> None:
    spec = load_spec(SWEEPS / "rosenbrock.toml")
    options = BuildOptions(store="runs", run_id="r-1")
    cached_render(spec, options)
    (entry,) = cache_dir().glob("*.yaml")
    entry.write_text(entry.read_text().replace("steps.compute", "steps.reduce", 1))
    assert cached_render(spec, options) == render(spec, options)
    assert "steps.compute" in entry.read_text()  # written again, whole


def test_whatever_shapes_the_text_is_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(SWEEPS / "rosenbrock.toml")
    options = BuildOptions(store="runs", run_id="r-1")
    key = render_key(spec, options)
    assert render_key(spec, BuildOptions(store="runs", run_id="r-2")) == key
    assert render_key(spec, BuildOptions(store="other", run_id="r-1")) == key  # a slot too
    assert render_key(spec, BuildOptions(store="s3://b/runs", run_id="r-1")) != key
    assert render_key(spec, BuildOptions(store="a b", run_id="r-1")) != key
    assert render_key(spec, BuildOptions(store="runs", run_id="r-1", image="mine:1")) != key
    assert render_key(spec.with_fields(resources={"cpu_limit": "2"}), options) != key
    assert render_key(spec.with_fields(shards=3), options) != key
    copy = tmp_path / "tree"
    for folder in ("steps", "workflows"):
        shutil.copytree(ROOT / folder, copy / folder)
    monkeypatch.setattr(render_cache, "_ROOT", copy)
    assert render_key(spec, options) == key
    build = copy / "workflows/build.py"
    build.write_text(build.read_text() + "\n# an edit\n")
    assert render_key(spec, options) != key


def test_the_cache_keeps_at_most_its_bound_of_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_cache, "MAX_ENTRIES", 3)
    spec = load_spec(SWEEPS / "placeholder.toml")
    for shards in range(1, 6):
        cached_render(spec.with_fields(shards=shards), BuildOptions(store="runs", run_id="r"))
    assert len(list(cache_dir().glob("*.yaml"))) == 3


def test_run_on_a_hit_never_imports_hera(tmp_path: Path, private_cache: Path) -> None:
    probe = (
        "import sys\n"
        "from workflows.sweep import main\n"
        f"code = main(['run', 'workflows/sweeps/placeholder.toml', '--store', {str(tmp_path / 'runs')!r}])\n"
        "print('hera' in sys.modules, code)\n"
    )
    env = {
        "TTG_CACHE_DIR": str(private_cache),
        "TTG_LOG_DIR": str(tmp_path / "logs"),
        "PATH": "/usr/bin:/bin",
    }
    seen = [
        subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout.splitlines()[-1]
        for _ in range(2)
    ]
    assert seen == ["True 0", "False 0"]


def test_an_entry_edited_with_its_digest_redone_is_still_never_executed() -> None:
    """The digest line catches damage, not an edit that recomputes it: the entry must also
    name this spec, store and run id, or it is rendered again."""
    import hashlib

    spec = load_spec(SWEEPS / "rosenbrock.toml")
    options = BuildOptions(store="runs", run_id="r-1")
    cached_render(spec, options)
    (entry,) = cache_dir().glob("*.yaml")
    body = entry.read_text().partition("\n")[2].replace("3163]", "3164]")
    assert "3164]" in body
    entry.write_text(f"# sha256 {hashlib.sha256(body.encode()).hexdigest()}\n{body}")
    assert cached_render(spec, options) == render(spec, options)
    assert "3164]" not in entry.read_text()  # rewritten from a fresh render
