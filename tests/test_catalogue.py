"""Tests for the requirement catalogue (mipcheck/catalogue_data/, mipcheck/catalogue.py).

The catalogue is only worth something if its quotes are real and complete, so these tests
read the vendored RFC 5265 text, find every sentence of sections 2 to 6 that carries an
upper-case BCP 14 keyword, and check that the catalogue quotes each one, once per keyword.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache

import pytest

from mipcheck import catalogue
from mipcheck.catalogue import (
    KEYWORDS,
    CatalogueError,
    Requirement,
    by_case,
    coverage,
    level,
    load_catalogue,
    load_file,
    parse_catalogue,
)

# Public ids of the home-agent suite's active cases and of `mipcheck analyze`'s passive
# checks.  Each must be tested by at least one requirement, and the catalogue may name no
# other id (a typo would silently leave a requirement untested).
HA_CASES = (
    "HA-UNTRUSTED-DROP",
    "HA-SOURCE-NOT-COA",
    "HA-TNC-INCLUDED",
    "HA-TNC-FORMAT",
    "HA-TNC-AUTHENTICATED",
    "HA-TNC-ON-DENIAL",
    "HA-TRUST-NONE-DEFAULT",
    "HA-UNTRUSTED-LOG",
    "HA-NATT-UDP-TUNNEL",
    "HA-ANY-SOURCE-PORT",
    "MIP-AUTH-MISSING",
    "MIP-AUTH-BAD",
    "MIP-ID-STALE",
    "MIP-REPLAY",
    "MIP-REPLY-ID",
    "MIP-REPLY-AUTH",
    "MIP-HA-FIELD",
    "MIP-SKIPPABLE-IGNORED",
    "MIP-NONSKIPPABLE",
    "MIP-DEREG",
    "MIP-LIFETIME",
    "MIP-REVERSE-TUNNEL",
)
# The mobile-node suite's active cases (mipcheck run --suite mn; suites/mn/cases.py).
MN_CASES = (
    "MN-PARALLEL-DETECT",
    "MN-TNC-MEANS-INSIDE",
    "MN-TNC-REQUIRED",
    "MN-TNC-UNAUTHENTICATED",
    "MN-IHA-RETRANSMIT",
    "MN-STOP-RETRANSMIT",
    "MN-TMONITOR-REREG",
    "MN-TMONITOR-GATE",
    "MN-QUEUE-HELD",
    "MN-REREG-FAIL-RESTART",
    "MN-STATUS-CHANGE-STOP",
    "MN-PER-INTERFACE",
    "MN-SAME-HA-OUTSIDE",
    "MN-NO-VPN-SKIP",
    "MN-LATE-IHA-SWITCH",
    "MN-XHA-DEREG",
)
# The site audit's cases (mipcheck run --suite site; suites/site/__init__.py).
SITE_CASES = (
    "SITE-FW-IHA-UNREACHABLE",
    "SITE-VPN-UDP434-ANY-PORT",
    "SITE-VPN-IPIP",
    "SITE-VPN-NATT",
    "SITE-DISTINCT-HA",
    "SITE-VPN-ENCRYPT-ALL",
    "SITE-XHA-INSIDE-DROP",
    "SITE-IHA-TRUST",
)
PASSIVE_CHECKS = (
    "PASSIVE-TNC-TO-UNTRUSTED",  # TNC in a reply to an untrusted source (4.3)
    "PASSIVE-IHA-UNTRUSTED-SOURCE",  # i-HA answers a source outside the trusted networks (4.3)
    "PASSIVE-SAME-HA-ADDRESS",  # x-HA and i-HA share an address (3.5)
    "PASSIVE-TNC-AFTER-AUTH",  # TNC placed after the MN-HA authenticator (4.3, RFC 5944 3.5)
    "PASSIVE-PLAINTEXT-AFTER-TMONITOR",  # MN plaintext > T_MONITOR after its last i-HA registration (3.2.4)
    "PASSIVE-PLAINTEXT-RRQ-EXTERNAL",  # plaintext registration to the i-HA from outside (3.1, 6.1)
)
PUBLIC_IDS = HA_CASES + MN_CASES + SITE_CASES + PASSIVE_CHECKS

# Upper-case keywords only: lower-case "must" is not normative (RFC 2119).  Longest first,
# so that "MUST NOT" is one keyword, not "MUST".
KEYWORD_RE = re.compile(r"\b(" + "|".join(sorted(KEYWORDS, key=len, reverse=True)) + r")\b")
# Section headings start in column 0 with a capitalised title ("4.3. Home Agent
# Requirements"); numbered list items in the body ("1. a composition ...") do not.
HEADING_RE = re.compile(r"^(\d+(?:\.\d+)*)\.\s+[A-Z]")
BULLET_RE = re.compile(r"^\s*[o*]\s+")
SENTENCE_END_RE = re.compile(r"(?<=\.)\s+(?=[A-Z(\[])")
NORMATIVE_SECTIONS = range(2, 7)  # sections 2 to 6; 1.5 only defines the keywords


def norm(text: str) -> str:
    """Collapse all whitespace (including the no-break spaces of the vendored text)."""
    return " ".join(text.split())


def rfc_path(number: int):
    return catalogue.data_folder("rfc").joinpath(f"rfc{number}.txt")


@cache
def rfc_text(number: int) -> str | None:
    path = rfc_path(number)
    return path.read_text(encoding="utf-8") if path.is_file() else None


@cache
def rfc_sections(number: int) -> dict[str, str]:
    """Body text of each numbered section (without its subsections), from the vendored RFC.

    Headings must appear in increasing order, which skips the table of contents (indented)
    and anything after the last numbered section (appendices) is cut off.
    """
    text = rfc_text(number)
    assert text is not None, f"RFC {number} is not vendored"
    sections: dict[str, list[str]] = {}
    current: str | None = None
    last: tuple[int, ...] = ()
    for line in text.splitlines():
        match = HEADING_RE.match(line)
        if match:
            number_tuple = tuple(int(n) for n in match.group(1).split("."))
            if number_tuple > last:
                current, last = match.group(1), number_tuple
                sections[current] = []
                continue
        if line.startswith("Appendix "):
            current = None
        if current is not None:
            sections[current].append(line)
    return {sec: "\n".join(lines) for sec, lines in sections.items()}


@cache
def normative_sentences() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(section, sentence, keywords) for every keyword-bearing sentence of RFC 5265 2-6.

    The vendored text has one paragraph or list item per line; list bullets ("o", "*")
    are stripped and each line is split into sentences at ". " before a capital.
    """
    found = []
    for section, body in rfc_sections(5265).items():
        if int(section.split(".")[0]) not in NORMATIVE_SECTIONS:
            continue
        for line in body.splitlines():
            for sentence in SENTENCE_END_RE.split(BULLET_RE.sub("", line.strip())):
                keywords = tuple(KEYWORD_RE.findall(sentence))
                if keywords:
                    found.append((section, norm(sentence), keywords))
    return tuple(found)


def rfc5265_entries() -> tuple[Requirement, ...]:
    return tuple(req for req in load_catalogue() if req.rfc == 5265)


def matches(req: Requirement, section: str, sentence: str) -> bool:
    """An entry quotes a sentence if one contains the other (quotes may span list items)."""
    text = norm(req.text)
    return req.section == section and (text in sentence or sentence in text)


# ------------------------------------------------------------------ the RFC parser itself


def test_rfc_parser_finds_the_sections_and_skips_the_keyword_definitions():
    sections = rfc_sections(5265)
    for expected in ("1.5", "2", "2.1", "3.2.4", "3.4", "4.3", "5.2", "6.1", "7"):
        assert expected in sections
    # "1. a composition of ..." inside section 2 is a list item, not a heading.
    assert "a composition of the mobile node networking stack" in sections["2"]
    assert "MUST" in sections["1.5"]
    assert all(section.split(".")[0] in "23456" for section, _, _ in normative_sentences())
    assert sum(len(kws) for _, _, kws in normative_sentences()) > 40


# ------------------------------------------------------------------ (a) quotes are exact


@pytest.mark.parametrize("req", load_catalogue(), ids=lambda r: r.id)
def test_text_carries_its_keyword(req: Requirement):
    assert req.keyword in KEYWORD_RE.findall(req.text), (
        f"{req.id}: keyword {req.keyword} does not occur (in upper case) in its text"
    )


def test_only_base_rfc_entries_are_paraphrases():
    """Paraphrases exist only where the RFC text is not vendored, so that none
    hides a quote that could be checked; each says so in the catalogue."""
    paraphrased = [req for req in load_catalogue() if req.paraphrase]
    assert paraphrased, "no paraphrases left: drop this test and the flag"
    assert all(rfc_text(req.rfc) is None for req in paraphrased), [r.id for r in paraphrased if rfc_text(r.rfc)]


@pytest.mark.parametrize("req", [r for r in load_catalogue() if not r.paraphrase], ids=lambda r: r.id)
def test_text_is_quoted_from_the_rfc(req: Requirement):
    full = rfc_text(req.rfc)
    if full is None:
        pytest.skip("RFC text not vendored under mipcheck/catalogue_data/rfc/")
    quote = norm(req.text)
    in_rfc = quote in norm(full)  # a bool, so that a failure does not print the whole RFC
    assert in_rfc, f"{req.id}: text not found in RFC {req.rfc}: {quote!r}"
    body = rfc_sections(req.rfc).get(req.section)
    assert body is not None, f"{req.id}: RFC {req.rfc} has no section {req.section}"
    in_section = quote in norm(body)
    assert in_section, f"{req.id}: text is in RFC {req.rfc} but not in section {req.section}"


def test_rfc5265_entries_are_quotes_not_paraphrases():
    assert [req.id for req in rfc5265_entries() if req.paraphrase] == []


# ------------------------------------------------------------------ (b) completeness


def test_every_normative_sentence_is_catalogued_once_per_keyword():
    entries = rfc5265_entries()
    missing = []
    for section, sentence, keywords in normative_sentences():
        quoted = Counter(req.keyword for req in entries if matches(req, section, sentence))
        short = Counter(keywords) - quoted
        if short:
            missing.append(f"  {section} {sorted(short.elements())}: {sentence}")
    total = len(normative_sentences())
    print(f"RFC 5265 sections 2-6: {total - len(missing)}/{total} normative sentences catalogued")
    assert not missing, "normative sentences without an entry per keyword:\n" + "\n".join(missing)


def test_keyword_counts_match_the_rfc():
    in_rfc = Counter(kw for _, _, kws in normative_sentences() for kw in kws)
    in_catalogue = Counter(req.keyword for req in rfc5265_entries())
    assert in_catalogue == in_rfc, (
        f"extra entries: {dict(in_catalogue - in_rfc)}, missing entries: {dict(in_rfc - in_catalogue)}"
    )


@pytest.mark.parametrize("req", rfc5265_entries(), ids=lambda r: r.id)
def test_entry_quotes_a_normative_sentence_with_its_keyword(req: Requirement):
    hits = [kws for sec, sentence, kws in normative_sentences() if matches(req, sec, sentence)]
    assert hits, f"{req.id}: quotes no normative sentence of section {req.section}"
    assert any(req.keyword in kws for kws in hits)


# ------------------------------------------------------------------ (c) ids, cases, validity


def test_ids_are_unique():
    ids = Counter(req.id for req in load_catalogue())
    assert [i for i, n in ids.items() if n > 1] == []


@pytest.mark.parametrize("case_id", PUBLIC_IDS)
def test_every_public_case_tests_a_requirement(case_id: str):
    assert by_case(case_id), f"{case_id} is listed in no requirement's cases"


def test_catalogue_names_only_known_cases():
    named = {case for req in load_catalogue() for case in req.cases}
    assert named - set(PUBLIC_IDS) == set(), "unknown case ids (typo, or add them to PUBLIC_IDS)"


def test_passive_checks_follow_the_naming_rule():
    assert all(case.startswith("PASSIVE-") for case in PASSIVE_CHECKS)
    for req in load_catalogue():
        if req.test == "passive" and req.cases:
            assert any(case.startswith("PASSIVE-") for case in req.cases), req.id


@pytest.mark.parametrize("req", load_catalogue(), ids=lambda r: r.id)
def test_entry_is_valid(req: Requirement):
    assert req.keyword in KEYWORDS
    assert req.role in catalogue.ROLES
    assert req.test in catalogue.TESTS
    assert isinstance(req.cases, tuple)
    if req.test in ("untestable", "lab") or not req.cases:
        assert req.reason, f"{req.id}: needs a reason"
    assert req.id.startswith(f"{req.rfc}-{req.section}-")


def test_tnc_on_denial_explains_its_debatable_scope():
    reqs = by_case("HA-TNC-ON-DENIAL")
    assert [req.id for req in reqs] == ["5265-4.3-TNC-IN-REPLY"]
    note = reqs[0].note
    assert "HA-TNC-ON-DENIAL" in note and "WARN" in note and "literally" in note


def test_data_files_are_package_resources():
    folder = catalogue.data_folder("requirements")
    for name in catalogue.DATA_FILES:
        assert folder.joinpath(name).is_file(), name


# ------------------------------------------------------------------ (d) malformed input


def to_toml(entries: list[dict]) -> str:
    """Minimal TOML writer for test entries (strings, ints, bools, lists of strings)."""
    out = []
    for entry in entries:
        out.append("[[requirement]]")
        for key, value in entry.items():
            if isinstance(value, bool):
                out.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int):
                out.append(f"{key} = {value}")
            else:  # JSON strings and lists of strings are valid TOML
                out.append(f"{key} = {json.dumps(value)}")
        out.append("")
    return "\n".join(out)


GOOD = {
    "id": "5265-4.3-BROKEN-ENTRY",
    "rfc": 5265,
    "section": "4.3",
    "keyword": "MUST",
    "text": "MUST be tested.",
    "role": "i-ha",
    "test": "active",
    "cases": ["HA-UNTRUSTED-DROP"],
}


def without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


BAD_ENTRIES = [
    # (label, entries, key the message must name)
    ("unknown key", [{**GOOD, "colour": "red"}], "colour"),
    ("bad keyword", [{**GOOD, "keyword": "must"}], "keyword"),
    ("bad keyword word", [{**GOOD, "keyword": "NEEDS"}], "keyword"),
    ("bad role", [{**GOOD, "role": "router"}], "role"),
    ("bad test", [{**GOOD, "test": "manual"}], "test"),
    ("duplicate id", [GOOD, dict(GOOD)], "id"),
    ("lab without reason", [{**GOOD, "test": "lab"}], "reason"),
    ("untestable with empty reason", [{**GOOD, "test": "untestable", "reason": " "}], "reason"),
    ("no cases, no reason", [{**GOOD, "cases": []}], "reason"),
    ("missing text", [without("text")], "text"),
    ("empty text", [{**GOOD, "text": "  "}], "text"),
    ("rfc not an int", [{**GOOD, "rfc": "5265"}], "rfc"),
    ("rfc differs from id", [{**GOOD, "rfc": 5944}], "rfc"),
    ("section differs from id", [{**GOOD, "section": "4.2"}], "section"),
    ("lower-case id", [{**GOOD, "id": "5265-4.3-broken"}], "id"),
    ("cases not a list", [{**GOOD, "cases": "HA-UNTRUSTED-DROP"}], "cases"),
    ("bad case id", [{**GOOD, "cases": ["ha untrusted"]}], "cases"),
    ("paraphrase not a bool", [{**GOOD, "paraphrase": "yes"}], "paraphrase"),
]


@pytest.mark.parametrize(("label", "entries", "key"), BAD_ENTRIES, ids=[b[0] for b in BAD_ENTRIES])
def test_loader_rejects_malformed_entry(tmp_path, label, entries, key):
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(entries), encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_file(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert f"'{key}'" in message, message
    assert entries[0].get("id", "#1") in message, message
    assert str(path) in message, message


def test_loader_accepts_the_good_entry_and_normalises_whitespace():
    (req,) = parse_catalogue(to_toml([{**GOOD, "text": "MUST\n   be  tested."}]))
    assert req.text == "MUST be tested."
    assert req.cases == ("HA-UNTRUSTED-DROP",)
    assert (req.reason, req.note, req.paraphrase) == ("", "", False)


@pytest.mark.parametrize(
    "document",
    ["[[requirement]\n", "title = 'x'\n", "requirement = 3\n", "requirement = [1]\n"],
    ids=["bad toml", "unknown top-level key", "not an array", "not a table"],
)
def test_loader_rejects_malformed_documents(document: str):
    with pytest.raises(CatalogueError, match="doc.toml"):
        parse_catalogue(document, "doc.toml")


# ------------------------------------------------------------------ (e) coverage, levels


def test_coverage_is_consistent_with_the_catalogue():
    reqs = load_catalogue()
    table = coverage()
    assert list(table) == list(KEYWORDS)
    assert sum(row["total"] for row in table.values()) == len(reqs)
    assert sum(row["with_case"] for row in table.values()) == sum(1 for r in reqs if r.cases)
    for keyword, row in table.items():
        assert 0 <= row["with_case"] <= row["total"]
        assert row["total"] == sum(1 for r in reqs if r.keyword == keyword)


def test_rfc5265_coverage_counts_every_keyword_of_the_rfc():
    in_rfc = Counter(kw for _, _, kws in normative_sentences() for kw in kws)
    table = coverage(5265)
    assert {kw: row["total"] for kw, row in table.items() if row["total"]} == dict(in_rfc)
    base = coverage(5944)
    assert all(table[kw]["total"] + base[kw]["total"] <= coverage()[kw]["total"] for kw in KEYWORDS)


@pytest.mark.parametrize("case_id", PUBLIC_IDS)
def test_by_case_returns_exactly_the_entries_that_list_it(case_id: str):
    expected = tuple(req for req in load_catalogue() if case_id in req.cases)
    assert by_case(case_id) == expected
    assert by_case("NO-SUCH-CASE") == ()


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("MUST", "MUST"),
        ("MUST NOT", "MUST"),
        ("REQUIRED", "MUST"),
        ("SHALL", "MUST"),
        ("SHALL NOT", "MUST"),
        ("SHOULD", "SHOULD"),
        ("SHOULD NOT", "SHOULD"),
        ("RECOMMENDED", "SHOULD"),
        ("MAY", "MAY"),
        ("OPTIONAL", "MAY"),
    ],
)
def test_level(keyword: str, expected: str):
    req = Requirement(
        id="5265-4.3-X",
        rfc=5265,
        section="4.3",
        keyword=keyword,
        text=keyword,
        role="ha",
        test="active",
        cases=(),
    )
    assert level(req) == expected == req.level


def test_load_catalogue_is_cached_and_immutable():
    first = load_catalogue()
    assert load_catalogue() is first
    with pytest.raises(AttributeError):
        first[0].text = "changed"  # type: ignore[misc]
