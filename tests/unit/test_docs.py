"""The manual: the mkdocs-material site builds with --strict (no broken link or anchor, no page left out of the
nav), every page under docs/ is in the nav, and the README stays a short front page whose links lead somewhere."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import REPO

DOCS = REPO / "docs"
README_MAX_LINES = 170


def _nav_pages(entries) -> list[str]:
    """The page paths of a mkdocs nav: a list of strings, {title: path} and {title: [more entries]}."""
    pages: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            pages.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def _config() -> dict:
    return yaml.safe_load((REPO / "mkdocs.yml").read_text())


def test_the_site_builds_with_strict(tmp_path):
    """mkdocs-material comes with the test extra (`make install`); --strict turns every warning into a failure."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "No module named mkdocs" not in result.stderr, "mkdocs-material is not installed: run `make install`"
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "metrics.html").is_file()


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    nav = _nav_pages(_config()["nav"])
    pages = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_the_readme_stays_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move the detail into docs/"


def test_the_readmes_links_and_images_lead_to_files():
    text = (REPO / "README.md").read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    assert targets, "the README links to no page of the manual"
    missing = [t for t in targets if t and not (REPO / t).exists()]
    assert not missing
    assert any(t.startswith("docs/images/") and t.endswith(".svg") for t in targets), "the README shows no screenshot"


def test_the_readmes_first_screen_says_what_a_new_user_trips_on_and_its_exit_codes_are_the_clis():
    """Where the command is, which Python, the sudo for chromium and how to skip it, endpoints without /v1, and the
    exit codes: the table is the CLI's own constants, so that a code changed in one place fails here."""
    from tuibench.cli import common

    text = (REPO / "README.md").read_text()
    first_screen = "\n".join(text.splitlines()[:40])
    for needed in (".venv/bin/tuibench", "source .venv/bin/activate", "Python 3.11 or later", "PYTHON=",
                   "sudo apt-get", "CHROMIUM=none"):
        assert needed in first_screen, needed
    assert "without `/v1`" in text
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", text.split("## Exit codes", 1)[1], flags=re.M))
    codes = {common.EXIT_OK: "finished", common.EXIT_FAILED: "failed", common.EXIT_USAGE: "bad input",
             common.EXIT_INTERRUPTED: "interrupted"}
    assert set(map(int, table)) == set(codes)
    assert all(word in table[str(code)] for code, word in codes.items())
