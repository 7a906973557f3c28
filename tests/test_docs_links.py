"""Every relative link and picture in the README and docs/ names a file a clean clone has:
one the repository tracks, not one that only the machine that wrote the page has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def tracked() -> set[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return {(ROOT / name).resolve() for name in listed.split("\0") if name}


def relative_links(page: Path) -> list[str]:
    targets = [m.group(1) for m in LINK.finditer(page.read_text())]
    return [t for t in targets if not re.match(r"[a-z]+:|#", t)]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_name_files_the_repository_tracks(page: Path) -> None:
    files = tracked()
    folders = {parent for f in files for parent in f.parents}
    missing = [
        link
        for link in relative_links(page)
        if (target := (page.parent / link.split("#")[0]).resolve()) not in files
        and target not in folders
    ]
    assert not missing, f"{page.relative_to(ROOT)} links to untracked {missing}"
