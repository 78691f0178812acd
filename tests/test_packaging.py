"""The wheel carries every package and data file the sources have.

A regular install only contains what ``pyproject.toml`` lists; a package that
exists in the tree but not in that list works in an editable install and in
the tests, then vanishes from the wheel (``mipcheck run`` once died this way
with ``No module named 'mipcheck.commands'``). These checks read the source tree
and the build configuration only, so they are fast and need no network.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = CONFIG["package-dir"]


def _source_packages() -> dict[str, Path]:
    """Dotted name -> folder, for every folder with an __init__.py under a mapped root."""
    found: dict[str, Path] = {}
    for dotted, root in PACKAGE_DIR.items():
        for init in (REPO / root).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / root)
            if "__pycache__" in rel.parts:
                continue
            found[".".join((dotted, *rel.parts)) if rel.parts else dotted] = init.parent
    return found


def test_every_source_package_is_listed() -> None:
    missing = sorted(set(_source_packages()) - set(CONFIG["packages"]))
    assert not missing, f"packages in the tree but not in pyproject.toml: {missing}"


def test_every_listed_package_exists() -> None:
    absent = sorted(set(CONFIG["packages"]) - set(_source_packages()))
    assert not absent, f"pyproject.toml lists packages with no __init__.py: {absent}"


def test_every_data_file_is_packaged() -> None:
    data: dict[str, list[str]] = CONFIG.get("package-data", {})
    unshipped = []
    for dotted, folder in _source_packages().items():
        for path in folder.rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            # a file belongs to the nearest package folder above it
            owner = max((d for d, f in _source_packages().items() if path.is_relative_to(f)), key=lambda d: len(d))
            if owner != dotted:
                continue
            rel = path.relative_to(folder).as_posix()
            if not any(fnmatch(rel, pattern) for pattern in data.get(dotted, [])):
                unshipped.append(f"{dotted}: {rel}")
    assert not unshipped, f"data files no package-data pattern ships: {unshipped}"
