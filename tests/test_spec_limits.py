"""A spec is bounded before it is believed: the file's size, the document's expanded size and
depth, the canonical spec's size, and every user value a message echoes. Overrides of spec
fields go through the same validator as the spec file."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from steps.spec import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_SPEC_BYTES,
    MAX_SPEC_FILE_BYTES,
    Resources,
    SpecError,
    load_spec,
    parse_spec,
    spec_from_json,
)
from tests.cli import sweep

HEAD = "name: demo\nfunction: steps.kernels:rosenbrock\n"
BASE: dict[str, Any] = {
    "name": "demo",
    "function": "steps.kernels:rosenbrock",
    "space": {"x": {"range": [0, 12]}},
}

# Nine levels of nine aliases: 9**9 (387 million) values from under 400 bytes.
BILLION_LAUGHS = (
    HEAD
    + "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "space: {x: {values: *i}}\n"
)


def refused(text: str, suffix: str, tmp_path: Path) -> SpecError:
    path = tmp_path / f"spec{suffix}"
    path.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert "\n" not in str(error.value) and len(str(error.value)) < 600, str(error.value)
    return error.value


def test_a_yaml_alias_bomb_is_refused_in_a_fraction_of_a_second(tmp_path: Path) -> None:
    assert len(BILLION_LAUGHS) < 400
    began = time.perf_counter()
    error = refused(BILLION_LAUGHS, ".yaml", tmp_path)
    assert time.perf_counter() - began < 2
    assert f"more than {MAX_NODES:,} values" in str(error) and "aliases" in str(error)


def test_an_alias_of_a_long_text_used_many_times_is_refused_by_its_characters(
    tmp_path: Path,
) -> None:
    long = "x" * 200_000  # fits in a spec file; 1,000 uses of it are 200 MB of text
    text = HEAD + f"t: &t {long}\nspace: {{k: {{values: [{', '.join(['*t'] * 1000)}]}}}}\n"
    began = time.perf_counter()
    error = refused(text, ".yaml", tmp_path)
    assert time.perf_counter() - began < 2
    assert f"more than {MAX_SPEC_FILE_BYTES:,} characters of text" in str(error)
    with pytest.raises(SpecError, match="characters of text"):
        parse_spec(BASE | {"space": {"k": {"values": [long] * 1000}}})


def test_small_aliases_are_fine_and_count_each_time_they_are_used(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "space:\n  x: {values: &v [1, 2, 3]}\n  y: {values: *v}\n")
    spec = load_spec(path)
    assert [a.args for a in spec.axes] == [(1, 2, 3), (1, 2, 3)]


@pytest.mark.parametrize(
    "document,field",
    [
        ("space: &a [*a]\n", "space[0]"),
        ("space: &a {x: *a}\n", "space.x"),
        ("space: {x: {values: &v [1, *v]}}\n", "space.x.values[1]"),
    ],
)
def test_a_document_that_contains_itself_is_refused(
    document: str, field: str, tmp_path: Path
) -> None:
    error = refused(HEAD + document, ".yaml", tmp_path)
    assert error.field == field and "contains itself" in str(error)


def test_a_python_document_that_contains_itself_is_refused_too() -> None:
    values: list = [1]
    values.append(values)
    with pytest.raises(SpecError, match="contains itself") as error:
        parse_spec(BASE | {"space": {"x": {"values": values}}})
    assert error.value.field == "space.x.values[1]"


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".toml"])
def test_nesting_beyond_the_parsers_recursion_is_one_line(suffix: str, tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = f"a = {deep}" if suffix == ".toml" else deep
    error = refused(text, suffix, tmp_path)
    assert error.field == "file" and "nests too deeply" in str(error)


def test_nesting_the_parsers_accept_is_still_bounded_before_any_validator() -> None:
    deep: list = [1]
    for _ in range(500):
        deep = [deep]
    with pytest.raises(SpecError, match=f"nests deeper than {MAX_DEPTH} levels") as error:
        spec_from_json(json.dumps(BASE | {"space": {"x": {"values": deep}}}))
    assert len(str(error.value)) < 300


def test_every_user_value_in_a_message_is_bounded_and_on_one_line() -> None:
    huge = "x\n" * 100_000
    cases: list[dict[str, Any]] = [
        {"name": huge},
        {"function": huge},
        {"shards": [huge] * 1000},
        {"shards": 2**20_000},  # str() of this int raises: Python's 4,300-digit limit
        {"keep": {"where": huge}},
        {"objective": {"column": "f", "goal": huge}},
        {huge: 1},
        {"space": {huge: {"range": [0, 2]}}},
        {"space": {"x": {"values": [{"deep": [huge] * 50}] * 50}}},
        {"resources": {"cpu_limit": 16**5000}},
    ]
    for change in cases:
        with pytest.raises(SpecError) as error:
            parse_spec(BASE | change)
        message = str(error.value)
        assert "\n" not in message and len(message) < 600, message[:1000]


def test_a_spec_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(BASE) + " " * MAX_SPEC_FILE_BYTES)
    with pytest.raises(SpecError, match=f"over the {MAX_SPEC_FILE_BYTES:,}-byte limit") as error:
        load_spec(path)
    assert error.value.field == "file" and f"{path.stat().st_size:,} bytes" in str(error.value)


def test_a_device_is_never_read_whole(tmp_path: Path) -> None:
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    began = time.perf_counter()
    with pytest.raises(SpecError, match="is more than"):
        load_spec(link)
    with pytest.raises(SpecError, match="unknown spec format"):
        load_spec("/dev/zero")  # no suffix: refused before it is opened
    assert time.perf_counter() - began < 2


def test_a_json_spec_argument_over_the_limit_is_refused() -> None:
    with pytest.raises(SpecError, match=f"--spec is {MAX_SPEC_FILE_BYTES + 1:,} bytes, over the"):
        spec_from_json(" " * (MAX_SPEC_FILE_BYTES + 1))


def spec_of_size(size: int) -> dict:
    """A valid spec whose compact canonical JSON is `size` bytes (one long `values` list)."""
    base = len(parse_spec(BASE | {"space": {"k": {"values": [1]}}}).to_json())
    count = (size - base) // 2 + 1  # each further value adds ",1"
    document = BASE | {"space": {"k": {"values": [1] * count}}}
    pad = size - len(parse_spec(document).to_json())
    document["space"]["k"]["values"][:pad] = [10] * pad  # "10" is one byte longer than "1"
    assert len(parse_spec(document).to_json()) == size
    return document


def test_the_canonical_spec_is_limited_and_the_message_names_the_axis_and_both_sizes() -> None:
    assert len(parse_spec(spec_of_size(MAX_SPEC_BYTES)).to_json().encode()) == MAX_SPEC_BYTES
    with pytest.raises(SpecError) as error:
        parse_spec(spec_of_size(MAX_SPEC_BYTES + 1))
    message = str(error.value)
    assert error.value.field == "space.k.values"
    assert f"{MAX_SPEC_BYTES + 1:,} bytes" in message and f"{MAX_SPEC_BYTES:,}" in message
    assert "range, linspace or logspace" in message and "\n" not in message


def test_the_largest_spec_travels_as_one_argument_of_a_fresh_interpreter() -> None:
    """Why the limit is what it is: an argument of 128 KiB or more cannot start a process."""
    spec = parse_spec(spec_of_size(MAX_SPEC_BYTES)).to_json()
    echo = [sys.executable, "-c", "import sys; print(len(sys.argv[1].encode()))"]
    done = subprocess.run([*echo, spec], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(MAX_SPEC_BYTES)
    if sys.platform.startswith("linux"):
        with pytest.raises(OSError) as error:
            subprocess.run([*echo, "x" * (128 * 1024)], capture_output=True, check=False)
        assert error.value.errno == errno.E2BIG


def test_a_200_kb_spec_is_refused_by_run_and_render_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_text(json.dumps(BASE | {"space": {"k": {"values": list(range(35_000))}}}))
    assert 190_000 < path.stat().st_size < MAX_SPEC_FILE_BYTES
    for command in ("run", "render"):
        result = sweep(command, str(path), "--store", str(tmp_path / "runs"), timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "'space.k.values'" in result.stderr
        assert f"over the limit of {MAX_SPEC_BYTES:,}" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["run", "render"])
def test_the_alias_bomb_does_not_hang_the_cli(command: str, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    result = sweep(command, str(path), "--store", str(tmp_path / "runs"), timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and f"{MAX_NODES:,} values" in result.stderr


# --- overrides: one validator per value ---------------------------------------------------


def test_a_shards_override_refuses_more_shards_than_rows_exactly_as_the_loader_does() -> None:
    spec = parse_spec(BASE)
    with pytest.raises(SpecError) as loaded:
        parse_spec(BASE | {"shards": 13})
    with pytest.raises(SpecError) as overridden:
        spec.with_fields(shards=13)
    assert overridden.value.field == "shards" and str(overridden.value) == str(loaded.value)
    assert "only 12 rows" in str(overridden.value)


@pytest.mark.parametrize("shards", [0, -1, 10_001, 2.5, "3", True])
def test_a_shards_override_gives_the_loaders_message_for_every_bad_value(shards: object) -> None:
    with pytest.raises(SpecError) as loaded:
        parse_spec(BASE | {"shards": shards})
    with pytest.raises(SpecError) as overridden:
        parse_spec(BASE).with_fields(shards=shards)
    assert str(overridden.value) == str(loaded.value)


def test_an_override_keeps_every_other_field_and_the_resources() -> None:
    document = BASE | {
        "seed": 5,
        "objective": {"column": "f", "goal": "max", "top_k": 3},
        "keep": {"where": "f < 0.5"},
        "resources": {"cpu_limit": "2", "memory_limit": "1Gi"},
    }
    spec = parse_spec(document)
    assert spec.with_fields(shards=4) == parse_spec(document | {"shards": 4})
    assert spec.with_fields(shards=4).resources == Resources(cpu_limit="2", memory_limit="1Gi")
    assert spec.with_fields(shards=spec.shards) == spec
    assert spec.with_fields(seed=6).hash == parse_spec(document | {"seed": 6}).hash
    with pytest.raises(SpecError, match="did you mean 'shards'"):
        spec.with_fields(shard=3)
