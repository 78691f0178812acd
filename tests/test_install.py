"""A regular and an editable install both expose ``mipcheck.layers`` and ``mipcheck.suites`` only.

``layers/`` and ``suites/`` sit at the top of the repository but must be
importable only under ``mipcheck.``; the bare names must not leak onto
``sys.path``. Each install goes into a fresh venv (seeing the test
environment's site-packages, for Scapy and friends) from a copy of the sources, so the
working tree gets no build/ or egg-info litter; the imports run from a
temporary directory outside that copy.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "mipcheck", "layers", "suites")

PROBE = r"""
import importlib.util, json, sys
import mipcheck.layers, mipcheck.suites
from mipcheck.layers import RegistrationRequest, MIPExtTNC
print(json.dumps({
    "layers": mipcheck.layers.__file__,
    "suites": mipcheck.suites.__file__,
    "tnc": bytes(MIPExtTNC()).hex(),
    "bare_layers": importlib.util.find_spec("layers") is not None,
    "bare_suites": importlib.util.find_spec("suites") is not None,
    "prefix": sys.prefix,
}))
"""


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("src") / "mipcheck-src"
    dst.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".pytest_cache")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dst / name)
    return dst


def _venv(where: Path) -> Path:
    """A fresh venv that sees the running environment's packages (Scapy and friends), offline.

    ``--system-site-packages`` would show the *base* interpreter's packages: when
    pytest itself runs in a venv (the README's ``pip install -e '.[test]'`` in a
    fresh venv), those lack Scapy. A .pth file listing this environment's
    site-packages works from a venv and from the system Python alike. Plain path
    lines do not run the .pth files found there, so an install of mipcheck in
    this environment (editable or not) stays inert and the venv's own one wins.
    """
    made = _run([sys.executable, "-m", "venv", str(where)], cwd=where.parent, timeout=300)
    python = where / "bin" / "python"
    if made.returncode != 0 or not python.exists():
        pytest.skip(f"cannot create a venv here ({made.stderr.strip()[-300:] or 'no python in it'})")
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=where.parent)
    assert purelib.returncode == 0, purelib.stderr[-2000:]
    (Path(purelib.stdout.strip()) / "_mipcheck_test_outer_site.pth").write_text("".join(f"{d}\n" for d in _site_dirs()))
    return python


def _site_dirs() -> list[str]:
    """The site-packages of the interpreter running the tests, the user site too when it is on."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


@pytest.mark.parametrize("mode", ["regular", "editable"])
def test_install_exposes_only_prefixed_packages(mode: str, source_copy: Path, tmp_path: Path) -> None:
    python = _venv(tmp_path / f"venv-{mode}")
    # build isolation fetches setuptools>=68 (the one installed here is older)
    target = ["-e", str(source_copy)] if mode == "editable" else [str(source_copy)]
    pip = _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", *target], cwd=tmp_path
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = _run([str(python), "-c", PROBE], cwd=outside, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    got = json.loads(probe.stdout.strip().splitlines()[-1])

    assert Path(got["prefix"]).resolve() == (tmp_path / f"venv-{mode}").resolve()
    assert got["tnc"] == "95020000"
    assert got["bare_layers"] is False, "the bare name 'layers' is importable"
    assert got["bare_suites"] is False, "the bare name 'suites' is importable"
    layers_file, suites_file = Path(got["layers"]).resolve(), Path(got["suites"]).resolve()
    if mode == "editable":
        # the venv's own editable install wins over the one in the test environment
        assert layers_file == (source_copy / "layers" / "__init__.py").resolve()
        assert suites_file == (source_copy / "suites" / "__init__.py").resolve()
    else:
        site = (tmp_path / f"venv-{mode}").resolve()
        assert site in layers_file.parents and layers_file.parent.name == "layers"
        assert layers_file.parent.parent.name == "mipcheck"
        assert site in suites_file.parents and suites_file.parent.parent.name == "mipcheck"
        # package data of the suites travels with a regular install
        for toml in (source_copy / "suites" / "requirements").glob("*.toml"):
            assert (suites_file.parent / "requirements" / toml.name).is_file(), toml.name
