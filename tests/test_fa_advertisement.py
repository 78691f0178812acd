"""Agent advertisements of the reference foreign agent, judged by the Scapy layers and by tshark.

The foreign agent builds its advertisements without Scapy
(:mod:`mipcheck.proto.agent`); the Scapy layers of ``layers/agent.py``
and Wireshark's ICMP dissector are the independent judges of every field
(RFC 5944 2.1, 2.1.1; RFC 1256 3), and of both checksums. The other way
round, the agent's own parser reads what Scapy builds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.utils import wrpcap

from mipcheck.fa.config import FAConfig
from mipcheck.fa.core import ADVERTISED, SOLICITATION, ForeignAgent
from mipcheck.layers import (
    AgentAdvertisement,
    AgentChallenge,
    AgentExtPadding,
    AgentSolicitation,
    MobilityAgentAdvertisement,
    PrefixLengths,
    RouterAddress,
)
from mipcheck.proto.agent import (
    FLAG_BITS,
    FLAG_LETTERS,
    build_solicitation,
    next_sequence,
    parse_advertisement,
    parse_advertisement_packet,
    solicitation,
)

FA_ADDR = "127.0.0.5"
LINK = ("127.0.0.1", 4340)
MN = ("127.0.0.9", 40000)

CONFIGS: dict[str, dict[str, Any]] = {
    "minimal": {},
    "registration-required-reverse-tunnel": {"flags": "RFT", "care_of_addresses": ("127.0.0.5", "127.0.0.6")},
    "busy": {"flags": "BF"},
    "infinite-registration-lifetime": {"max_lifetime": 0xFFFF},
    "routes-common-traffic": {"routes_common_traffic": True, "advertisement_destination": "224.0.0.1"},
    "many-care-of-addresses": {"care_of_addresses": tuple(f"127.0.1.{i}" for i in range(1, 63))},
    "slow": {"advertise_interval": 600, "max_lifetime": 300, "registration_lifetime": 120},
}


def fa_for(name: str) -> ForeignAgent:
    return ForeignAgent(FAConfig(address=FA_ADDR, link=LINK, **CONFIGS[name]))


def advertisements(fa: ForeignAgent, count: int = 1) -> list[bytes]:
    out = []
    for _ in range(count):
        fa.handle_timer(fa.get_timer())
        [(packet, local, dst)] = fa.datagrams_to_send(0)
        assert (local, dst) == ((FA_ADDR, 434), LINK)
        out.append(packet)
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_scapy_reads_every_field(name: str) -> None:
    fa = fa_for(name)
    config = fa.config
    [packet] = advertisements(fa)
    ip = IP(packet)
    assert (ip.version, ip.ihl, ip.ttl, ip.proto) == (4, 5, 1, 1)  # RFC 5944 2.1: TTL 1
    assert (ip.src, ip.dst) == (FA_ADDR, config.advertisement_destination)
    adv = ip.payload
    assert isinstance(adv, AgentAdvertisement)
    assert (adv.type, adv.code) == (9, 0 if config.routes_common_traffic else 16)
    assert (adv.num_addrs, adv.addr_entry_size, adv.lifetime) == (1, 2, config.advertisement_lifetime)
    assert [(a.address, a.preference) for a in adv.addresses] == [(FA_ADDR, 0)]
    [mob] = adv.extensions
    assert isinstance(mob, MobilityAgentAdvertisement)
    assert (mob.type, mob.length) == (16, 6 + 4 * len(config.care_of_addresses))
    assert (mob.sequence, mob.registration_lifetime) == (0, config.registration_lifetime)
    assert list(mob.care_of_addresses) == list(config.care_of_addresses)
    flags = {letter: getattr(mob, letter) for letter in FLAG_LETTERS}
    assert {letter for letter, v in flags.items() if v} == set(config.flags)
    assert mob.reserved == 0
    # both checksums: Scapy recomputes them from the fields
    rebuilt = ip.copy()
    del rebuilt.chksum
    del rebuilt.payload.chksum
    assert bytes(rebuilt) == packet


def test_sequence_counts_every_advertisement_and_wraps_to_256() -> None:
    fa = fa_for("minimal")
    seqs = [IP(p).payload.extensions[0].sequence for p in advertisements(fa, 3)]
    fa.receive_datagram(bytes(IP(src=MN[0], dst="255.255.255.255", ttl=1) / AgentSolicitation()), MN, (FA_ADDR, 434), 0)
    seqs.append(IP(fa.datagrams_to_send(0)[0][0]).payload.extensions[0].sequence)
    assert seqs == [0, 1, 2, 3]
    fa._sequence = 0xFFFE
    assert [IP(p).payload.extensions[0].sequence for p in advertisements(fa, 3)] == [0xFFFE, 0xFFFF, 256]
    assert [next_sequence(s) for s in (0, 255, 0xFFFE, 0xFFFF)] == [1, 256, 0xFFFF, 256]


def test_advertisements_follow_the_interval() -> None:
    fa = ForeignAgent(FAConfig(address=FA_ADDR, link=LINK, advertise_interval=2.5), start=100.0)
    assert fa.get_timer() == 100.0
    fa.handle_timer(100.0)
    assert fa.get_timer() == 102.5 and fa.next_event().outcome == ADVERTISED
    fa.handle_timer(101.0)  # early: nothing
    assert len(fa.datagrams_to_send(101.0)) == 1 and fa.get_timer() == 102.5
    assert ForeignAgent(FAConfig(address=FA_ADDR)).get_timer() is None  # no link: solicited only


@pytest.mark.parametrize(
    ("name", "ip_src", "ip_dst"),
    [("from-an-address", MN[0], MN[0]), ("before-an-address", "0.0.0.0", "255.255.255.255")],
)
def test_solicitation_is_answered_to_the_solicitor(name: str, ip_src: str, ip_dst: str) -> None:
    fa = fa_for("minimal")
    sol = bytes(IP(src=ip_src, dst="255.255.255.255", ttl=1) / AgentSolicitation())  # Scapy builds it
    assert solicitation(IP(sol).payload.build())
    fa.receive_datagram(sol, MN, (FA_ADDR, 434), 0)
    d = fa.next_event()
    assert (d.outcome, d.kind, d.sent_to) == (ADVERTISED, SOLICITATION, MN)
    [(packet, _local, dst)] = fa.datagrams_to_send(0)
    assert dst == MN and IP(packet).dst == ip_dst and IP(packet).ttl == 1


@pytest.mark.parametrize(
    "bad",
    [
        bytes(IP(src=MN[0], dst="255.255.255.255", ttl=1) / AgentSolicitation(code=1)),
        bytes(IP(src=MN[0], dst="255.255.255.255", ttl=1) / AgentSolicitation(chksum=1)),
        bytes(IP(src=MN[0], dst="255.255.255.255", ttl=1) / AgentSolicitation())[:-1],
    ],
    ids=["code-1", "bad-checksum", "truncated"],
)
def test_bad_solicitations_are_not_answered(bad: bytes) -> None:
    fa = fa_for("minimal")
    fa.receive_datagram(bad, MN, (FA_ADDR, 434), 0)
    assert fa.next_event().outcome != ADVERTISED and fa.datagrams_to_send(0) == []


def test_our_solicitation_is_what_scapy_builds() -> None:
    scapy = IP(src=MN[0], dst="255.255.255.255", ttl=1, id=0) / AgentSolicitation()
    assert build_solicitation(MN[0]) == bytes(scapy)


def test_parser_reads_what_scapy_builds() -> None:
    adv = AgentAdvertisement(
        code=16,
        lifetime=900,
        addresses=[RouterAddress(address="192.0.2.1", preference=-5), RouterAddress(address="192.0.2.2")],
        extensions=[
            MobilityAgentAdvertisement(
                sequence=300, registration_lifetime=120, R=1, F=1, T=1, U=1, care_of_addresses=["192.0.2.1"]
            ),
            PrefixLengths(prefix_lengths=[24, 16]),
            AgentChallenge(challenge=b"0123456789abcdef"),
            AgentExtPadding(),
        ],
    )
    parsed = parse_advertisement(bytes(adv))
    assert parsed is not None
    assert (parsed.code, parsed.lifetime, parsed.routers) == (16, 900, (("192.0.2.1", -5), ("192.0.2.2", 0)))
    mob = parsed.mobility
    assert (mob.sequence, mob.registration_lifetime, mob.care_of_addresses) == (300, 120, ("192.0.2.1",))
    assert [letter for letter in FLAG_LETTERS if mob.has(letter)] == ["R", "F", "T", "U"]
    assert [t for t, _ in parsed.extensions] == [16, 19, 24, 0]
    raw = bytes(adv)
    assert parse_advertisement(raw[:-2] + bytes((raw[-2] ^ 1, raw[-1]))) is None  # checksum
    assert parse_advertisement(bytes(AgentSolicitation())) is None


def test_flag_bits_are_the_layers_bits() -> None:
    for letter in FLAG_LETTERS:
        ext = bytes(MobilityAgentAdvertisement(**{letter: 1}))
        assert int.from_bytes(ext[6:8], "big") == FLAG_BITS[letter], letter


def test_wrong_coa_fault_advertises_addresses_that_are_not_ours() -> None:
    fa = ForeignAgent(FAConfig(address=FA_ADDR, link=LINK), ["wrong-coa-in-advertisement"])
    [packet] = advertisements(fa)
    assert IP(packet).payload.extensions[0].care_of_addresses == ["127.0.0.6"]
    assert parse_advertisement_packet(packet)[3].mobility.care_of_addresses == ("127.0.0.6",)


def test_busy_is_advertised_when_the_visitor_list_is_full() -> None:
    fa = ForeignAgent(FAConfig(address=FA_ADDR, link=LINK, max_visitors=1))
    from mipcheck.proto import codec

    rq = codec.build_request(0, 100, "10.0.0.1", "127.0.0.2", FA_ADDR, 1, auth=(300, "hmac-md5", b"k"))
    fa.receive_datagram(rq, MN, (FA_ADDR, 434), 0)
    fa.datagrams_to_send(0)
    [packet] = advertisements(fa)
    assert IP(packet).payload.extensions[0].B == 1


# --------------------------------------------------------------------------- tshark, the second judge

TSHARK = shutil.which("tshark")
PI_WARN = 0x600000  # Wireshark expert severities: note 0x400000, warning 0x600000, error 0x800000


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_tshark_decodes_every_advertisement(tmp_path: Path) -> None:
    packets = [advertisements(fa_for(name))[0] for name in sorted(CONFIGS)]
    pcap = tmp_path / "fa-adv.pcap"
    wrpcap(str(pcap), [IP(p) for p in packets])
    run = subprocess.run(
        [TSHARK, "-n", "-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-T", "json"],
        capture_output=True,
        text=True,
        env=dict(os.environ, LC_ALL="C", TZ="UTC"),
        check=True,
        timeout=120,
    )
    decoded = json.loads(run.stdout, object_pairs_hook=list)  # tshark repeats keys (one per care-of address)
    assert len(decoded) == len(packets)
    verbose = subprocess.run(
        [TSHARK, "-n", "-r", str(pcap), "-V"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert verbose.count("Mobility Agent Advertisement Extension (16)") == len(packets)
    for name, packet in zip(sorted(CONFIGS), decoded, strict=True):
        config = fa_for(name).config
        fields = _fields(packet)
        # no malformed packet, no expert warning or error (a note on TTL 1 to a non-multicast address is fine)
        assert "_ws.malformed" not in fields, name
        assert all(int(sev) < PI_WARN for sev in fields.get("_ws.expert.severity", [])), name
        one = {k: v[0] for k, v in fields.items() if len(v) == 1}
        assert (one["ip.ttl"], one["ip.checksum.status"], one["ip.dst"]) == ("1", "1", config.advertisement_destination)
        assert (one["icmp.type"], one["icmp.checksum.status"]) == ("9", "1"), name
        assert one["icmp.code"] == ("0" if config.routes_common_traffic else "16")
        assert (one["icmp.num_addrs"], one["icmp.addr_entry_size"]) == ("1", "2")
        assert one["icmp.lifetime"] == str(config.advertisement_lifetime)
        assert one["icmp.router_address"] == FA_ADDR
        assert (one["icmp.mip.type"], one["icmp.mip.length"]) == ("16", str(6 + 4 * len(config.care_of_addresses)))
        assert (one["icmp.mip.seq"], one["icmp.mip.life"]) == ("0", str(config.registration_lifetime))
        assert int(one["icmp.mip.flags"], 16) == config.advertised_flags
        letters = {"r": "R", "b": "B", "h": "H", "f": "F", "m": "M", "g": "G", "rt": "T", "u": "U", "x": "X"}
        shown = {letter for bit, letter in letters.items() if one[f"icmp.mip.{bit}"] == "1"}
        assert shown == set(config.flags), name
        assert fields["icmp.mip.coa"] == list(config.care_of_addresses)


def _fields(node: Any) -> dict[str, list[str]]:
    """Every key of a tshark JSON packet (read as key/value pairs) -> its values, in order ([] for subtrees)."""
    out: dict[str, list[str]] = {}

    def walk(pairs: Any) -> None:
        for key, value in pairs:
            if isinstance(value, list):
                out.setdefault(key, [])  # a subtree: its key is known (an expert item, a malformed mark)
                walk(value)
            else:
                out.setdefault(key, []).append(value)

    walk(node)
    return out
