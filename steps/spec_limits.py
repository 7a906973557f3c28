"""The limits of a spec, each with its reason: how many shards, rows and kept rows a sweep may
have, and how large and how deep its file, its document and its canonical JSON may be.

Plain numbers, in one place: the readers (steps.spec_document, steps.spec_tree) and the
validators (steps.spec_validate, steps.spec) all enforce them from here.
"""

from __future__ import annotations

__all__ = [
    "MAX_CHUNK_ROWS",
    "MAX_DEPTH",
    "MAX_KEEP_TOP_K",
    "MAX_NODES",
    "MAX_ROWS",
    "MAX_SHARDS",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_FILE_BYTES",
    "MAX_TOP_K",
]


MAX_SHARDS = 10_000
MAX_CHUNK_ROWS = 1 << 24
MAX_ROWS = 1 << 62
MAX_TOP_K = 10_000
MAX_KEEP_TOP_K = 1_000_000

# The size of a spec. Its compact canonical JSON travels as ONE command-line argument of every
# pod and every fresh local task (`--spec <json>`), and Linux refuses any single argument longer
# than MAX_ARG_STRLEN = 128 KiB ("Argument list too long"). Half of that leaves room for the
# other arguments and for a JSON-escaped copy of the same text (quotes double) wherever the
# template itself is carried, and keeps the rendered Workflow a few KB to tens of KB: O(1).
MAX_SPEC_BYTES = 64 * 1024
# A spec file may be larger than its canonical form (comments, indentation: a YAML block list
# of small numbers is ~4x its JSON), and it is read whole before it is parsed; the slowest
# parser (pure-Python YAML, ~2 us a byte here) takes about half a second on 256 KiB.
MAX_SPEC_FILE_BYTES = 4 * MAX_SPEC_BYTES
# Every value of a valid document adds at least one byte to the canonical JSON, so a document
# of more values (counted expanded: a YAML alias counts each time it is used) cannot be a spec.
MAX_NODES = MAX_SPEC_BYTES
MAX_DEPTH = 32  # a valid spec nests 6 deep; this bounds every walk, repr and parser after it
