"""Requirement catalogue: the RFC sentences that mipcheck's cases and checks test.

Why it exists: a conformance verdict is only useful if it says which RFC requirement it
concerns and at what level (MUST/SHOULD/MAY), and a coverage report needs to know which
requirements no case tests and why.  The data lives in TOML files under
``catalogue_data/requirements/`` (one table per normative statement), next to the vendored
RFC text in ``catalogue_data/rfc/``, so that reviewers can check it against the RFC
without reading code; this module loads and validates it.

Bottom floor (docs/design/contracts.md, "Import floors"): the engine, the passive
analysis and the suites all name requirements, so the catalogue imports nothing of
mipcheck but :mod:`mipcheck.outcomes`, and only the standard library otherwise
(``tomllib``, ``importlib.resources``), so it can be read wherever the package is
installed.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from mipcheck.outcomes import Party

__all__ = [
    "DATA_FILES",
    "KEYWORDS",
    "ROLES",
    "ROLE_PARTIES",
    "TESTS",
    "CatalogueError",
    "Requirement",
    "by_case",
    "coverage",
    "data_folder",
    "level",
    "load_catalogue",
    "load_file",
    "parse_catalogue",
]

#: Data files, in load order, inside ``data_folder("requirements")``.
DATA_FILES = ("rfc5265.toml", "base.toml")

#: BCP 14 keywords (RFC 2119), in the order RFC 5265 section 1.5 lists them.
KEYWORDS = (
    "MUST",
    "MUST NOT",
    "REQUIRED",
    "SHALL",
    "SHALL NOT",
    "SHOULD",
    "SHOULD NOT",
    "RECOMMENDED",
    "MAY",
    "OPTIONAL",
)

#: Who a requirement binds: mobile node, internal/external home agent, both home
#: agents, VPN gateway, enterprise firewall, foreign agent.
ROLES = frozenset({"mn", "i-ha", "x-ha", "ha", "vpn", "firewall", "fa"})

#: The party that breaks a requirement of each role when it is not met (on the wire).
ROLE_PARTIES: Mapping[str, Party] = {
    "mn": Party.MOBILE_NODE,
    "i-ha": Party.HOME_AGENT,
    "x-ha": Party.HOME_AGENT,
    "ha": Party.HOME_AGENT,
    "vpn": Party.VPN_GATEWAY,
    "firewall": Party.FIREWALL,
    "fa": Party.FOREIGN_AGENT,
}

#: How a requirement is tested: an active conformance case, a check on a capture
#: (``mipcheck analyze``), a lab with VPN/firewall/namespaces, or not black-box at all.
TESTS = frozenset({"active", "passive", "lab", "untestable"})

# RFC 2119 gives three strengths; verdicts (FAIL/WARN/INFO) are graded by them.
_LEVELS = {
    "MUST": "MUST",
    "MUST NOT": "MUST",
    "REQUIRED": "MUST",
    "SHALL": "MUST",
    "SHALL NOT": "MUST",
    "SHOULD": "SHOULD",
    "SHOULD NOT": "SHOULD",
    "RECOMMENDED": "SHOULD",
    "MAY": "MAY",
    "OPTIONAL": "MAY",
}

_REQUIRED_KEYS = ("id", "rfc", "section", "keyword", "text", "role", "test", "cases")
_OPTIONAL_KEYS = ("reason", "note", "paraphrase")
_KNOWN_KEYS = frozenset(_REQUIRED_KEYS + _OPTIONAL_KEYS)

# "5265-4.3-TRUSTED-SUBNETS": RFC number, section, upper-case short name.
_ID_RE = re.compile(r"(?P<rfc>[1-9][0-9]*)-(?P<section>[0-9]+(?:\.[0-9]+)*)-[A-Z0-9]+(?:-[A-Z0-9]+)*")
_SECTION_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# Case and passive-check ids: "HA-TNC-FORMAT", "MIP-REPLAY", "PASSIVE-SAME-HA-ADDRESS".
_CASE_RE = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+")


class CatalogueError(ValueError):
    """A catalogue file is malformed; the message names the file, entry id and key."""


@dataclass(frozen=True)
class Requirement:
    """One normative statement (one keyword of one RFC sentence) and how it is tested."""

    id: str
    rfc: int
    section: str
    keyword: str
    text: str
    role: str
    test: str
    cases: tuple[str, ...]
    reason: str = ""
    note: str = ""
    paraphrase: bool = False

    @property
    def level(self) -> str:
        """Requirement strength: "MUST", "SHOULD" or "MAY" (see :func:`level`)."""
        return _LEVELS[self.keyword]

    @property
    def party(self) -> Party:
        """Who breaks this requirement when it is not met (from :attr:`role`)."""
        return ROLE_PARTIES[self.role]


def level(req: Requirement) -> str:
    """Collapse the ten BCP 14 keywords to the three strengths verdicts are graded by."""
    return _LEVELS[req.keyword]


def _fail(source: str, entry_id: str, key: str, problem: str) -> CatalogueError:
    return CatalogueError(f"{source}: requirement {entry_id}: key {key!r}: {problem}")


def _check_str(source: str, entry_id: str, key: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(source, entry_id, key, f"expected a string, got {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise _fail(source, entry_id, key, "must not be empty")
    return value


def _build(source: str, index: int, raw: Any) -> Requirement:
    """Validate one ``[[requirement]]`` table and turn it into a :class:`Requirement`."""
    if not isinstance(raw, Mapping):
        raise CatalogueError(f"{source}: requirement #{index}: expected a table")
    raw_id = raw.get("id")
    entry_id = repr(raw_id) if isinstance(raw_id, str) and raw_id else f"#{index}"

    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise _fail(source, entry_id, unknown[0], "unknown key")
    for key in _REQUIRED_KEYS:
        if key not in raw:
            raise _fail(source, entry_id, key, "missing")

    req_id = _check_str(source, entry_id, "id", raw["id"])
    id_match = _ID_RE.fullmatch(req_id)
    if id_match is None:
        raise _fail(source, entry_id, "id", "expected RFC-SECTION-SHORTNAME, e.g. 5265-4.3-TRUSTED-SUBNETS")

    rfc = raw["rfc"]
    if isinstance(rfc, bool) or not isinstance(rfc, int) or rfc <= 0:
        raise _fail(source, entry_id, "rfc", f"expected a positive integer, got {rfc!r}")
    if id_match["rfc"] != str(rfc):
        raise _fail(source, entry_id, "rfc", f"{rfc} does not match the id prefix {id_match['rfc']}")

    section = _check_str(source, entry_id, "section", raw["section"])
    if not _SECTION_RE.fullmatch(section):
        raise _fail(source, entry_id, "section", f"expected dotted numbers like '4.3', got {section!r}")
    if id_match["section"] != section:
        raise _fail(
            source,
            entry_id,
            "section",
            f"{section!r} does not match the id ({id_match['section']!r})",
        )

    keyword = raw["keyword"]
    if keyword not in KEYWORDS:
        raise _fail(source, entry_id, "keyword", f"{keyword!r} is not one of {', '.join(KEYWORDS)}")

    text = " ".join(_check_str(source, entry_id, "text", raw["text"]).split())

    role = raw["role"]
    if role not in ROLES:
        raise _fail(source, entry_id, "role", f"{role!r} is not one of {', '.join(sorted(ROLES))}")

    test = raw["test"]
    if test not in TESTS:
        raise _fail(source, entry_id, "test", f"{test!r} is not one of {', '.join(sorted(TESTS))}")

    cases = raw["cases"]
    if not isinstance(cases, list):
        raise _fail(source, entry_id, "cases", "expected a list of case ids")
    for case in cases:
        if not isinstance(case, str) or not _CASE_RE.fullmatch(case):
            raise _fail(source, entry_id, "cases", f"{case!r} is not a case id like 'HA-TNC-FORMAT'")
    if len(set(cases)) != len(cases):
        raise _fail(source, entry_id, "cases", "lists a case more than once")

    reason = _check_str(source, entry_id, "reason", raw.get("reason", ""), empty_ok=True).strip()
    # A requirement nobody tests must say why, or coverage gaps go unexplained.
    if not reason and (test in ("untestable", "lab") or not cases):
        why = f"test is {test!r}" if test in ("untestable", "lab") else "cases is empty"
        raise _fail(source, entry_id, "reason", f"required (non-empty) because {why}")

    note = _check_str(source, entry_id, "note", raw.get("note", ""), empty_ok=True).strip()

    paraphrase = raw.get("paraphrase", False)
    if not isinstance(paraphrase, bool):
        raise _fail(source, entry_id, "paraphrase", "expected true or false")

    return Requirement(
        id=req_id,
        rfc=rfc,
        section=section,
        keyword=keyword,
        text=text,
        role=role,
        test=test,
        cases=tuple(cases),
        reason=reason,
        note=note,
        paraphrase=paraphrase,
    )


def parse_catalogue(text: str, source: str = "<string>") -> tuple[Requirement, ...]:
    """Parse and validate one catalogue document (TOML text).

    Kept separate from :func:`load_catalogue` so that tests and tools can validate a file
    that is not part of the installed package.  Raises :class:`CatalogueError`.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - {"requirement"})
    if unknown:
        raise CatalogueError(f"{source}: unknown top-level key {unknown[0]!r} (only [[requirement]] tables)")
    entries = doc.get("requirement", [])
    if not isinstance(entries, list):
        raise CatalogueError(f"{source}: 'requirement' must be an array of tables ([[requirement]])")
    reqs = tuple(_build(source, i, raw) for i, raw in enumerate(entries, start=1))
    _check_unique(reqs, source)
    return reqs


def load_file(path: str | os.PathLike[str]) -> tuple[Requirement, ...]:
    """Parse and validate a catalogue file outside the package (drafts, review tools)."""
    return parse_catalogue(Path(path).read_text(encoding="utf-8"), str(path))


def _check_unique(reqs: Iterable[Requirement], source: str) -> None:
    seen: set[str] = set()
    for req in reqs:
        if req.id in seen:
            raise _fail(source, repr(req.id), "id", "duplicate id")
        seen.add(req.id)


def data_folder(name: str) -> Traversable:
    """A folder of the packaged catalogue data: ``requirements`` (TOML) or ``rfc`` (vendored RFC text).

    Read through :mod:`importlib.resources` from ``mipcheck`` itself, so loading the
    catalogue never imports a higher floor (``mipcheck.suites``).
    """
    return resources.files("mipcheck").joinpath("catalogue_data").joinpath(name)


@cache
def load_catalogue() -> tuple[Requirement, ...]:
    """All requirements from the packaged data files, validated (cached: the files are static)."""
    folder = data_folder("requirements")
    reqs: list[Requirement] = []
    for name in DATA_FILES:
        reqs.extend(parse_catalogue(folder.joinpath(name).read_text(encoding="utf-8"), name))
    _check_unique(reqs, "+".join(DATA_FILES))
    return tuple(reqs)


def by_case(case_id: str) -> tuple[Requirement, ...]:
    """The requirements a case or passive check tests, in catalogue order (for its verdict)."""
    return tuple(req for req in load_catalogue() if case_id in req.cases)


def coverage(rfc: int | None = None) -> dict[str, dict[str, int]]:
    """Per keyword: how many requirements there are and how many some case tests.

    Every keyword is present (zeros included) so that reports have a fixed shape.  Pass
    ``rfc`` to count one RFC only (e.g. 5265 for the RFC 5265 coverage figure).
    """
    table = {kw: {"total": 0, "with_case": 0} for kw in KEYWORDS}
    for req in load_catalogue():
        if rfc is not None and req.rfc != rfc:
            continue
        row = table[req.keyword]
        row["total"] += 1
        if req.cases:
            row["with_case"] += 1
    return table
