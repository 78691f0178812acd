"""Imports point down the floors of docs/design/contracts.md ("Import floors"), never up or sideways.

Every module of the package (``mipcheck/``, ``layers/``, ``suites/``) is parsed
with :mod:`ast`; every import counts, also those inside functions, ``try``
blocks and ``if TYPE_CHECKING:``, and literal ``importlib.import_module`` /
``importlib.resources.files`` names. A module may import its own component
(e.g. ``mipcheck.capture.*`` among themselves) and anything on a lower floor.
Only the foundation floor's leaf helpers may import each other.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]

# Lowest first. Each component is a module or package name; a module belongs to the
# longest component name it starts with.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # stdlib-only leaf helpers and the Scapy-free wire codec; they may import each other
    (
        "foundation",
        (
            "mipcheck",  # the package itself: __version__
            "mipcheck.errors",
            "mipcheck.tomlfile",
            "mipcheck.keysource",
            "mipcheck.fields",
            "mipcheck.clock",
            "mipcheck.outcomes",
            "mipcheck.catalogue",
            "mipcheck.proto",
            "mipcheck.tundev",  # the TUN device the agents' --tun shells share (I/O, no protocol)
        ),
    ),
    ("layers", ("mipcheck.layers",)),  # Scapy layers
    ("cores", ("mipcheck.ha", "mipcheck.mn", "mipcheck.capture", "mipcheck.fa")),  # peers: none imports another
    ("engine", ("mipcheck.engine",)),
    ("lab", ("mipcheck.builtin",)),  # the built-in lab: engine profile + reference home agent
    ("simulation", ("mipcheck.sim",)),  # the built-in lab over the simulated network
    ("netns lab", ("mipcheck.lab",)),  # Figure 1 in network namespaces: real agents, firewall, VPN
    ("suites", ("mipcheck.suites", "mipcheck.fuzz")),  # fuzz: a campaign is a peer of a suite
    ("front", ("mipcheck.commands", "mipcheck.cli")),
    ("entry", ("mipcheck.__main__",)),  # python -m mipcheck: runs the CLI
)
PEERS_MAY_IMPORT_EACH_OTHER = frozenset({"foundation"})

# (importer, imported): exceptions that must stay for now, each with why and how it goes.
ALLOWED: Mapping[tuple[str, str], str] = {}

_FLOOR_OF = {component: (index, name) for index, (name, components) in enumerate(FLOORS) for component in components}


def component(module: str) -> str | None:
    """The longest component name ``module`` starts with (None: on no floor).

    The root ``mipcheck`` is a component for itself only, or every new module would be on it.
    """
    parts = module.split(".")
    if len(parts) == 1:
        return module if module in _FLOOR_OF else None
    for n in range(len(parts), 1, -1):
        candidate = ".".join(parts[:n])
        if candidate in _FLOOR_OF:
            return candidate
    return None


def package_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package as pyproject.toml maps it."""
    found: dict[str, Path] = {}
    for dotted, folder in PACKAGE_DIRS.items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            if "__pycache__" in rel.parts:
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found[".".join((dotted, *parts))] = path
    return found


def imported_names(module: str, source: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """Every ``mipcheck`` module ``module`` imports, resolved to module names where possible."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # "from mipcheck import keysource" imports the module mipcheck.keysource
                sub = f"{target}.{alias.name}"
                names.add(sub if sub in known else target)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "files", "find_spec", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return {name for name in names if name == "mipcheck" or name.startswith("mipcheck.")}


def upward_imports(sources: Mapping[str, tuple[str, bool]], known: Iterable[str] = ()) -> list[str]:
    """Imports that break the floors: ``sources`` maps module -> (source, is_package)."""
    known = set(known) | set(sources)
    problems = []
    for module, (source, is_package) in sorted(sources.items()):
        mine = component(module)
        if mine is None:
            problems.append(f"{module}: on no floor (place it in FLOORS and docs/design/contracts.md)")
            continue
        my_floor, my_floor_name = _FLOOR_OF[mine]
        for target in sorted(imported_names(module, source, is_package, known)):
            theirs = component(target)
            if theirs is None or theirs == mine or (module, target) in ALLOWED:
                continue  # unplaced targets are reported as modules of their own
            floor, floor_name = _FLOOR_OF[theirs]
            if floor < my_floor or (floor == my_floor and floor_name in PEERS_MAY_IMPORT_EACH_OTHER):
                continue
            way = "up" if floor > my_floor else "sideways"
            problems.append(f"{module} ({my_floor_name}) imports {target} ({floor_name}): {way}")
    return problems


def _package_sources() -> dict[str, tuple[str, bool]]:
    return {m: (p.read_text(encoding="utf-8"), p.name == "__init__.py") for m, p in package_modules().items()}


def test_imports_only_point_down_the_floors():
    problems = upward_imports(_package_sources())
    assert not problems, "imports against the floors of docs/design/contracts.md:\n" + "\n".join(problems)


def test_every_allowed_exception_is_still_needed():
    sources = _package_sources()
    for importer, imported in ALLOWED:
        assert importer in sources, f"allow-list names a module that is gone: {importer}"
        assert imported in imported_names(importer, *sources[importer], sources), (
            f"{importer} no longer imports {imported}: drop it from ALLOWED"
        )


# ------------------------------------------------------------------ the check can fail

KNOWN = ("mipcheck.suites.catalogue", "mipcheck.ha.core", "mipcheck.engine.verdicts")


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # the violation issue 9 removed: engine/runner.py read the catalogue from mipcheck.suites
        ("mipcheck.engine.runner", "def f():\n    from mipcheck.suites.catalogue import by_case\n", "up"),
        (
            "mipcheck.capture.analysis",
            "try:\n    import mipcheck.suites.catalogue\nexcept ImportError:\n    pass\n",
            "up",
        ),
        ("mipcheck.engine.runner", "from ..suites import catalogue\n", "up"),
        ("mipcheck.outcomes", "from mipcheck.engine.verdicts import Verdict\n", "up"),
        ("mipcheck.capture.analysis", "from mipcheck.ha.core import HomeAgent\n", "sideways"),
        ("mipcheck.catalogue", "from importlib import resources\nresources.files('mipcheck.suites')\n", "up"),
        ("mipcheck.engine.runner", "import importlib\nimportlib.import_module('mipcheck.builtin')\n", "up"),
    ],
)
def test_a_lower_module_importing_a_higher_one_fails(module: str, source: str, expected: str):
    problems = upward_imports({module: (source, False)}, KNOWN)
    assert len(problems) == 1 and problems[0].endswith(f": {expected}"), problems


@pytest.mark.parametrize(
    ("module", "source"),
    [
        (
            "mipcheck.suites.ha.judge",
            "from mipcheck.engine.verdicts import Check\nfrom mipcheck.mn import acceptance\n",
        ),
        ("mipcheck.engine.runner", "from mipcheck.catalogue import by_case\nfrom .verdicts import Verdict\n"),
        ("mipcheck.keysource", "from mipcheck.errors import ConfigError\n"),
        ("mipcheck.capture.analysis", "from .names import numbers\nfrom mipcheck.outcomes import Party\n"),
    ],
)
def test_downward_and_own_component_imports_pass(module: str, source: str):
    assert upward_imports({module: (source, False)}, KNOWN) == []


def test_a_module_on_no_floor_fails():
    assert upward_imports({"mipcheck.newthing": ("", False)}) == [
        "mipcheck.newthing: on no floor (place it in FLOORS and docs/design/contracts.md)"
    ]
