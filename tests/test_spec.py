"""Specs load from TOML/YAML/JSON, validate every field, and hash in axis order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.spec import SpecError, load_spec, parse_spec, spec_from_json
from tests.cli import sweep
from tests.conftest import SWEEPS

BASE = {
    "name": "demo",
    "function": "steps.kernels:rosenbrock",
    "space": {"x": {"linspace": [0.0, 1.0, 5]}},
}


def with_(**changes: object) -> dict:
    spec = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if value is DELETE:
            spec.pop(key)
        else:
            spec[key] = value
    return spec


DELETE = object()


def test_the_default_example_is_the_10_million_row_rosenbrock_sweep() -> None:
    spec = load_spec(SWEEPS / "rosenbrock.toml")
    assert (spec.name, spec.function, spec.shards, spec.chunk_rows) == (
        "rosenbrock",
        "steps.kernels:rosenbrock",
        8,
        262144,
    )
    assert [a.name for a in spec.axes] == ["x", "y"]
    assert spec.canonical()["space"] == [
        ["x", {"linspace": [-2.0, 2.0, 3163]}],
        ["y", {"linspace": [-1.0, 3.0, 3163]}],
    ]


def test_toml_yaml_and_json_give_the_same_spec(tmp_path: Path) -> None:
    import yaml

    toml = load_spec(SWEEPS / "random-search.toml")
    document = toml.canonical() | {"space": dict((n, a) for n, a in toml.canonical()["space"])}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (tmp_path / "s.json").write_text(json.dumps(document))
    assert load_spec(tmp_path / "s.yaml") == toml
    assert load_spec(tmp_path / "s.json") == toml
    assert spec_from_json(toml.to_json()) == toml


def test_the_hash_keeps_axis_order_and_covers_every_field() -> None:
    xy = parse_spec(with_(space={"x": {"range": [0, 3]}, "y": {"range": [0, 2]}}))
    yx = parse_spec(with_(space={"y": {"range": [0, 2]}, "x": {"range": [0, 3]}}))
    assert xy.hash != yx.hash
    assert xy.to_json().index('"x"') < xy.to_json().index('"y"')
    assert parse_spec(with_(seed=1)).hash != parse_spec(with_(seed=2)).hash
    assert parse_spec(BASE).hash == parse_spec(json.loads(json.dumps(BASE))).hash
    assert len(parse_spec(BASE).hash) == 64


def test_defaults_are_filled_in() -> None:
    spec = parse_spec(BASE)
    assert (
        spec.shards,
        spec.chunk_rows,
        spec.seed,
        spec.samples,
        spec.vectorized,
        spec.objective,
    ) == (1, 262144, 0, 1, True, None)


BAD_SPECS = {
    "name missing": (with_(name=DELETE), "name"),
    "name upper case": (with_(name="Demo"), "name"),
    "name too long": (with_(name="a" * 41), "name"),
    "name with underscore": (with_(name="my_sweep"), "name"),
    "name not a string": (with_(name=3), "name"),
    "function missing": (with_(function=DELETE), "function"),
    "function without colon": (with_(function="steps.kernels.rosenbrock"), "function"),
    "shards zero": (with_(shards=0), "shards"),
    "shards negative": (with_(shards=-3), "shards"),
    "shards huge": (with_(shards=10_001), "shards"),
    "shards a string": (with_(shards="8"), "shards"),
    "shards a float": (with_(shards=2.5), "shards"),
    "shards above rows": (with_(shards=6), "shards"),
    "chunk_rows zero": (with_(chunk_rows=0), "chunk_rows"),
    "seed negative": (with_(seed=-1), "seed"),
    "samples without a random axis": (with_(samples=3), "samples"),
    "vectorized not a bool": (with_(vectorized="no"), "vectorized"),
    "misspelled key": (with_(shard=3), "shard"),
    "space missing": (with_(space=DELETE), "space"),
    "space empty": (with_(space={}), "space"),
    "axis empty": (with_(space={"x": {}}), "space.x"),
    "two kinds in one axis": (with_(space={"x": {"range": [0, 3], "values": [1]}}), "space.x"),
    "unknown axis kind": (with_(space={"x": {"linspac": [0, 1, 3]}}), "space.x.linspac"),
    "axis named param_id": (with_(space={"param_id": {"range": [0, 3]}}), "space.param_id"),
    "axis name not an identifier": (with_(space={"my-axis": {"range": [0, 3]}}), "space.my-axis"),
    "linspace num zero": (with_(space={"x": {"linspace": [0.0, 1.0, 0]}}), "space.x.linspace[2]"),
    "linspace too short": (with_(space={"x": {"linspace": [0.0, 1.0]}}), "space.x.linspace"),
    "linspace nan": (
        with_(space={"x": {"linspace": [float("nan"), 1.0, 3]}}),
        "space.x.linspace[0]",
    ),
    "linspace inf": (
        with_(space={"x": {"linspace": [0.0, float("inf"), 3]}}),
        "space.x.linspace[1]",
    ),
    "logspace overflow": (with_(space={"x": {"logspace": [0, 400, 3]}}), "space.x.logspace[1]"),
    "range step zero": (with_(space={"n": {"range": [0, 5, 0]}}), "space.n.range[2]"),
    "range reversed": (with_(space={"n": {"range": [5, 0]}}), "space.n.range"),
    "range of floats": (with_(space={"n": {"range": [0, 2.5]}}), "space.n.range[1]"),
    "values empty": (with_(space={"k": {"values": []}}), "space.k.values"),
    "values mixed types": (with_(space={"k": {"values": [1, "a"]}}), "space.k.values"),
    "values not a list": (with_(space={"k": {"values": "abc"}}), "space.k.values"),
    "uniform reversed": (with_(space={"u": {"uniform": [1.0, 0.0]}}), "space.u.uniform"),
    "loguniform zero low": (
        with_(space={"u": {"loguniform": [0.0, 1.0]}}),
        "space.u.loguniform[0]",
    ),
    "normal negative stddev": (with_(space={"w": {"normal": [0.0, -1.0]}}), "space.w.normal[1]"),
    "choice empty": (with_(space={"c": {"choice": []}}), "space.c.choice"),
    "objective goal": (with_(objective={"column": "f", "goal": "best"}), "objective.goal"),
    "objective top_k zero": (with_(objective={"column": "f", "top_k": 0}), "objective.top_k"),
    "objective unknown key": (with_(objective={"column": "f", "order": "min"}), "objective.order"),
    "objective without column": (with_(objective={"goal": "min"}), "objective.column"),
    "keep top_k without objective": (with_(keep={"top_k": 5}), "keep.top_k"),
    "keep where malformed": (with_(keep={"where": "f is small"}), "keep.where"),
    "keep unknown": (with_(keep="some"), "keep"),
    "too many rows": (with_(space={f"a{i}": {"range": [0, 1_000_000]} for i in range(4)}), "space"),
    # rows with more than Python's 4,300 printable digits: the message must not format them
    "rows past str() of an int": (
        with_(space={f"a{i}": {"range": [0, 2**62]} for i in range(300)}),
        "space",
    ),
    "name with a trailing newline": (with_(name="demo\n"), "name"),
    "int64 overflow in values": (with_(space={"k": {"values": [2**63]}}), "space.k.values[0]"),
    "linspace end not exactly a float": (
        with_(space={"x": {"linspace": [0, 2**53 + 1, 3]}}),
        "space.x.linspace[1]",
    ),
    "linspace end beyond float64": (
        with_(space={"x": {"linspace": [0, 10**400, 3]}}),
        "space.x.linspace[1]",
    ),
    "linspace span overflows": (
        with_(space={"x": {"linspace": [-1.7e308, 1.7e308, 3]}}),
        "space.x.linspace",
    ),
    "shards a huge hex literal": (with_(shards=16**5000), "shards"),
    "a date is not a value": (with_(seed=__import__("datetime").date(2024, 1, 1)), "seed"),
}


@pytest.mark.parametrize("spec,field", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_a_bad_spec_names_its_field(spec: dict, field: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert error.value.field == field
    assert f"'{field}'" in str(error.value) and "\n" not in str(error.value)


def test_a_misspelled_key_gets_a_suggestion() -> None:
    with pytest.raises(SpecError, match="did you mean 'chunk_rows'"):
        parse_spec(with_(chunk_row=10))


@pytest.mark.parametrize(
    "document,suffix,field",
    [
        ('name = "x"\nshards = [', ".toml", "file"),
        ("name: [unclosed", ".yaml", "file"),
        ('{"name": ', ".json", "file"),
        (
            'name = "demo"\nfunction = "steps.kernels:rosenbrock"\nshards = -1\n[space]\nx = { range = [0, 4] }\n',
            ".toml",
            "shards",
        ),
        (
            'name = "demo"\nfunction = "steps.kernels:rosenbrock"\n[space]\nx = { linspace = [0, 1, nan] }\n',
            ".toml",
            "space.x.linspace[2]",
        ),
        ("", ".ini", "file"),
    ],
)
def test_the_cli_rejects_a_bad_spec_with_one_line_and_exit_2(
    tmp_path: Path, document: str, suffix: str, field: str
) -> None:
    path = tmp_path / f"spec{suffix}"
    path.write_text(document)
    for command in ("run", "render"):
        result = sweep(command, str(path), "--store", str(tmp_path / "runs"))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and f"'{field}'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_cli_rejects_a_missing_spec_file_and_an_unimportable_function(tmp_path: Path) -> None:
    missing = sweep("run", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "no such spec file" in missing.stderr
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "demo"\nfunction = "no_such_module:f"\n[space]\nx = { range = [0, 4] }\n'
    )
    result = sweep("run", str(spec), "--store", str(tmp_path / "runs"))
    assert result.returncode == 2 and "cannot import module 'no_such_module'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_code_version_travels_to_the_pods_but_leaves_the_spec_hash_alone() -> None:
    plain = parse_spec(BASE)
    bumped = parse_spec(BASE | {"code_version": "2026-12-01"})
    assert bumped.hash == plain.hash  # resume after a bump recomputes shards, not refuses
    assert json.loads(bumped.to_json())["code_version"] == "2026-12-01"
    assert "code_version" not in json.loads(plain.to_json())
    assert spec_from_json(bumped.to_json()).code_version == "2026-12-01"
    for bad in ("", "x" * 65, 3, "two\nlines"):
        with pytest.raises(SpecError, match="spec field 'code_version'"):
            parse_spec(BASE | {"code_version": bad})


def test_on_nan_is_ignore_by_default_and_in_the_canonical_form_only_when_fail() -> None:
    objective = {"column": "f", "goal": "min"}
    ignored = parse_spec(BASE | {"objective": objective})
    failing = parse_spec(BASE | {"objective": objective | {"on_nan": "fail"}})
    assert ignored.objective is not None and ignored.objective.on_nan == "ignore"
    assert "on_nan" not in json.loads(ignored.to_json())["objective"]
    assert json.loads(failing.to_json())["objective"]["on_nan"] == "fail"
    assert failing.hash != ignored.hash
    with pytest.raises(
        SpecError, match=r"spec field 'objective\.on_nan': must be 'ignore' or 'fail'"
    ):
        parse_spec(BASE | {"objective": objective | {"on_nan": "skip"}})


def test_retry_user_errors_is_how_it_runs_not_what_it_computes() -> None:
    retrying = parse_spec(BASE | {"retry_user_errors": True})
    assert retrying.retry_user_errors and retrying.hash == parse_spec(BASE).hash
    assert retrying.with_fields(shards=2).retry_user_errors  # an override keeps it
    with pytest.raises(SpecError, match="spec field 'retry_user_errors': must be true or false"):
        parse_spec(BASE | {"retry_user_errors": "yes"})


@pytest.mark.parametrize("plain", ["y", "Y", "n", "N"])
def test_yaml_short_booleans_are_refused_as_ambiguous(plain: str, tmp_path: Path) -> None:
    """YAML 1.1 lists y/n as booleans (Go's yaml.v2 reads them so); PyYAML reads text."""
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: demo\nfunction: steps.kernels:rosenbrock\nspace: {{x: {{values: [{plain}]}}}}\n"
    )
    with pytest.raises(SpecError, match=rf"YAML 1\.1 reads '{plain}' as bool"):
        load_spec(path)
    path.write_text(path.read_text().replace(f"[{plain}]", f"['{plain}']"))
    assert load_spec(path).axes[0].args == (plain,)
