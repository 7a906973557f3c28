"""Small things a user trips over: `--help` that reads the same every time, and a cluster render
with a store its pods cannot write to."""

from __future__ import annotations

import argparse

import pytest

from tests.cli import sweep
from workflows.sweep import build_parser

(SUBCOMMANDS,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
COMMANDS = sorted(SUBCOMMANDS.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_flags_in_the_same_order_whatever_the_hash_seed(command: str) -> None:
    helps = {
        sweep(command, "--help", env={"PYTHONHASHSEED": seed, "COLUMNS": "100"}).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(helps) == 1, helps


def test_render_warns_that_pods_cannot_write_to_a_relative_folder() -> None:
    done = sweep("render", "--store", "runs")
    assert done.returncode == 0, done.stderr
    assert "apiVersion: argoproj.io/v1alpha1" in done.stdout  # the manifest is still written
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("warning: --store runs is a relative folder")
    assert "s3://" in warning


@pytest.mark.parametrize("store", ["s3://ttg-runs/sweeps", "/mnt/shared/runs", "file:///mnt/runs"])
def test_render_to_a_store_pods_can_reach_warns_about_nothing(store: str) -> None:
    done = sweep("render", "--store", store)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_the_flag_order_is_the_resource_fields_order() -> None:
    text = sweep("render", "--help", env={"COLUMNS": "200"}).stdout
    flags = ["--cpu-request", "--memory-request", "--cpu-limit", "--memory-limit", "--gpu"]
    assert sorted(flags, key=text.index) == flags
