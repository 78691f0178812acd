"""The HA suite's judges and message builders, table-driven on hand-made octets (no network)."""

from __future__ import annotations

import pytest

from mipcheck.engine.evidence import Datagram
from mipcheck.engine.profile import MobileNode
from mipcheck.layers import (
    Key,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUnknown,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
)
from mipcheck.layers.auth import compute_authenticator
from mipcheck.layers.secret import Secret
from mipcheck.suites.ha import judge
from mipcheck.suites.ha.messages import build_request, flip_authenticator, icmp_echo, tunnel_data

MN = MobileNode("127.1.0.1", None, 0x1000, Secret(b"test-key"))
IDENT = 0xE000_0001_1234_5678
TNC_OK = bytes((149, 2, 0, 0))


def _dg(payload: bytes, frame: int = 2) -> Datagram:
    return Datagram(frame, 0.0, ("127.0.0.1", 434), ("127.0.0.2", 40000), payload, "received")


def _reply(
    code: int = 0,
    lifetime: int = 300,
    ident: int = IDENT,
    before: bytes = TNC_OK,
    after: bytes = b"",
    auth: bool = True,
    key: bytes = b"test-key",
) -> bytes:
    """Reply octets: fixed part, ``before`` (covered), MN-HA authentication, ``after`` (not covered)."""
    rrp = RegistrationReply(
        code=code, lifetime=lifetime, home_address=MN.home_address, home_agent="127.0.0.1", identification=ident
    )
    body = bytes(rrp) + before
    if auth:
        # RFC 5944 3.5.1: message, prior extensions, then Type, Length and SPI of this one.
        header = bytes((32, 20)) + MN.spi.to_bytes(4, "big")
        body += header + compute_authenticator("hmac-md5", key, body + header)
    return body + after


def _req():
    return build_request(MN, home_agent="127.0.0.1", care_of_address="127.0.0.2", identification=IDENT, lifetime=300)


SENT = Datagram(1, 0.0, ("127.0.0.2", 40000), ("127.0.0.1", 434), b"", "sent")


def test_request_builder_authenticates_and_flips() -> None:
    req = _req()
    msg = MobileIPMessage(req.data)
    assert isinstance(msg, RegistrationRequest) and msg.D == 1 and msg.T == 0 and msg.identification == IDENT
    assert [c.valid for c in msg.verify({MN.spi: Key(b"test-key")})] == [True]
    for i in (0, 8, 15):
        bad = flip_authenticator(req, i)
        assert len(bad.data) == len(req.data)
        assert sum(a != b for a, b in zip(bad.data, req.data, strict=True)) == 1
        assert bad.data[-16 + i] == req.data[-16 + i] ^ 0xFF
        assert [c.valid for c in MobileIPMessage(bad.data).verify({MN.spi: Key(b"test-key")})] == [False]
    unauth = build_request(
        MN, home_agent="127.0.0.1", care_of_address="127.0.0.2", identification=IDENT, lifetime=300, authenticate=False
    )
    assert len(unauth.data) == 24
    odd = build_request(
        MN,
        home_agent="127.0.0.1",
        care_of_address="127.0.0.2",
        identification=IDENT,
        lifetime=300,
        spi=0x9999,
        before_auth=[MIPExtUnknown(type=200, data=b"ab")],
    )
    m = MobileIPMessage(odd.data)
    assert m.extensions[0].type == 200 and m.extensions[-1].spi == 0x9999
    assert [c.valid for c in m.verify({0x9999: Key(b"test-key")})] == [True]  # same key, other SPI


def test_reply_matching() -> None:
    req = _req()
    assert judge.is_reply_to(req, _dg(_reply()))
    assert judge.is_reply_to(req, _dg(_reply(ident=(0x1111 << 32) | (IDENT & 0xFFFFFFFF))))  # high bits may differ
    assert not judge.is_reply_to(req, _dg(_reply(ident=IDENT + 1)))
    assert not judge.is_reply_to(req, _dg(req.data))  # a request is no reply


@pytest.mark.parametrize(
    ("got", "ok"),
    [([], True), ([_dg(b"\x03" + bytes(19))], False), ([_dg(b"junk")], False)],
)
def test_silence(got, ok) -> None:
    c = judge.check_silent("x", SENT, got, 0.5)
    assert c.ok is ok
    assert c.frames[0] == 1


@pytest.mark.parametrize(
    ("reply", "codes", "ok"),
    [
        (_reply(code=131), [131], True),
        (_reply(code=134), [131], False),
        (_reply(code=0), [131], False),
        (None, [131], False),
        (_reply(code=137), [0, 1, 137], True),
    ],
)
def test_codes(reply, codes, ok) -> None:
    c = judge.check_code("x", SENT, _dg(reply) if reply else None, codes)
    assert c.ok is ok
    assert ("no reply" in c.observed) is (reply is None)


@pytest.mark.parametrize(
    ("tnc", "verdicts"),
    [
        (TNC_OK, [True, True, True]),
        (bytes((149, 4, 1, 0, 0, 0)), [False, False, True]),  # the bad-tnc-format fault's octets
        (bytes((149, 2, 0, 7)), [True, True, False]),
        (bytes((149, 0)), [False, False, False]),
    ],
)
def test_tnc_format_reads_octets(tnc: bytes, verdicts: list[bool]) -> None:
    checks = judge.check_tnc_format(_dg(_reply(before=tnc)))
    assert [c.ok for c in checks] == verdicts
    assert [c.what for c in checks] == ["TNC Length", "TNC Sub-Type", "TNC Reserved"]


def test_tnc_absent() -> None:
    d = _dg(_reply(before=b""))
    assert judge.check_tnc_present("x", d).ok is False
    assert judge.check_tnc_format(d)[0].ok is None  # nothing to judge: inconclusive, not pass
    assert judge.check_tnc_present("x", _dg(_reply())).ok is True


@pytest.mark.parametrize(
    ("reply", "position_ok", "auth_ok"),
    [
        (_reply(), True, True),
        (_reply(before=b"", after=TNC_OK), False, True),  # TNC after the authenticator: not covered
        (_reply(key=b"wrong-key"), True, False),
        (_reply(auth=False), False, False),
    ],
)
def test_tnc_authenticated(reply: bytes, position_ok: bool, auth_ok: bool) -> None:
    d = _dg(reply)
    assert judge.check_tnc_before_auth(d).ok is position_ok
    assert judge.check_reply_authenticator(d, MN).ok is auth_ok


def test_reply_identification_rule() -> None:
    req = _req()
    own_time = (0xE100_0000 << 32) | (IDENT & 0xFFFFFFFF)
    good = judge.check_reply_identification(req, SENT, _dg(_reply(code=133, ident=own_time)))
    assert [c.ok for c in good] == [True, True]
    copied = judge.check_reply_identification(req, SENT, _dg(_reply(code=133, ident=IDENT)))
    assert [c.ok for c in copied] == [True, False]  # the bad-reply-identification fault
    mangled = judge.check_reply_identification(req, SENT, _dg(_reply(code=133, ident=own_time ^ 1)))
    assert mangled[0].ok is False


@pytest.mark.parametrize(("granted", "ok"), [(300, True), (30, True), (0, True), (301, False), (600, False)])
def test_lifetime_at_most_requested(granted: int, ok: bool) -> None:
    assert judge.check_lifetime_at_most(_req(), SENT, _dg(_reply(lifetime=granted))).ok is ok


@pytest.mark.parametrize(("lifetime", "ok"), [(0, True), (1800, False)])
def test_deregistration_lifetime(lifetime: int, ok: bool) -> None:
    assert judge.check_lifetime_zero(SENT, _dg(_reply(lifetime=lifetime))).ok is ok


def test_udp_tunnel_reply() -> None:
    good = bytes(MIPExtUDPTunnelReply(code=0, keepalive=110))
    assert [c.ok for c in judge.check_udp_tunnel_reply(_dg(_reply(before=good)))] == [True, True]
    declined = bytes(MIPExtUDPTunnelReply(code=64))
    assert judge.check_udp_tunnel_reply(_dg(_reply(before=declined)))[0].ok is False
    assert judge.check_udp_tunnel_reply(_dg(_reply(before=b"")))[0].ok is False
    late = judge.check_udp_tunnel_reply(_dg(_reply(before=b"", after=good)))
    assert [c.ok for c in late] == [True, False]


def test_tunnel_data_inner_packet() -> None:
    inner = icmp_echo("127.1.0.1", "127.0.0.1", b"marker")
    d = _dg(tunnel_data(inner))
    assert judge.tunnelled_ip(d) == inner
    assert judge.inner_addresses(inner) == ("127.1.0.1", "127.0.0.1")
    assert judge.tunnelled_ip(_dg(b"\x04\x2f\x00\x00" + inner)) is None  # GRE next header: not IP-in-IP
    assert judge.tunnelled_ip(_dg(_reply())) is None


def test_describe() -> None:
    assert judge.describe(None) == "no reply"
    assert "code 131 (mobile node failed authentication)" in judge.describe(_dg(_reply(code=131)))
    assert MIPExtTNC  # layers export the TNC class used by the suite


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("dropped source=127.0.0.66:40000 reason=...", True),
        ("untrusted request from 127.0.0.66", True),
        ("source=127.0.0.661:1", False),
        ("source=1127.0.0.66:1", False),
        ("source=127.0.0.6:1", False),
    ],
)
def test_log_lines_name_whole_addresses(line: str, ok: bool) -> None:
    from mipcheck.suites.ha.cases_rfc5265 import names_address

    assert names_address(line, "127.0.0.66") is ok
