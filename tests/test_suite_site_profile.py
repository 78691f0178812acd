"""The site audit without a lab: its profile, its case table against the catalogue and the lab's breaks, IKE octets.

No root needed. The suite against real namespaces (the unbroken lab and one
broken lab per case) is tests/test_suite_site.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
from pathlib import Path

import pytest
from rich.console import Console

from mipcheck.catalogue import by_case
from mipcheck.errors import ConfigError
from mipcheck.lab.breaks import BREAKS, TABLE
from mipcheck.proto import codec
from mipcheck.suites.site import BREAKS as CASE_BREAKS
from mipcheck.suites.site import CASES, CASES_BY_ID, ike
from mipcheck.suites.site.cli import list_site_cases, run_site
from mipcheck.suites.site.probes import request_bytes
from mipcheck.suites.site.profile import SSH_NOT_SUPPORTED, load_site_profile, parse_site_profile

SECRET = "0123456789abcdef0123456789abcdef"

PROFILE = f"""
[site]
name = "example"
internal_home_agents = ["10.1.0.1"]
external_home_agents = ["192.0.2.1"]
vpn_gateways = ["192.0.2.2"]
internal_networks = ["10.0.0.0/8"]

[timing]
reply_timeout = 0.2
silence = 0.1

[[mobile_node]]
home_agent = "internal"
home_address = "10.1.0.100"
spi = 4096
secret_hex = "{SECRET}"
nai = "mn@example.com"
"""


def _profile(tmp_path: Path, extra: str = "", base: str = PROFILE) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(base + extra)
    return path


def _error(tmp_path: Path, extra: str = "", base: str = PROFILE) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_site_profile(_profile(tmp_path, extra, base))
    return err.value


# ------------------------------------------------------------------ the profile


def test_a_profile_loads_and_reports_show_no_secret(tmp_path):
    extra = '\n[[vantage]]\nname = "here"\nrole = "outside"\nlocal = true\n'
    profile = load_site_profile(_profile(tmp_path, extra))
    assert profile.name == "example" and profile.internal_home_agents == ("10.1.0.1",)
    assert profile.reply_timeout == 0.2 and profile.silence == 0.1
    (v,) = profile.vantages
    assert (v.name, v.role, v.namespace) == ("here", "outside", None)
    assert profile.identity("internal").sa.key == bytes.fromhex(SECRET) and profile.identity("external") is None
    public = json.dumps(profile.public())
    assert SECRET not in public and '"secret": "<inline hex>"' in public
    assert profile.in_enterprise("10.200.0.1") and not profile.in_enterprise("192.0.2.1")


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ('\n[[vantage]]\nname = "v"\nrole = "outside"\nssh = "audit@host"\n', "vantage[1].ssh", "not supported yet"),
        ('\n[[vantage]]\nname = "v"\nrole = "roof"\nlocal = true\n', "vantage[1].role", "is not one of"),
        ('\n[[vantage]]\nname = "v"\nrole = "inside"\n', "vantage[1].namespace", "exactly one of"),
        (
            '\n[[vantage]]\nname = "v"\nrole = "inside"\nlocal = true\nnamespace = "x"\n',
            "vantage[1].namespace",
            "exactly one of",
        ),
        ('\n[[vantage]]\nname = "v"\nrole = "inside"\nnamespace = "../x"\n', "vantage[1].namespace", "is not"),
        ('\n[[vantage]]\nname = "v"\nrole = "inside"\nlocal = false\n', "vantage[1].local", "expected true"),
        (
            '\n[[vantage]]\nname = "v"\nrole = "inside"\nlocal = true\n[[vantage]]\nname = "v"\nrole = "vpn"\n'
            "local = true\n",
            "vantage[2].name",
            "names two",
        ),
        ('\n[[vantage]]\nname = "v"\nrole = "vpn"\nlocal = true\ncolour = 1\n', "vantage[1].colour", "unknown"),
        ("\n[extra]\n", "extra", "unknown key"),
        (
            '\n[[mobile_node]]\nhome_agent = "both"\nhome_address = "10.1.0.1"\nspi = 300\nsecret = "x"\n',
            "mobile_node[2].home_agent",
            "internal",
        ),  # fmt: skip
        (
            '\n[[mobile_node]]\nhome_agent = "external"\nhome_address = "10.1.0.1"\nsecret = "x"\n',
            "mobile_node[2].spi",
            "missing",
        ),  # fmt: skip
    ],
)
def test_profile_problems_name_the_key(tmp_path, extra, key, problem):
    err = _error(tmp_path, extra)
    assert err.key == key and problem in err.problem, str(err)
    assert str(tmp_path / "site.toml") in str(err)


def test_ssh_vantage_points_are_refused_with_one_clear_line(tmp_path):
    err = _error(tmp_path, '\n[[vantage]]\nname = "v"\nrole = "vpn"\nssh = "me@laptop"\n')
    assert err.problem == SSH_NOT_SUPPORTED and "\n" not in str(err)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('internal_home_agents = ["10.1.0.1"]', "internal_home_agents = []", "site.internal_home_agents"),
        ('internal_home_agents = ["10.1.0.1"]', 'internal_home_agents = ["ha.example"]', "site.internal_home_agents"),
        ('internal_networks = ["10.0.0.0/8"]', 'internal_networks = ["ten"]', "site.internal_networks"),
        ("reply_timeout = 0.2", "reply_timeout = 0", "timing.reply_timeout"),
        ("silence = 0.1", "silence = 600", "timing.silence"),
        ('[site]\nname = "example"', '[site]\nname = "example"\nrouter = 1', "site.router"),
    ],
)
def test_site_table_problems(tmp_path, old, new, key):
    assert old in PROFILE
    assert _error(tmp_path, base=PROFILE.replace(old, new)).key == key


def test_the_lab_profile_is_what_the_docs_show():
    # the module docstring's example is a valid profile (minus the secret file it names)
    from mipcheck.suites.site import profile as module

    doc = module.__doc__ or ""
    block = doc.split("Format (")[1].split("::\n", 1)[1].split("\n\nEvery problem")[0]
    text = "\n".join(line[4:] for line in block.splitlines())
    text = text.replace('secret_file = "secrets/mn1-inner.key"', f'secret_hex = "{SECRET}"')
    profile = parse_site_profile(__import__("tomllib").loads(text), "doc")
    assert profile.vantages[0].namespace == "mipcheck-lab-audit-out"


# ------------------------------------------------------------------ cases, catalogue, breaks


def test_every_case_tests_catalogued_requirements_at_its_level():
    for case in CASES:
        reqs = by_case(case.id)
        assert reqs, f"{case.id} is in no catalogue entry"
        assert case.level in {r.level for r in reqs}, (case.id, case.level, [r.level for r in reqs])
        assert all(r.rfc == 5265 for r in reqs)


def test_every_case_has_a_break_and_every_break_names_a_case():
    assert set(CASE_BREAKS) == set(CASES_BY_ID), "a case without a lab break cannot be shown to fail"
    for b in TABLE:
        if b.suite != "site":  # built for an HA-suite case: tests/test_lab_ha_audit.py holds those
            assert b.case.startswith("HA-") and not any(b.name in c.breaks for c in CASES)
            continue
        case = CASES_BY_ID[b.case]
        assert b.name in case.breaks
        assert b.conformant == (case.level == "MAY"), b.name  # a MAY case cannot fail: its variant is conformant
        for effect in b.also:
            assert effect.case in CASES_BY_ID and effect.case != b.case and effect.why
            assert effect.verdict in ("fail", "warn", "inconclusive")
    assert len(BREAKS) == len(TABLE)


def test_the_case_list(capsys):
    out = io.StringIO()
    list_site_cases(out=out)
    text = out.getvalue()
    assert all(c.id in text and ", ".join(c.breaks) in text for c in CASES)
    out = io.StringIO()
    list_site_cases(as_json=True, out=out)
    rows = json.loads(out.getvalue())
    assert [r["id"] for r in rows] == [c.id for c in CASES] and rows[0]["roles"]


# ------------------------------------------------------------------ a run with nothing to probe from


def _run(tmp_path, profile: Path, **kw) -> tuple[int, dict]:
    out = io.StringIO()
    rc = run_site(
        profile,
        out_dir=tmp_path / "out",
        quiet=True,
        stdout=Console(file=out, width=200),
        **kw,
    )
    return rc, json.loads((tmp_path / "out" / "report.json").read_text())


def test_without_vantage_points_only_the_profile_is_judged(tmp_path):
    rc, report = _run(tmp_path, _profile(tmp_path))
    verdicts = {c["id"]: c["verdict"] for c in report["cases"]}
    assert verdicts.pop("SITE-DISTINCT-HA") == "pass"
    assert set(verdicts.values()) == {"inconclusive"}, verdicts
    assert rc == 0 and report["suite"] == "site" and report["target"]["role"] == "site"
    for name in ("junit.xml", "report.html"):
        assert (tmp_path / "out" / name).is_file()
    fw = next(c for c in report["cases"] if c["id"] == "SITE-FW-IHA-UNREACHABLE")
    assert "no vantage point with role 'outside'" in fw["reason"]
    assert fw["requirements"] and fw["faults"] == ["fw-open-434", "fw-open-ipip"]  # the lab breaks


def test_one_address_for_both_home_agents_fails_from_the_profile_alone(tmp_path):
    same = PROFILE.replace('external_home_agents = ["192.0.2.1"]', 'external_home_agents = ["10.1.0.1"]')
    rc, report = _run(tmp_path, _profile(tmp_path, base=same), case_patterns=["SITE-DISTINCT-HA"])
    (case,) = report["cases"]
    assert rc == 1 and case["verdict"] == "fail" and "10.1.0.1 is both" in case["reason"]
    assert case["violation"]["rule_id"] == "5265-3.5-HA-ADDRESSES-DIFFER" and case["violation"]["party"] == "home-agent"


def test_a_vantage_namespace_that_is_not_there_is_the_testers_error(tmp_path):
    extra = '\n[[vantage]]\nname = "gone"\nrole = "outside"\nnamespace = "mipcheck-no-such-lab-x"\n'
    rc, report = _run(tmp_path, _profile(tmp_path, extra), case_patterns=["SITE-VPN-NATT"])
    (case,) = report["cases"]
    assert rc == 2 and case["verdict"] == "error" and "vantage point gone" in case["reason"]


def test_selection_problems_are_usage_errors(tmp_path):
    with pytest.raises(ConfigError, match="matches no case"):
        run_site(_profile(tmp_path), out_dir=tmp_path / "o", case_patterns=["SITE-NOPE"], quiet=True)


# ------------------------------------------------------------------ octets


def test_the_registration_request_is_valid_and_authenticated(tmp_path):
    identity = load_site_profile(_profile(tmp_path)).identity("internal")
    data = request_bytes(identity, "10.1.0.1", "10.8.0.1", 0x1234, 60)
    req = codec.parse_request(data)
    assert (req.home_address, req.home_agent, req.care_of_address, req.lifetime) == (
        "10.1.0.100",
        "10.1.0.1",
        "10.8.0.1",
        60,
    )
    auth = [e for e in req.extensions if e.type == 32]
    assert len(auth) == 1 and codec.check_authenticator(data, auth[0], "hmac-md5", bytes.fromhex(SECRET))


def test_ike_sa_init_carries_nat_detection_hashes():
    req = ike.sa_init_request(("198.51.100.20", 40000), ("192.0.2.2", 500))
    data = req.data
    assert data[:8] == req.spi_i and data[8:16] == bytes(8)
    first, version, exchange, flags, mid, length = struct.unpack("!BBBBII", data[16:28])
    assert (first, version, exchange, flags, mid, length) == (ike.PL_SA, 0x20, 34, 0x08, 0, len(data))
    src = hashlib.sha1(req.spi_i + bytes(8) + socket.inet_aton("198.51.100.20") + struct.pack("!H", 40000)).digest()
    dst = hashlib.sha1(req.spi_i + bytes(8) + socket.inet_aton("192.0.2.2") + struct.pack("!H", 500)).digest()
    assert src in data and dst in data


@pytest.mark.parametrize(("group", "size"), [(31, 32), (19, 64), (20, 96), (14, 256)])
def test_key_exchange_values_have_the_groups_sizes(group, size):
    assert len(ike.public_value(group)) == size


def _response(req: ike.InitRequest, payloads: list[tuple[int, bytes]], flags: int = 0x20) -> bytes:
    body = b""
    for i, (_kind, payload) in enumerate(payloads):
        following = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        body += struct.pack("!BBH", following, 0, 4 + len(payload)) + payload
    first = payloads[0][0] if payloads else 0
    return req.spi_i + b"R" * 8 + struct.pack("!BBBBII", first, 0x20, 34, flags, 0, 28 + len(body)) + body


def _notify(kind: int, data: bytes = b"") -> tuple[int, bytes]:
    return (ike.PL_NOTIFY, struct.pack("!BBH", 0, 0, kind) + data)


def test_reading_ike_answers():
    req = ike.sa_init_request(("10.0.0.1", 500), ("10.0.0.2", 500))
    natd = [_notify(ike.NAT_DETECTION_SOURCE_IP, b"s" * 20), _notify(ike.NAT_DETECTION_DESTINATION_IP, b"d" * 20)]
    full = ike.parse_response(_response(req, [(ike.PL_SA, b"x" * 8), (ike.PL_KE, b"k" * 36), *natd]), req)
    assert full.problem is None and full.accepted and full.nat_detection
    assert "N(NAT_DETECTION_SOURCE_IP)" in full.describe()
    bare = ike.parse_response(_response(req, [(ike.PL_SA, b"x" * 8), (ike.PL_KE, b"k" * 36)]), req)
    assert bare.accepted and not bare.nat_detection
    wants = ike.parse_response(_response(req, [_notify(ike.INVALID_KE_PAYLOAD, struct.pack("!H", 19))]), req)
    assert wants.wanted_group == 19 and not wants.accepted
    other = ike.sa_init_request(("10.0.0.1", 500), ("10.0.0.2", 500))
    assert ike.parse_response(_response(other, natd), req).problem == "an IKE message for another initiator SPI"
    assert ike.parse_response(_response(req, natd), req).problem is None
    assert ike.parse_response(_response(req, natd, flags=0x08), req).problem.startswith("IKE version 2.0")
    assert "too short" in ike.parse_response(b"\0" * 10, req).problem
