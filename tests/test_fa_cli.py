"""``mipcheck fa`` as a user runs it: a subprocess on loopback between a scripted mobile node and home agent.

Everything stays on 127.x addresses: the foreign agent on 127.0.0.5 (any
free port), the "link" its advertisements go to, a scripted home agent on
127.0.0.2 and a scripted mobile node on 127.0.0.9, plain UDP sockets with
timeouts. The subprocess is killed whatever happens.
"""

from __future__ import annotations

import json
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP

from mipcheck.fa.faults import FAULTS
from mipcheck.layers import AgentAdvertisement
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.agent import build_solicitation, parse_advertisement_packet
from mipcheck.proto.ip import build_ipv4, build_udp_ipv4

CLI = [sys.executable, "-m", "mipcheck.cli"]
FA_ADDR, HA_ADDR, MN_ADDR, LINK_ADDR = "127.0.0.5", "127.0.0.2", "127.0.0.9", "127.0.0.1"
HOA = "10.7.0.9"
MN_HA = (300, "hmac-md5", b"cli mn-ha key")
FA_HA_SECRET = "cli-fa-ha-secret-do-not-print"


def udp(address: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 0))
    s.settimeout(5)
    return s


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError("no output from mipcheck fa serve")
        return proc.stdout.readline()
    finally:
        sel.close()


class Lab:
    def __init__(
        self, proc: subprocess.Popen[str], fa: tuple[str, int], workdir: Path, socks: dict[str, socket.socket]
    ):
        self.proc, self.fa, self.workdir = proc, fa, workdir
        self.ha, self.mn, self.link = socks["ha"], socks["mn"], socks["link"]

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, list[dict], str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, [json.loads(line) for line in out.splitlines()], err


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    socks = {"ha": udp(HA_ADDR), "mn": udp(MN_ADDR), "link": udp(LINK_ADDR)}
    (tmp_path / "fa-ha.key").write_text(FA_HA_SECRET + "\n")
    (tmp_path / "fa.toml").write_text(
        f"""
address = "{FA_ADDR}"
port = 0
flags = "RFT"
max_lifetime = 600
advertise_interval = 0.2
link = "{LINK_ADDR}:{socks["link"].getsockname()[1]}"
log_file = "fa.log"

[[home_agent]]
address = "{HA_ADDR}"
port = {socks["ha"].getsockname()[1]}
spi = 500
secret_file = "fa-ha.key"
"""
    )
    proc = subprocess.Popen(
        [*CLI, "fa", "serve", "--config", str(tmp_path / "fa.toml"), "--log-json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(read_line(proc))
        assert first["event"] == "listening" and first["address"] == FA_ADDR, first
        yield Lab(proc, (FA_ADDR, first["port"]), tmp_path, socks)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        for s in socks.values():
            s.close()


def fa_ha_auth(message: bytes) -> bytes:
    covered = message + codec.AUTH_HDR.pack(n.EXT_FA_HA_AUTH, 20, 500)
    return covered + codec.authenticator("hmac-md5", FA_HA_SECRET.encode(), covered)


def test_serve_advertises_relays_and_delivers(lab: Lab) -> None:
    # advertisements reach the link, the whole IPv4 packet with TTL 1 in each UDP payload
    data, src = lab.link.recvfrom(2048)
    assert src == lab.fa
    source, dest, ttl, adv = parse_advertisement_packet(data)
    assert (source, dest, ttl, adv.mobility.care_of_addresses) == (FA_ADDR, "255.255.255.255", 1, (FA_ADDR,))
    scapy = IP(data).payload  # and Scapy agrees
    assert isinstance(scapy, AgentAdvertisement) and scapy.extensions[0].F == scapy.extensions[0].T == 1
    # a registration: mobile node -> foreign agent -> home agent, and back
    rq = codec.build_request(n.FLAG_T, 300, HOA, HA_ADDR, FA_ADDR, 0x1122334455667788, auth=MN_HA)
    lab.mn.sendto(rq, lab.fa)
    relayed, fa_src = lab.ha.recvfrom(2048)
    assert fa_src == lab.fa and relayed[: len(rq)] == rq and len(relayed) == len(rq) + 22  # FA-HA appended
    reply = codec.build_reply(0, 120, HOA, HA_ADDR, 0x1122334455667788, auth=MN_HA)
    lab.ha.sendto(fa_ha_auth(reply), fa_src)
    got, src = lab.mn.recvfrom(2048)
    assert (got, src) == (reply, lab.fa)  # the FA-HA authenticator removed, nothing else changed
    # tunnelled data from the home agent to the care-of address reaches the visitor
    inner = build_udp_ipv4(("192.0.2.1", 53), (HOA, 5353), b"for the visitor")
    lab.ha.sendto(build_ipv4(HA_ADDR, FA_ADDR, 4, inner), lab.fa)
    assert lab.mn.recvfrom(2048) == (inner, lab.fa)
    # and the visitor's own packet goes back through the reverse tunnel ('T')
    out = build_udp_ipv4((HOA, 5353), ("192.0.2.1", 53), b"from the visitor")
    lab.mn.sendto(out, lab.fa)
    tunnelled, _ = lab.ha.recvfrom(2048)
    assert (IP(tunnelled).src, IP(tunnelled).dst, bytes(IP(tunnelled).payload)) == (FA_ADDR, HA_ADDR, out)
    # a solicitation is answered to the solicitor
    lab.mn.sendto(build_solicitation(MN_ADDR), lab.fa)
    answer, _ = lab.mn.recvfrom(2048)
    assert parse_advertisement_packet(answer)[1] == MN_ADDR
    # a denial: the home agent never hears of it
    too_long = codec.build_request(0, 601, HOA, HA_ADDR, FA_ADDR, 0x1122334455667799, auth=MN_HA)
    lab.mn.sendto(too_long, lab.fa)
    denial = codec.parse_reply(lab.mn.recvfrom(2048)[0])
    assert (denial.code, denial.lifetime) == (69, 600)
    rc, records, err = lab.stop(signal.SIGTERM)
    assert rc == 0 and "Traceback" not in err, err
    outcomes = [(r.get("kind"), r["outcome"]) for r in records if "outcome" in r and r.get("kind") != "advertisement"]
    assert outcomes == [
        ("request", "relayed"),
        ("reply", "relayed"),
        ("tunnel", "delivered"),
        ("visitor-data", "tunnelled"),
        ("solicitation", "advertised"),
        ("request", "denied"),
    ]
    assert records[-1]["event"] == "stopped" and records[-1]["signal"] == "SIGTERM"
    log = (lab.workdir / "fa.log").read_text()
    for text in (log, err, json.dumps(records)):
        assert FA_HA_SECRET not in text and FA_HA_SECRET.encode().hex() not in text


def test_sigint_stops_cleanly(lab: Lab) -> None:
    rc, records, err = lab.stop(signal.SIGINT)
    assert rc == 0 and "Traceback" not in err
    assert records[-1] == {**records[-1], "event": "stopped", "signal": "SIGINT"}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('flags = "FG"', "flags: 'G' is not offered"),  # 'M' is offered (RFC 2004, mipcheck.proto.minenc)
        ('flags = "R"', "flags: must include 'F'"),
        ("max_lifetime = 70000", "max_lifetime: 70000 is out of range"),
        ("registration_lifetime = 900\nmax_lifetime = 600", "registration_lifetime: 900 is longer than max_lifetime"),
        ("reverse_tunneling = true", "reverse_tunneling: is true but flags do not advertise 'T'"),
        ('link = "127.0.0.1"', 'link: expected "address:port"'),
        ("bogus = 1", "bogus: unknown key"),
        ('[[home_agent]]\naddress = "127.0.0.2"\nspi = 5\nsecret = "x"', "home_agent[0].spi: 5 is out of range"),
        ("[[home_agent]]\nport = 1", "home_agent[0].address: missing"),
        ("address = ", "config: not valid TOML"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml + "\n")
    run = subprocess.run([*CLI, "fa", "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2, run
    assert run.stderr.count("\n") == 1 and message in run.stderr and str(cfg) in run.stderr, run.stderr


def test_unknown_fault_and_busy_port(tmp_path: Path) -> None:
    cfg = tmp_path / "fa.toml"
    cfg.write_text(f'address = "{FA_ADDR}"\nport = 0\n')
    run = subprocess.run([*CLI, "fa", "serve", "--config", str(cfg), "--fault", "nope"], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown fault 'nope'" in run.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((FA_ADDR, 0))
        port = str(taken.getsockname()[1])
        run = subprocess.run(
            [*CLI, "fa", "serve", "--config", str(cfg), "--port", port], capture_output=True, text=True
        )
    assert run.returncode == 2 and f"cannot bind {FA_ADDR}:{port}" in run.stderr and run.stderr.count("\n") == 1


def test_faults_are_listed() -> None:
    run = subprocess.run([*CLI, "fa", "faults", "--json"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and set(json.loads(run.stdout)) == set(FAULTS)
