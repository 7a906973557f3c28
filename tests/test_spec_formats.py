"""TOML, YAML and JSON mean the same spec or none: what one format reads differently from
another (or YAML 1.1 from YAML 1.2), and what is not UTF-8 text, is refused with one line
naming the field, never guessed."""

from __future__ import annotations

import codecs
import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from steps import layout
from steps.spec import Spec, SpecError, load_spec, parse_spec, spec_from_json

HEAD_YAML = "name: demo\nfunction: steps.kernels:rosenbrock\n"
HEAD_TOML = 'name = "demo"\nfunction = "steps.kernels:rosenbrock"\n'
HEAD_JSON = '"name": "demo", "function": "steps.kernels:rosenbrock"'
BASE = {"name": "demo", "function": "steps.kernels:rosenbrock", "space": {"x": {"range": [0, 3]}}}


def load(text: str | bytes, suffix: str, tmp_path: Path) -> Spec:
    path = tmp_path / f"spec{suffix}"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return load_spec(path)


def refusal(text: str | bytes, suffix: str, tmp_path: Path) -> SpecError:
    with pytest.raises(SpecError) as error:
        load(text, suffix, tmp_path)
    assert "\n" not in str(error.value), str(error.value)
    return error.value


# --- YAML 1.1 (PyYAML) against YAML 1.2 (and TOML and JSON) ------------------------------

AMBIGUOUS = {
    "yes": "bool True",  # YAML 1.1 booleans: yes/no/on/off
    "no": "bool False",
    "On": "bool True",
    "OFF": "bool False",
    "010": "int 8",  # YAML 1.1 octal; 10 in YAML 1.2
    "0o10": "text",  # YAML 1.2 octal; text in YAML 1.1
    "0b101": "int 5",
    "1_000": "int 1,000",
    "1:30": "int 90",  # sexagesimal
    "1e3": "text",  # YAML 1.1 floats need a dot and a signed exponent
    "1.5e3": "text",
    "-.5": "text",
    "08": "text",
    "2024-01-01": "date",
}


@pytest.mark.parametrize("scalar,yaml11", AMBIGUOUS.items(), ids=AMBIGUOUS.keys())
def test_a_plain_yaml_scalar_that_yaml_1_1_and_1_2_read_differently_is_refused(
    scalar: str, yaml11: str, tmp_path: Path
) -> None:
    error = refusal(HEAD_YAML + f"space: {{x: {{values: [{scalar}]}}}}\n", ".yaml", tmp_path)
    assert error.field == "space.x.values[0]"
    assert f"YAML 1.1 reads {scalar!r} as {yaml11}" in str(error) and "quote it" in str(error)


@pytest.mark.parametrize(
    "scalar,value",
    [
        ("true", True),
        ("False", False),
        ("12", 12),
        ("-7", -7),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1.0e+3", 1000.0),
        ("-2.5E-3", -0.0025),
        ("'yes'", "yes"),
        ('"010"', "010"),
        ("!!str 1e3", "1e3"),
        ("'y'", "y"),
        ("fast", "fast"),
        ("'2024-01-01'", "2024-01-01"),
    ],
)
def test_scalars_both_yaml_versions_read_alike_are_accepted_as_they_read(
    scalar: str, value: object, tmp_path: Path
) -> None:
    spec = load(HEAD_YAML + f"space: {{x: {{values: [{scalar}]}}}}\n", ".yaml", tmp_path)
    assert spec.axes[0].args == (value,)
    assert type(spec.axes[0].args[0]) is type(value)


def test_an_ambiguous_key_is_refused_too(tmp_path: Path) -> None:
    error = refusal(HEAD_YAML + "space: {on: {range: [0, 2]}}\n", ".yaml", tmp_path)
    assert error.field == "space.on" and "bool True" in str(error)


plain_scalar = st.one_of(
    st.text(alphabet="0123456789+-._:eExXoObB", max_size=8),
    st.sampled_from(["yes", "No", "ON", "off", "y", "n", "~", "null", "True", ".inf", ".NaN"]),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(scalar=plain_scalar)
def test_whatever_ttg_reads_from_a_plain_yaml_scalar_pyyaml_reads_the_same(scalar: str) -> None:
    text = HEAD_YAML + f"space:\n  x:\n    values:\n    - {scalar}\n"
    try:
        pyyaml = yaml.safe_load(text)["space"]["x"]["values"][0]
    except (yaml.YAMLError, ValueError, TypeError):
        pyyaml = None
    try:
        spec = load_spec_text(text)
    except SpecError as error:
        assert "\n" not in str(error)
        return
    (value,) = spec.axes[0].args
    assert type(value) is type(pyyaml) and repr(value) == repr(pyyaml), (scalar, value, pyyaml)


def load_spec_text(text: str) -> Spec:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(text)
        return load_spec(path)


@pytest.mark.parametrize(
    "document,field,words",
    [
        ("space: {x: {values: [!!binary aGVsbG8=]}}\n", "space.x.values[0]", "'!!binary'"),
        ("space: {x: {values: [!!timestamp 2024-01-01]}}\n", "space.x.values[0]", "'!!timestamp'"),
        ("space: {x: {values: !!set {a, b}}}\n", "space.x.values", "'!!set'"),
        ("space: !!omap [x: {range: [0, 2]}]\n", "space", "'!!omap'"),
        ("space: {x: {values: [!custom 1]}}\n", "space.x.values[0]", "'!custom'"),
        ("space: {x: {values: [!!python/name:os.system x]}}\n", "space.x.values[0]", "python"),
        ("space: {1: {range: [0, 2]}}\n", "space.1", "keys must be strings"),
        ("space: {true: {range: [0, 2]}}\n", "space.True", "keys must be strings"),
        ("? [a, b]\n: 1\nspace: {x: {range: [0, 2]}}\n", "(top level)", "a list or a table"),
        ("base: &b {range: [0, 2]}\nspace: {x: {<<: *b}}\n", "space.x.<<", "merge keys"),
    ],
)
def test_yaml_features_toml_and_json_lack_are_refused_naming_the_field(
    document: str, field: str, words: str, tmp_path: Path
) -> None:
    error = refusal(HEAD_YAML + document, ".yaml", tmp_path)
    assert error.field == field and words in str(error), str(error)


def test_a_toml_date_is_not_a_spec_value(tmp_path: Path) -> None:
    error = refusal(
        HEAD_TOML + "seed = 1979-05-27\n[space]\nx = {range = [0, 2]}\n", ".toml", tmp_path
    )
    assert error.field == "seed" and "date" in str(error) and "not a spec value" in str(error)


# --- duplicate keys: TOML refuses them, so JSON and YAML must too ------------------------


@pytest.mark.parametrize(
    "text,suffix",
    [
        (HEAD_TOML + "[space]\nx = {range = [0, 2]}\nx = {range = [0, 3]}\n", ".toml"),
        (HEAD_YAML + "space:\n  x: {range: [0, 2]}\n  x: {range: [0, 3]}\n", ".yaml"),
        ("{" + HEAD_JSON + ', "space": {"x": {"range": [0, 2]}, "x": {"range": [0, 3]}}}', ".json"),
        (
            "{" + HEAD_JSON + ', "shards": 1, "shards": 2, "space": {"x": {"range": [0, 2]}}}',
            ".json",
        ),
        (HEAD_YAML + "shards: 1\nshards: 2\nspace: {x: {range: [0, 2]}}\n", ".yaml"),
    ],
)
def test_a_key_given_twice_is_refused_in_every_format(
    text: str, suffix: str, tmp_path: Path
) -> None:
    error = refusal(text, suffix, tmp_path)
    if suffix == ".toml":  # tomllib refuses it while parsing, with the line
        assert error.field == "file" and "line 5" in str(error)
    else:
        assert error.field in ("space.x", "shards") and "defined twice" in str(error)


def test_a_repeated_key_in_the_json_a_pod_receives_is_refused() -> None:
    with pytest.raises(SpecError, match="defined twice") as error:
        spec_from_json(
            '{"name": "a", "name": "b", "function": "m:f", "space": {"x": {"range": [0, 2]}}}'
        )
    assert error.value.field == "name"


# --- input that is not text -----------------------------------------------------------------

FILES = {
    ".toml": HEAD_TOML + "[space]\nx = {range = [0, 3]}\n",
    ".yaml": HEAD_YAML + "space: {x: {range: [0, 3]}}\n",
    ".json": "{" + HEAD_JSON + ', "space": {"x": {"range": [0, 3]}}}',
}


@pytest.mark.parametrize("suffix", FILES)
def test_a_utf8_byte_order_mark_is_accepted_by_every_format_alike(
    suffix: str, tmp_path: Path
) -> None:
    with_bom = load(codecs.BOM_UTF8 + FILES[suffix].encode(), suffix, tmp_path)
    assert with_bom == parse_spec(BASE)


@pytest.mark.parametrize("suffix", FILES)
@pytest.mark.parametrize(
    "encode,words",
    [
        (lambda t: t.encode("utf-16"), "is UTF-16 text: save it as UTF-8"),
        (lambda t: t.encode("utf-32"), "is UTF-32 text: save it as UTF-8"),
        (lambda t: t.encode("utf-16-le"), "has a NUL byte at offset 1"),
        (lambda t: t.replace("demo", "démo").encode("latin-1"), "is not UTF-8 text: byte 0xe9"),
        (lambda t: t.encode() + b"\x00\x01\x02\xff", "has a NUL byte"),
        (lambda t: bytes(range(256)), "has a NUL byte at offset 0"),
    ],
)
def test_a_file_that_is_not_utf8_text_is_refused_with_one_line(
    suffix: str, encode: object, words: str, tmp_path: Path
) -> None:
    error = refusal(encode(FILES[suffix]), suffix, tmp_path)  # type: ignore[operator]
    assert error.field == "file" and words in str(error), str(error)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), suffix=st.sampled_from(sorted(FILES)))
def test_any_bytes_give_a_spec_or_one_line_never_another_error(data: bytes, suffix: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"spec{suffix}"
        path.write_bytes(data)
        try:
            load_spec(path)
        except SpecError as error:
            assert "\n" not in str(error) and len(str(error)) < 600


@pytest.mark.parametrize(
    "text",
    ["\ud800", "a\udfffb", "\udcff"],  # a JSON "\ud800" escape, or argv bytes decoded by Python
)
def test_a_lone_surrogate_is_refused_wherever_it_is(text: str) -> None:
    for document in (
        BASE | {"space": {"x": {"values": [text]}}},
        BASE | {"space": {"x": {"choice": ["a", text]}}},
        BASE | {"objective": {"column": text}},
        BASE | {"keep": {"where": text}},
        BASE | {text: 1},
    ):
        with pytest.raises(SpecError, match="lone surrogate, which UTF-8 cannot encode"):
            parse_spec(document)
    escaped = json.dumps(text)  # '"\\ud800"': valid JSON, not valid Unicode
    with pytest.raises(SpecError, match="lone surrogate"):
        spec_from_json(json.dumps(BASE)[:-1] + f', "objective": {{"column": {escaped}}}}}')


# --- names end where the text ends: `$` would accept a trailing newline ------------------


@pytest.mark.parametrize(
    "change,field",
    [
        ({"name": "demo\n"}, "name"),
        ({"function": "steps.kernels:rosenbrock\n"}, "function"),
        ({"space": {"x\n": {"range": [0, 2]}}}, "space.'x\\n'"),
        ({"resources": {"cpu_limit": "500m\n"}}, "resources.cpu_limit"),
        (
            {"resources": {"cpu_limit": "\u0665\u0660\u0660m"}},
            "resources.cpu_limit",
        ),  # Arabic-Indic 500
        ({"resources": {"memory_limit": "1" * 40 + "Mi"}}, "resources.memory_limit"),
    ],
)
def test_a_name_or_quantity_with_a_trailing_newline_or_foreign_digits_is_refused(
    change: dict, field: str
) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(BASE | change)
    assert error.value.field == field and "\n" not in str(error.value)


def test_a_run_id_with_a_trailing_newline_is_not_a_dns_label() -> None:
    assert layout.RUN_ID_RE.match("demo-abcde")
    assert not layout.RUN_ID_RE.match("demo-abcde\n")
    assert not layout.RUN_ID_RE.fullmatch("demo-abcde\n")


def test_a_where_number_is_read_as_a_float_and_written_back_canonically() -> None:
    spec = parse_spec(BASE | {"keep": {"where": " f <= 1e-3 "}})
    assert spec.canonical()["keep"] == {"where": "f <= 0.001"}
    assert math.isfinite(spec.keep.where[2])  # type: ignore[index]


def test_a_pod_given_a_spec_argument_that_is_not_utf8_exits_2_with_one_line(
    tmp_path: Path,
) -> None:
    """Python decodes such argv bytes to lone surrogates; they must not reach the hash."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    spec = json.dumps(BASE | {"objective": {"column": "f"}}).replace('"f"', '"\\xff"')
    argv = [sys.executable, "-m", "steps.compute", "--spec", "SPEC", "--store", str(tmp_path)]
    argv += ["--run-id", "demo-abcde", "--shard", "0"]
    command = [os.fsencode(a) for a in argv]
    command[4] = spec.encode().replace(b"\\xff", b"\xff")  # a raw 0xff byte, not UTF-8
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120, check=False)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "lone surrogate" in stderr and "Traceback" not in stderr
