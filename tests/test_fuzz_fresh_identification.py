"""``--identification fresh``: campaigns get past strict replay protection, and (seed, index) still name the cases.

The target is the built-in lab home agent run with its default, strict replay window
(``python -m mipcheck.fuzz.lab PORT --strict-replay``: within 7 s of its clock and greater than the last
Identification accepted for the home address, RFC 5944 5.7). In ``case`` mode its signed request cases are
denied 133 at the Identification check; in ``fresh`` mode they reach the checks behind it. What was sent is
read back from the store (``cases.sent_ident``) and from ``findings.json`` (``sent_hex``) and the pcaps.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mipcheck.capture.reader import CaptureReader
from mipcheck.cli import main
from mipcheck.fuzz.case import Case
from mipcheck.fuzz.context import context_from_profile
from mipcheck.fuzz.fresh import CASE, FRESH, FreshClock, Stamper, is_request, sent_identification, shared_clock
from mipcheck.fuzz.health import HealthChecker
from mipcheck.fuzz.lab import config, profile_for
from mipcheck.fuzz.strategies import generate
from mipcheck.ha.core import HomeAgent
from mipcheck.proto.extensions import LONG_FORMAT_TYPES

CTX = context_from_profile(profile_for("127.0.0.1", 434))
SEED = 21
LAB = [sys.executable, "-m", "mipcheck.fuzz.lab"]
SRC, LOCAL = ("127.0.0.2", 40000), ("127.0.0.1", 434)


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _strict_lab(port: int) -> list[str]:
    return [
        "--target",
        f"127.0.0.1:{port}",
        "--target-cmd",
        f"{sys.executable} -m mipcheck.fuzz.lab {port} --strict-replay",
    ]


def _touches_identification(case: Case) -> bool:
    """A mutation that writes into octets 16-23 (the Identification) of the mutated request."""
    width = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "addr": 4}
    for op in case.draft.ops:
        if op[0] in width and op[1] < 24 and op[1] + width[op[0]] > 16:
            return True
        if op[0] == "flip" and 16 <= op[1] < 24:
            return True
    return False


def _signed_request_reactions(out: Path) -> Counter:
    with sqlite3.connect(out / "campaign.sqlite") as db:
        rows = db.execute("SELECT reaction, count(*) FROM cases WHERE kind = 'rrq' AND signed = 1 GROUP BY reaction")
        return Counter(dict(rows))


# ------------------------------------------------------------------ the case stays a pure function of (seed, index)


def test_fresh_mode_changes_what_is_sent_never_the_case() -> None:
    stamper = Stamper(FRESH)
    restamped = 0
    for index in range(300):
        case = generate(SEED, index, CTX)
        own = case.payload
        sent = stamper.datagrams(case)
        again = generate(SEED, index, CTX)
        assert again.payload == own and again.steps() == case.steps()  # stamping changed nothing of the case
        assert len(sent) == len(case.steps())
        main_sent = sent[len(case.before)]
        if not is_request(case.draft) or case.keeps_identification:
            assert main_sent == own  # revocations, tunnel data, Identification edges: sent as generated
            continue
        assert len(main_sent) == len(own) and main_sent[:16] == own[:16]  # same message, same mutations
        if len(own) >= 24 and not _touches_identification(case):
            assert main_sent[16:24] != own[16:24]
            restamped += 1
    assert restamped > 150
    assert Stamper(CASE).datagrams(generate(SEED, 7, CTX)) == generate(SEED, 7, CTX).steps()


def test_fresh_cases_pass_the_identification_check_of_a_strict_home_agent() -> None:
    """In process, case by case: each signed request the strict core answers 133 as generated is not, re-stamped."""
    ha_case, ha_fresh = HomeAgent(config(434, strict_replay=True)), HomeAgent(config(434, strict_replay=True))
    stamper = Stamper(FRESH)
    denied = Counter()
    for index in range(400):
        case = generate(SEED, index, CTX)
        if not case.signed or case.keeps_identification or _touches_identification(case) or case.before:
            continue
        as_is = ha_case.handle(case.payload, SRC, LOCAL, time.time())
        if as_is.reply is None or as_is.reply[1] != 133:
            continue
        fresh = ha_fresh.handle(stamper.datagrams(case)[0], SRC, LOCAL, time.time())
        denied[fresh.reply[1] if fresh.reply is not None else "silent"] += 1
    assert sum(denied.values()) > 60
    assert denied[133] == 0, denied
    assert denied[0] > sum(denied.values()) // 2, denied


def test_the_health_check_and_the_cases_stamp_from_one_clock() -> None:
    stamper = Stamper(FRESH)
    health = HealthChecker(CTX, ("127.0.0.1", _free_port()), stamper)
    try:
        stamped = []
        for index in range(100):
            case = generate(SEED, index, CTX)
            sent = stamper.datagrams(case)
            if case.keeps_identification or _touches_identification(case):
                continue  # sent with the Identification its strategy broke
            stamped += [ident for data in sent if (ident := sent_identification(data)) is not None]
            if index % 10 == 9:
                health.send()
                assert health.outstanding > max(stamped)  # never older than a case just sent
                stamped.append(health.outstanding)
    finally:
        health.close()
    assert len(stamped) > 50
    assert all(a < b for a, b in zip(stamped, stamped[1:], strict=False))


def test_a_sent_identification_ahead_of_the_clock_moves_it() -> None:
    clock = FreshClock()
    now = clock.next()
    ahead = now + (3 << 32)  # 3 s ahead: a device may have accepted it as its newest
    clock.observe(ahead)
    assert clock.next() > ahead
    clock.observe(now + (60 << 32))  # beyond any replay window: no device accepted it
    assert clock.next() < now + (10 << 32)


def _stamp_many(shared, counter, out, count: int) -> None:
    clock = FreshClock(shared)
    got = []
    for _ in range(count):
        with clock.guard:
            ident = clock.next()
            with counter.get_lock():
                counter.value += 1
                got.append((counter.value, ident))
    out.put(got)


def test_workers_sharing_a_clock_stamp_in_increasing_order() -> None:
    ctx = mp.get_context("spawn")
    shared, counter, out = shared_clock(ctx), ctx.Value("Q", 0), ctx.Queue()
    procs = [ctx.Process(target=_stamp_many, args=(shared, counter, out, 3000)) for _ in range(2)]
    for p in procs:
        p.start()
    stamped = sorted(out.get(timeout=30) + out.get(timeout=30))
    for p in procs:
        p.join(10)
    idents = [ident for _order, ident in stamped]
    assert len(idents) == 6000
    assert all(a < b for a, b in zip(idents, idents[1:], strict=False))  # in the order they were stamped


# ------------------------------------------------------------------ campaigns against the strict built-in home agent


def test_case_mode_is_denied_133_and_fresh_mode_gets_past_it(tmp_path: Path, capsys) -> None:
    port = _free_port()
    counts = {}
    for mode in (CASE, FRESH):
        out = tmp_path / mode
        args = ["fuzz", "run", "-q", "--seed", str(SEED), "--max-cases", "1200", "--out", str(out)]
        rc, _, err = _cli([*args, "--identification", mode, *_strict_lab(port)], capsys)
        assert rc == 0, err
        summary = json.loads((out / "summary.json").read_text())
        assert summary["identification"] == mode and summary["findings"] == 0
        assert summary["health_checks_failed"] == 0
        counts[mode] = _signed_request_reactions(out)
    case, fresh = counts[CASE], counts[FRESH]
    signed = sum(case.values())
    assert signed == sum(fresh.values()) > 400  # the same cases ...
    assert case["denied-133"] == max(case.values()) and case["denied-133"] > signed * 0.4, case
    assert not any(r.startswith("accepted") for r in case), case
    assert fresh["denied-133"] < signed * 0.05, fresh  # ... past the Identification check
    assert fresh["accepted-0"] > signed * 0.3, fresh
    print(f"signed request cases, case mode: {dict(case)}; fresh mode: {dict(fresh)}")

    with sqlite3.connect(tmp_path / CASE / "campaign.sqlite") as db:
        assert db.execute("SELECT count(*) FROM cases WHERE sent_ident IS NOT NULL").fetchone()[0] == 0
    with sqlite3.connect(tmp_path / FRESH / "campaign.sqlite") as db:
        rows = db.execute("SELECT idx, sent_ident FROM cases WHERE sent_ident IS NOT NULL ORDER BY idx").fetchall()
    last: dict[bytes, int] = {}
    checked = 0
    for index, ident in rows:  # one worker: sent in index order
        case = generate(SEED, index, CTX)
        if case.keeps_identification or _touches_identification(case):
            continue
        home = case.payload[4:8]
        assert int(ident, 16) > last.get(home, 0), (index, ident)  # strictly increasing per home address
        last[home] = int(ident, 16)
        checked += 1
    assert checked > 800


def _lab_profile(tmp_path: Path, port: int) -> Path:
    """A test profile of the lab home agent with one mobile node: health checks and cases share a home address."""
    node = profile_for("127.0.0.1", port).mobile_nodes[0]
    path = tmp_path / "lab.toml"
    path.write_text(
        f'[dut]\naddress = "127.0.0.1"\nport = {port}\nrole = "i-ha"\n\n'
        f'[mn]\nhome_address = "{node.home_address}"\nspi = {node.spi}\nsecret = "{node.secret.reveal().decode()}"\n\n'
        # 3 s: a loaded CI machine may take more than 1 s to answer; a stale Identification is a 133, not silence
        '[tester]\ntrusted_sources = ["127.0.0.2"]\nuntrusted_sources = ["127.0.0.66"]\nreply_timeout = 3.0\n'
    )
    return path


def test_jobs_on_one_strict_target_share_the_clock(tmp_path: Path, capsys) -> None:
    """Two workers, one target, one home address for every case and health check of both: nothing sent is older."""
    lab = subprocess.Popen([*LAB, "0", "--strict-replay"], stdout=subprocess.PIPE, start_new_session=True)
    runs = {}
    try:
        _ready, address, port = lab.stdout.readline().decode().split()
        target = ["--target", f"{address}:{port}", "--profile", str(_lab_profile(tmp_path, int(port)))]
        # case mode first: a fresh campaign may leave the device's newest Identification a few seconds ahead of
        # the clock (a mutated one it accepted), which a later campaign's first health check cannot beat
        for mode in (CASE, None):  # None: the default with --target, fresh
            out = tmp_path / f"jobs-{mode}"
            args = ["fuzz", "run", "-q", "--seed", str(SEED), "--max-cases", "1200", "--jobs", "2", "--out", str(out)]
            mode_args = ["--identification", mode] if mode else []
            rc, _, err = _cli([*args, "--health-every", "20", *mode_args, *target], capsys)
            assert rc == 0, err  # no health check of either worker was older than what the other sent
            runs[mode] = json.loads((out / "summary.json").read_text()), _signed_request_reactions(out)
    finally:
        lab.terminate()
        lab.wait(5)
    for summary, _reactions in runs.values():
        # a check is sent every 20 cases only when none is in flight, so a loaded machine sends fewer (34 seen
        # with two suites running beside it); what matters is that both workers' checks ran and none failed
        assert summary["findings"] == 0 and summary["health_checks_failed"] == 0 and summary["health_checks"] >= 10
    summary, fresh = runs[None]
    assert summary["identification"] == FRESH
    assert fresh["denied-133"] < sum(fresh.values()) * 0.05, fresh
    assert fresh["accepted-0"] > sum(fresh.values()) * 0.3, fresh
    case = runs[CASE][1]
    assert case["denied-133"] > sum(case.values()) * 0.4 and "accepted-0" not in case, case


# ------------------------------------------------------------------ a finding behind the Identification check


RESPONDER = """
import os, socket, sys, time
from mipcheck.fuzz.lab import config
from mipcheck.ha.core import HomeAgent
from mipcheck.proto.extensions import LONG_FORMAT_TYPES

def types(msg):
    out, off = [], 24
    while off + 2 <= len(msg):
        hdr = 4 if msg[off] in LONG_FORMAT_TYPES else 2
        if off + hdr > len(msg):
            break
        out.append(msg[off])
        off += hdr + (int.from_bytes(msg[off + 2:off + 4], "big") if hdr == 4 else msg[off + 1])
    return out

port = int(sys.argv[1])
core = HomeAgent(config(port, strict_replay=True))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
while True:
    data, src = s.recvfrom(65535)
    d = core.handle(data, src, ("127.0.0.1", port), time.time())
    if d.reply is not None and d.reply[1] == 0 and 149 in types(data):  # the bug: accepting a request with TNC
        os._exit(3)
    if d.reply is not None:
        s.sendto(d.reply, d.reply_to)
"""


def _types(msg: bytes) -> list[int]:
    out, off = [], 24
    while off + 2 <= len(msg):
        hdr = 4 if msg[off] in LONG_FORMAT_TYPES else 2
        if off + hdr > len(msg):
            break
        out.append(msg[off])
        off += hdr + (int.from_bytes(msg[off + 2 : off + 4], "big") if hdr == 4 else msg[off + 1])
    return out


def test_a_fresh_mode_finding_replays_fresh_and_not_as_generated(tmp_path: Path, capsys) -> None:
    script = tmp_path / "responder.py"
    script.write_text(RESPONDER)
    port = _free_port()
    target = ["--target", f"127.0.0.1:{port}", "--target-cmd", f"{sys.executable} {script} {port}"]
    out = tmp_path / "f"
    args = ["fuzz", "run", "-q", "--seed", str(SEED), "--max-cases", "300", "--health-every", "10"]
    rc, _, err = _cli([*args, "--identification", "fresh", "--out", str(out), *target], capsys)
    assert rc == 1, err
    found = json.loads((out / "findings.json").read_text())["findings"]
    assert found and found[0]["kind"] == "crash", found
    f = found[0]
    case = generate(SEED, f["index"], CTX)
    assert f["case_hex"] == case.payload.hex()  # the case's own octets, whatever the mode
    sent = bytes.fromhex(f["sent_hex"])
    assert sent != case.payload and sent[:16] == case.payload[:16] and 149 in _types(sent)
    assert case.signed and not case.keeps_identification
    # the pcap holds what went out: the culprit re-stamped (then its minimised form, re-stamped again)
    with CaptureReader(str(out / f["pcap"])) as reader:
        payloads = [bytes(frame[2])[28:] for frame in reader]  # raw IPv4 (20) + UDP (8) headers
    assert payloads[len(case.before)] == sent
    idents = [sent_identification(p) for p in payloads]
    assert all(a < b for a, b in zip(idents, idents[1:], strict=False)), idents

    rc, text, err = _cli(["fuzz", "replay", "--seed", str(SEED), "--index", str(f["index"]), *target], capsys)
    assert rc == 1 and "reproduced: crash" in text and "re-stamped" in text, text + err  # fresh by default
    replay_case = ["fuzz", "replay", "--seed", str(SEED), "--index", str(f["index"]), "--identification", "case"]
    rc, text, err = _cli([*replay_case, *target], capsys)
    assert rc == 0 and "not reproduced" in text, text + err  # as generated it stops at the Identification check


def test_show_explains_fresh_mode(capsys) -> None:
    for index in range(40):
        case = generate(SEED, index, CTX)
        rc, out, _ = _cli(["fuzz", "show", "--seed", str(SEED), "--index", str(index)], capsys)
        assert rc in (0, None)
        if is_request(case.draft) and not case.keeps_identification:
            assert "--identification fresh" in out and "re-stamps" in out and case.payload.hex() in out
            return
    pytest.fail("no request case among the first 40")


def test_identification_mode_is_checked(tmp_path: Path, capsys) -> None:
    rc, _, err = _cli(["fuzz", "run", "--identification", "sometimes", "--out", str(tmp_path / "x")], capsys)
    assert rc == 2 and "--identification" in err


def test_an_authenticated_133_resynchronises_the_clock_to_the_device() -> None:
    """RFC 5944 5.7.1: the 133's high-order 32 bits are the device's time; later values are not older."""
    from mipcheck.proto.identification import timestamp_identification

    clock = FreshClock()
    ahead = timestamp_identification(time.time() + 100)
    clock.resync(ahead | 0xDEAD)
    assert clock.next() > ahead & ~0xFFFFFFFF
    before = clock.last
    clock.resync(timestamp_identification(time.time() - 100))  # an older device clock never moves it back
    assert clock.last == before
