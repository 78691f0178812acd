"""The robustness faults (``mipcheck ha faults``, last group) are found by a campaign, minimised and replayed.

For each fault a campaign against the built-in i-HA started with it (``mipcheck fuzz run --fault NAME``) must
report a finding of the fault's kind within ``BOUND`` cases of seed ``SEED``, name a case whose octets carry the
trigger (as sent and minimised), and ``mipcheck fuzz replay`` against a fresh faulty home agent must reproduce
the same kind. The conformant built-in i-HA gives no finding over the same seed and more cases. The triggers are
read from the octets here, not through the home agent's code.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from mipcheck.cli import main
from mipcheck.fuzz.context import context_from_profile
from mipcheck.fuzz.lab import config, profile_for
from mipcheck.fuzz.strategies import generate, rrq_fixed
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.faults import ROBUSTNESS

SEED = 254  # every robustness fault goes off within its first 30 cases (each exactly once)
BOUND = 30  # --max-cases: a campaign finds each fault within this many cases
HEALTH_EVERY = 10
KNOWN = {32, 33, 34, 36, 38, 44, 131, 132, 134, 137, 144, 145, 149}  # extension types the home agent models
LONG = {36, 38}  # RFC 3012 5, RFC 3115: 16-bit Length


def _extensions(msg: bytes, *, overrun: bool = False) -> list[tuple[int, int]]:
    """(type, Length) of each extension of a Registration Request, and with ``overrun`` the one that runs past
    the end (its header whole)."""
    out, off = [], 24
    while off < len(msg):
        t = msg[off]
        hdr = 4 if t in LONG else 2
        if off + hdr > len(msg):
            break
        length = struct.unpack_from("!H", msg, off + 2)[0] if hdr == 4 else msg[off + 1]
        if off + hdr + length > len(msg):
            if overrun:
                out.append((t, length))
            break
        out.append((t, length))
        off += hdr + length
    return out


def _bad_ipv4(inner: bytes) -> bool:
    if len(inner) < 20 or inner[0] >> 4 != 4:
        return True
    ihl, total = (inner[0] & 0x0F) * 4, struct.unpack_from("!H", inner, 2)[0]
    return ihl < 20 or total < ihl or total > len(inner)


def _rrq(msg: bytes) -> bool:
    return len(msg) >= 24 and msg[0] == 1


TRIGGERS = {
    "crash-unknown-nonskippable-first": lambda m: _rrq(m) and len(m) > 24 and m[24] < 128 and m[24] not in KNOWN,
    "crash-long-length-overrun": lambda m: (
        _rrq(m)
        and len(_extensions(m, overrun=True)) > len(_extensions(m))
        and _extensions(m, overrun=True)[-1][0] in LONG
    ),
    "hang-tnc-length-zero": lambda m: _rrq(m) and (149, 0) in _extensions(m),
    "hang-two-mn-ha-auth": lambda m: _rrq(m) and [t for t, _ in _extensions(m)].count(32) >= 2,
    "wrong-reply-after-bad-tunnel-data": lambda m: bool(m) and m[0] == 4 and (len(m) < 4 or _bad_ipv4(m[4:])),
    "silent-after-revocation": lambda m: bool(m) and m[0] == 7,
}


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_robustness_fault_has_a_trigger_here() -> None:
    assert set(TRIGGERS) == set(ROBUSTNESS)


# ------------------------------------------------------------------ reachable by the strategies (no sockets)


def _first_failing_index(faults: tuple[str, ...], seed: int, limit: int) -> int | None:
    """The sans-IO home agent with ``faults``, each case then a valid registration of the health node: the index of
    the first case after which that registration is not accepted, or that makes the home agent crash or hang."""
    ctx = context_from_profile(profile_for("127.0.0.1", 40434))
    ha = HomeAgent(config(40434), faults)
    src, local, now = ("127.0.0.1", 40000), ("127.0.0.1", 40434), 1.9e9
    for index in range(limit):
        for data in generate(seed, index, ctx).steps():
            if ha.handle(data, src, local, now).failure is not None:
                return index
        check = ctx.health.signer.sign(rrq_fixed(ctx, ctx.health, (int(now) << 32) + index))
        if ha.handle(check, src, local, now).code != 0:
            return index
    return None


@pytest.mark.parametrize("fault", sorted(ROBUSTNESS))
def test_the_strategies_reach_each_trigger_on_every_seed(fault: str) -> None:
    """Not a lucky seed: on seeds 1-20 each fault goes off within 300 cases, and the case that sets it off carries
    the trigger."""
    ctx = context_from_profile(profile_for("127.0.0.1", 40434))
    for seed in range(1, 21):
        index = _first_failing_index((fault,), seed, 300)
        assert index is not None, (fault, seed)
        assert TRIGGERS[fault](generate(seed, index, ctx).payload), (fault, seed, index)
    assert _first_failing_index((fault,), SEED, BOUND) is not None


@pytest.mark.parametrize("seed", [1, 2, SEED])
def test_the_conformant_core_survives_the_same_cases(seed: int) -> None:
    assert _first_failing_index((), seed, 300) is None


# ------------------------------------------------------------------ a campaign finds, minimises and replays each


@pytest.mark.parametrize("fault", list(ROBUSTNESS))
def test_campaign_finds_minimises_and_replays_the_fault(tmp_path: Path, capsys, fault: str) -> None:
    kind = ROBUSTNESS[fault].finding
    out = tmp_path / "campaign"
    args = ["fuzz", "run", "-q", "--fault", fault, "--seed", str(SEED), "--max-cases", str(BOUND)]
    rc, _, err = _cli([*args, "--health-every", str(HEALTH_EVERY), "--out", str(out)], capsys)
    assert rc == 1, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] <= BOUND and summary["findings"] >= 1
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert {f["kind"] for f in findings} == {kind}, findings
    found = min(findings, key=lambda f: f["index"])
    assert found["seed"] == SEED and found["index"] < BOUND
    case, small = bytes.fromhex(found["case_hex"]), bytes.fromhex(found["minimised_hex"])
    assert TRIGGERS[fault](case), found  # the culprit carries the trigger ...
    assert TRIGGERS[fault](small) and len(small) <= len(case), found  # ... and so does its minimised form
    assert (out / found["pcap"]).stat().st_size > 24
    rc, text, err = _cli(
        ["fuzz", "replay", "--seed", str(SEED), "--index", str(found["index"]), "--fault", fault], capsys
    )
    assert rc == 1 and f"reproduced: {kind}" in text, text + err


def test_the_conformant_home_agent_gives_no_finding_over_the_same_seed(tmp_path: Path, capsys) -> None:
    args = ["fuzz", "run", "-q", "--seed", str(SEED), "--max-cases", str(100 * BOUND)]
    rc, _, err = _cli([*args, "--health-every", str(HEALTH_EVERY), "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["findings"] == 0 and summary["cases"] == 100 * BOUND
    assert summary["health_checks"] >= 100  # a check every HEALTH_EVERY cases at most, one in flight at a time


def test_fault_is_for_the_built_in_home_agent_only(capsys) -> None:
    target = ["--target", "127.0.0.1:4434", "--target-cmd", f"{sys.executable} -c pass"]
    rc, _, err = _cli(["fuzz", "run", "--fault", "hang-two-mn-ha-auth", *target], capsys)
    assert rc == 2 and "--fault" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(["fuzz", "run", "--fault", "no-such-fault"], capsys)
    assert rc == 2 and "unknown fault 'no-such-fault'" in err and "crash-long-length-overrun" in err
