"""Fuzz campaigns against mobile nodes (issue 11, item 2): mipcheck plays the i-HA and x-HA of the device under test.

Cases are a pure function of (seed, index) and the MN profile; the robustness faults of the reference mobile node
(``mipcheck mn faults``, last group) are reachable by the strategies on every seed (sans-IO, no sockets), and a
campaign against the built-in reference MN (``mipcheck fuzz run --device mn --fault NAME``) finds each within
``BOUND`` cases of seed ``SEED``, minimises it and ``mipcheck fuzz replay`` reproduces it; the conformant node gives
no finding over the same seed. The triggers are read from the octets here, not through the node's code. Every
child process a test starts is gone when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from mipcheck.cli import main
from mipcheck.fuzz.mn.cases import DATA, HIGH_AHEAD, LOW_OFF, MnCase, reply_identification, sent_octets, valid_reply
from mipcheck.fuzz.mn.context import IHA, MnContext, mn_context
from mipcheck.fuzz.mn.strategies import STRATEGIES, generate
from mipcheck.fuzz.mn.target import BUILTIN_INTERFACES, BUILTIN_SEED
from mipcheck.fuzz.mn.wire import Datagram, Exchange, classify
from mipcheck.mn.acceptance import judge_reply
from mipcheck.mn.builtin import builtin_profile_text
from mipcheck.mn.detection_table import Mode
from mipcheck.mn.node import ReferenceMobileNode
from mipcheck.mn.profile import parse_mobile_node_profile
from mipcheck.mn.robustness import FAULTS, RobustnessFailure, robustness_for
from mipcheck.proto import codec

SEED = 35  # each robustness fault goes off within its first 20 cases (indexes 3, 16 and 17)
BOUND = 20  # --max-cases: a campaign finds each fault within this many cases
HEALTH_EVERY = 10
WINDOW = "0.005"  # seconds each reaction is listened to (the reference MN answers in about a millisecond)
NOW = 1.9e9


def _ctx(seed: int = BUILTIN_SEED) -> MnContext:
    text = builtin_profile_text("mn.sock", interfaces=BUILTIN_INTERFACES, seed=seed)
    return mn_context(parse_mobile_node_profile(tomllib.loads(text)))


CTX = _ctx()


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _children() -> list[int]:
    """Processes whose parent is this one (the campaign's reference mobile nodes, if any were left)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_child_left():
    before = set(_children())
    yield
    left = [pid for pid in _children() if pid not in before]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"child processes left running: {left}"


# ------------------------------------------------------------------ the octets: triggers, read here


def _extensions(msg: bytes, start: int = 20) -> list[tuple[int, int]]:
    """(type, Length) of each whole extension of a Registration Reply (types 36 and 38: 16-bit Length)."""
    out, off = [], start
    while off < len(msg):
        t = msg[off]
        hdr = 4 if t in (36, 38) else 2
        if off + hdr > len(msg):
            break
        length = struct.unpack_from("!H", msg, off + 2)[0] if hdr == 4 else msg[off + 1]
        if off + hdr + length > len(msg):
            break
        out.append((t, length))
        off += hdr + length
    return out


def _before_auth(msg: bytes) -> list[tuple[int, int]]:
    exts = _extensions(msg) if len(msg) >= 20 and msg[0] == 3 else []
    types = [t for t, _ in exts]
    return exts[: types.index(32)] if 32 in types else []


TRIGGERS = {
    "crash-tnc-length-zero": lambda m: (149, 0) in _before_auth(m),
    "crash-short-udp-tunnel-reply": lambda m: any(t == 44 and length < 6 for t, length in _before_auth(m)),
    "hang-tunnel-next-header-zero": lambda m: len(m) >= 2 and m[0] == 4 and m[1] == 0,
}
KINDS = {
    "crash-tnc-length-zero": "crash",
    "crash-short-udp-tunnel-reply": "crash",
    "hang-tunnel-next-header-zero": "hang",
}


def test_every_robustness_fault_has_a_trigger_here() -> None:
    assert set(TRIGGERS) == set(FAULTS) == set(KINDS)
    assert {f.finding for f in FAULTS.values()} == set(KINDS.values())


# ------------------------------------------------------------------ (seed, index) name a case


def test_same_seed_and_index_give_the_same_octets_in_another_process_and_profile_ports() -> None:
    here = [generate(11, i, CTX).payload.hex() for i in range(300)]
    code = textwrap.dedent(f"""
        import json, tomllib
        from mipcheck.fuzz.mn.context import mn_context
        from mipcheck.fuzz.mn.strategies import generate
        from mipcheck.mn.builtin import builtin_profile_text
        from mipcheck.mn.profile import parse_mobile_node_profile
        text = builtin_profile_text("other.sock", interfaces=("eth0",), seed={BUILTIN_SEED})  # other free ports
        ctx = mn_context(parse_mobile_node_profile(tomllib.loads(text)))
        print(json.dumps([generate(11, i, ctx).payload.hex() for i in range(300)]))
    """)
    env = {**os.environ, "PYTHONHASHSEED": "4242"}  # a different str hash salt must not matter
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert json.loads(done.stdout) == here
    assert len(set(here)) > 250  # and the cases differ from each other
    cases = [generate(11, i, CTX) for i in range(600)]
    assert {c.strategy.split("/")[0] for c in cases} == set(STRATEGIES)
    assert {c.party for c in cases} == {"iha", "xha"} and {c.stage for c in cases} == {"reply", "data"}
    signed = sum(c.signed for c in cases if c.stage != DATA) / sum(c.stage != DATA for c in cases)
    assert 0.35 < signed < 0.75  # signed and unsigned replies mixed
    assert _ctx(seed=BUILTIN_SEED + 1).iha.address != CTX.iha.address  # addresses shape the octets: fixed seed


def test_a_reply_carries_the_requests_identification_and_a_signed_one_is_signed_over_it() -> None:
    ident = 0xED00_3780_1234_5678
    for index in range(400):
        case = generate(7, index, CTX)
        if case.stage == DATA or case.draft.ops or case.ident != "copy":
            continue
        sent = sent_octets(case, ident)
        assert sent[12:20] == ident.to_bytes(8, "big") and case.payload[12:20] != sent[12:20]
        party = CTX.party(case.party)
        sa = party.peer.sa
        verdict = judge_reply(
            sent,
            home_address=party.home_address,
            identifications=(ident & 0xFFFFFFFF,),
            spi=sa.spi,
            algorithm=sa.algorithm,
            key=sa.secret.reveal(),
        )
        assert (verdict.problem is None) == case.signed, (index, verdict.problem)
    assert reply_identification(LOW_OFF, ident) & 0xFFFFFFFF != ident & 0xFFFFFFFF
    assert reply_identification(HIGH_AHEAD, ident) >> 32 == (ident >> 32) + 3600


def test_reactions_are_named_from_what_the_device_sent() -> None:
    case = MnCase(1, 1, "x", generate(1, 1, CTX).draft, party=IHA)
    req = Datagram("iha", ("127.0.0.9", 1), b"\x01" + b"\0" * 23, 0.0)
    dereg = codec.build_request(0x20, 0, CTX.xha.home_address, CTX.xha.address, "127.0.0.9", 5)
    rrq = codec.build_request(0x20, 1800, CTX.home_address, CTX.iha.address, "127.0.0.9", 6)
    td = codec.tunnel_data(b"\x45" + b"\0" * 19)

    def named(*replies: tuple[str, bytes], refused: bool = False, detection=("iha", "xha")) -> str:
        got = [Datagram(p, ("127.0.0.9", 1), d, 0.0) for p, d in replies]
        return classify(
            Exchange(request=req, replies=got, refused=refused, main=b"x", detection=frozenset(detection)), case
        )

    assert named() == "silent" and named(refused=True) == "refused"
    assert named(("xha", dereg)) == "dereg-xha" + ("" if case.signed else "+inside-unsigned")
    assert named(("iha", rrq)) == "new-request-iha"
    assert named(("xha", rrq), detection=("iha",)) == "silent"  # the x-HA's late detection request is setup
    assert named(("iha", td), ("iha", b"")) == "garbled+tunnel-data"
    assert named(("iha", b"\x09abc")) == "type-9"
    assert classify(Exchange(problem="move-failed"), case) == "move-failed"


# ------------------------------------------------------------------ reachable by the strategies (sans-IO, no sockets)


def _first_failing_index(faults: list[str], seed: int, limit: int, ctx: MnContext = CTX) -> int | None:
    """The reference mobile node (sans-IO) with ``faults``, each case played as the campaign plays it: the index of
    the first case that sets a fault off; None when none does (any other exception fails the test)."""
    profile = ctx.profile
    node = ReferenceMobileNode(profile, robustness=robustness_for(faults))
    local, now = (ctx.care_of_address, profile.port), NOW
    for index in range(limit):
        now += 0.05
        case = generate(seed, index, ctx)
        node.move(ctx.interface, "inside", None, now)
        party = ctx.iha if case.stage == DATA else ctx.party(case.party)
        out = node.datagrams_to_send(now)
        (req,) = [d for d, _l, dst in out if dst == party.place and d[0] == 1 and d[2:4] != b"\0\0"]
        request = codec.parse_request(req)
        try:
            if case.stage == DATA:
                node.receive_datagram(valid_reply(ctx, ctx.iha, request), ctx.iha.place, local, now)
                node.datagrams_to_send(now)
                main = case.payload
            else:
                main = sent_octets(case, request.identification)
            node.receive_datagram(main, party.place, local, now)
            node.datagrams_to_send(now)
        except RobustnessFailure:
            assert any(TRIGGERS[f](main) for f in faults), (seed, index, main.hex())
            return index
    # still healthy: moved inside, a valid registration makes it inside
    node.move(ctx.interface, "inside", None, now)
    (req,) = [d for d, _l, dst in node.datagrams_to_send(now) if dst == ctx.iha.place and d[0] == 1]
    node.receive_datagram(valid_reply(ctx, ctx.iha, codec.parse_request(req)), ctx.iha.place, local, now)
    assert node.core.mode(ctx.interface) is Mode.INSIDE
    return None


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_strategies_reach_each_fault_on_every_seed(fault: str) -> None:
    """Not a lucky seed: on seeds 1-20 each fault goes off within 500 cases, by a case carrying its trigger."""
    for seed in range(1, 21):
        assert _first_failing_index([fault], seed, 500) is not None, (fault, seed)
    assert _first_failing_index([fault], SEED, BOUND) is not None


@pytest.mark.parametrize("seed", [1, 2, SEED])
def test_the_conformant_node_survives_the_same_cases(seed: int) -> None:
    assert _first_failing_index([], seed, 300) is None


# ------------------------------------------------------------------ a campaign finds, minimises and replays each


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_campaign_finds_minimises_and_replays_the_fault(tmp_path: Path, capsys, fault: str) -> None:
    kind = KINDS[fault]
    out = tmp_path / "campaign"
    args = ["fuzz", "run", "-q", "--device", "mn", "--fault", fault, "--seed", str(SEED), "--max-cases", str(BOUND)]
    rc, _, err = _cli([*args, "--health-every", str(HEALTH_EVERY), "--window", WINDOW, "--out", str(out)], capsys)
    assert rc == 1, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] <= BOUND and summary["findings"] >= 1
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert {f["kind"] for f in findings} == {kind}, findings
    found = min(findings, key=lambda f: f["index"])
    assert found["seed"] == SEED and found["index"] < BOUND
    assert found["index"] == _first_failing_index([fault], SEED, BOUND)  # the first case that sets it off
    sent, small = bytes.fromhex(found["sent_hex"]), bytes.fromhex(found["minimised_hex"])
    assert TRIGGERS[fault](sent), found  # the culprit as sent carries the trigger ...
    assert TRIGGERS[fault](small) and len(small) <= len(bytes.fromhex(found["case_hex"])), found  # ... minimised too
    assert (out / found["pcap"]).stat().st_size > 24
    rc, text, err = _cli(
        ["fuzz", "replay", "--device", "mn", "--seed", str(SEED), "--index", str(found["index"]), "--fault", fault],
        capsys,
    )
    assert rc == 1 and f"reproduced: {kind}" in text, text + err


def test_the_conformant_reference_mn_gives_no_finding_over_the_same_seed(tmp_path: Path, capsys) -> None:
    cases = 10 * BOUND
    args = ["fuzz", "run", "-q", "--device", "mn", "--seed", str(SEED), "--max-cases", str(cases), "--window", WINDOW]
    rc, _, err = _cli([*args, "--health-every", str(HEALTH_EVERY), "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["findings"] == 0 and summary["cases"] == cases
    assert summary["health_checks"] >= cases // HEALTH_EVERY and summary["health_checks_failed"] == 0
    reactions = {key.split("/", 1)[1] for key in summary["coverage"]}
    assert {"silent", "dereg-xha"} <= reactions, summary["coverage"]  # it acted on the replies that were valid
    assert {key.split("/", 1)[0] for key in summary["coverage"]} >= {"iha-rrp", "xha-rrp", "iha-tunnel-data"}
    rc, text, _ = _cli(["fuzz", "replay", "--device", "mn", "--seed", str(SEED), "--index", "3"], capsys)
    assert rc == 0 and "not reproduced" in text


# ------------------------------------------------------------------ the command line


def test_show_dissects_an_mn_case_without_sending_it(capsys) -> None:
    rc, text, _ = _cli(["fuzz", "show", "--device", "mn", "--seed", str(SEED), "--index", "3"], capsys)
    assert rc in (0, None)
    assert "strategy=tnc-variants kind=iha-rrp signed=yes" in text and "Registration Reply" in text
    assert generate(SEED, 3, CTX).payload.hex() in text


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["run", "--device", "mn", "--fault", "no-such-fault"], "--fault"),
        (["run", "--device", "mn", "--target", "127.0.0.1:434"], "--target"),
        (["run", "--device", "mn", "--identification", "fresh"], "--identification"),
        (["run", "--device", "mn", "--strategy", "field-boundaries"], "--strategy"),
        (["run", "--device", "mn", "--target-cmd", "true"], "--profile"),
        (["replay", "--device", "mn", "--seed", "1", "--index", "1", "--fault", "ignore"], "--fault"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, capsys, args: list[str], key: str) -> None:
    rc, _, err = _cli(["fuzz", *args, "--out", str(tmp_path)] if args[0] == "run" else ["fuzz", *args], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and key in lines[0], err


def test_an_mn_profile_selects_the_mn_campaign_and_its_faults_stay_out_of_the_suite(tmp_path: Path, capsys) -> None:
    profile = tmp_path / "mn.toml"
    profile.write_text(builtin_profile_text(str(tmp_path / "mn.sock"), interfaces=("eth0",)), encoding="utf-8")
    rc, _, err = _cli(["fuzz", "run", "--profile", str(profile), "--fault", "crash-tnc-length-zero"], capsys)
    assert rc == 2 and "built-in reference mobile node" in err  # the MN campaign's rule, not the HA's
    rc, _, err = _cli(["fuzz", "run", "--device", "ha", "--profile", str(profile)], capsys)
    assert rc == 2 and "--device" in err
    rc, _, err = _cli(["run", "--suite", "mn", "--fault", "crash-tnc-length-zero"], capsys)
    assert rc == 2 and "not a reference mobile node fault" in err
    rc, text, _ = _cli(["mn", "faults"], capsys)
    group = text.split("Robustness", 1)[1]
    assert all(name in group for name in FAULTS) and not any(name in text.split("Robustness", 1)[0] for name in FAULTS)
    rc, text, _ = _cli(["fuzz", "strategies", "--device", "mn"], capsys)
    assert all(name in text for name in STRATEGIES)
