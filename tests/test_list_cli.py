"""``mipcheck list``: the catalogue as a table or JSON, with coverage per keyword."""

from __future__ import annotations

import json

from mipcheck.catalogue import coverage, load_catalogue
from mipcheck.cli import main


def _list(args: list[str], capsys) -> tuple[int, str]:
    rc = main(["list", *args])
    out, _err = capsys.readouterr()
    return rc or 0, out


def test_json_lists_every_requirement_with_coverage(capsys) -> None:
    rc, out = _list(["--json"], capsys)
    doc = json.loads(out)
    assert rc == 0
    reqs = load_catalogue()
    assert [r["id"] for r in doc["requirements"]] == [r.id for r in reqs]
    first = doc["requirements"][0]
    assert {"id", "rfc", "section", "keyword", "role", "test", "cases", "text"} <= set(first)
    cov = {row["keyword"]: row for row in doc["coverage"]}
    for keyword, c in coverage().items():
        if c["total"]:
            assert (cov[keyword]["total"], cov[keyword]["with_case"]) == (c["total"], c["with_case"])
        else:
            assert keyword not in cov
    must = cov["MUST"]
    assert must["with_case"] == sum(1 for r in reqs if r.keyword == "MUST" and r.cases)


def test_table_shows_ids_sections_and_coverage(capsys) -> None:
    rc, out = _list([], capsys)
    assert rc == 0
    assert "5265-4.3-DROP-UNTRUSTED" in out and "RFC 5265 4.3" in out
    assert "HA-UNTRUSTED-DROP" in out
    assert "coverage" in out and "MUST" in out


def test_filter_by_rfc(capsys) -> None:
    _rc, out = _list(["--json", "--rfc", "3024"], capsys)
    doc = json.loads(out)
    assert doc["requirements"] and all(r["rfc"] == 3024 for r in doc["requirements"])
