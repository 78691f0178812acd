"""Mobile node to home agent over real UDP on loopback (127.0.0.x, free ports)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.server import BackgroundHomeAgent, run_home_agent
from mipcheck.ha.tunnel import echo_request, parse_ipv4
from mipcheck.layers.identification import timestamp_identification
from mipcheck.mn import MNConfig, Registered
from mipcheck.mn.core import RegistrationClient
from mipcheck.mn.transport import UDPClient, register_once
from mipcheck.proto import codec

KEY = b"udp-test-secret-0001"
SPI = 0x4000
HOA = "10.4.0.1"
HOA_NONCE = "10.4.0.2"
TRUSTED = "127.0.0.10"
UNTRUSTED = "127.0.0.66"


def ha_config(**over: object) -> HAConfig:
    kw: dict[str, object] = dict(
        address="127.0.0.1",
        port=0,
        trusted_networks=("127.0.0.0/28",),
        mobile_nodes=(MobileNodeConfig(HOA, SPI, KEY), MobileNodeConfig(HOA_NONCE, SPI, KEY, replay="nonce")),
    )
    kw.update(over)
    return HAConfig(**kw)  # type: ignore[arg-type]


@pytest.fixture
def iha(tmp_path: Path) -> Iterator[BackgroundHomeAgent]:
    with run_home_agent(ha_config(log_file=str(tmp_path / "ha.log")), log_json=True) as ha:
        yield ha


def mn(ha: BackgroundHomeAgent, **over: object) -> MNConfig:
    kw: dict[str, object] = dict(
        home_address=HOA,
        home_agent=ha.address,
        ha_port=ha.port,
        spi=SPI,
        secret=KEY,
        local_address=TRUSTED,
        lifetime=300,
        timeout=0.2,
        attempts=3,
    )
    kw.update(over)
    return MNConfig(**kw)  # type: ignore[arg-type]


def udp_socket(address: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 0))
    s.settimeout(1.0)
    return s


def test_round_trip_with_tnc(iha: BackgroundHomeAgent) -> None:
    r = register_once(mn(iha))
    assert r.outcome == "accepted" and isinstance(r.final, Registered)
    assert r.final.tnc and r.final.lifetime == 300 and r.sent == 1
    rec = iha.wait_for(lambda d: d.get("outcome") == "accepted")
    assert rec["source"] == f"{TRUSTED}:{r.local[1]}" and rec["tnc"] is True
    assert iha.call(lambda core: core.bindings[HOA][0].care_of_address) == TRUSTED


def test_nonce_round_trip_resynchronises(iha: BackgroundHomeAgent) -> None:
    r = register_once(mn(iha, home_address=HOA_NONCE, replay="nonce"))
    assert r.outcome == "accepted" and r.sent == 2
    assert [type(e).__name__ for e in r.events] == ["Resynchronised", "Registered"]


def test_untrusted_source_gets_no_reply_and_is_logged(iha: BackgroundHomeAgent) -> None:
    s = udp_socket(UNTRUSTED)
    try:
        req = codec.build_request(
            0x20, 300, HOA, iha.address, TRUSTED, timestamp_identification(time.time()), auth=(SPI, "hmac-md5", KEY)
        )
        s.sendto(req, (iha.address, iha.port))
        s.settimeout(0.7)
        with pytest.raises(TimeoutError):
            s.recvfrom(2048)
        port = s.getsockname()[1]
    finally:
        s.close()
    rec = iha.wait_for(lambda d: d.get("outcome") == "dropped")
    assert rec is not None and rec["source"] == f"{UNTRUSTED}:{port}" and UNTRUSTED in rec["reason"]
    assert iha.call(lambda core: HOA in core.bindings) is False


def test_reply_goes_to_the_source_port_from_the_home_agent_port(iha: BackgroundHomeAgent) -> None:
    s = udp_socket(TRUSTED)
    try:
        req = codec.build_request(
            0x20, 300, HOA, iha.address, TRUSTED, timestamp_identification(time.time()), auth=(SPI, "hmac-md5", KEY)
        )
        s.sendto(req, (iha.address, iha.port))
        data, (addr, port) = s.recvfrom(2048)
    finally:
        s.close()
    assert (addr, port) == (iha.address, iha.port)  # RFC 5944 3.8.3.1
    rep = codec.parse_reply(data)
    assert rep.code == 0 and [e.type for e in rep.extensions] == [149, 32]


def test_x_ha_answers_any_source_without_tnc() -> None:
    with run_home_agent(ha_config(address="127.0.0.2", role="x-ha", trusted_networks=())) as xha:
        r = register_once(mn(xha, local_address=UNTRUSTED))
        assert r.outcome == "accepted" and r.final.tnc is False


def test_denial_over_udp(iha: BackgroundHomeAgent) -> None:
    r = register_once(mn(iha, home_agent=iha.address, reverse_tunnel=True, local_address="127.0.0.11"))
    assert r.outcome == "accepted"
    with run_home_agent(ha_config(reverse_tunneling=False)) as ha:
        r = register_once(mn(ha, reverse_tunnel=True))
        assert r.outcome == "denied" and r.final.code == 137 and r.final.tnc


def test_deregistration_over_udp(iha: BackgroundHomeAgent) -> None:
    assert register_once(mn(iha)).outcome == "accepted"
    assert register_once(mn(iha), deregister=True).outcome == "deregistered"
    assert iha.call(lambda core: HOA in core.bindings) is False


def test_udp_tunnel_and_keepalive_over_loopback(iha: BackgroundHomeAgent) -> None:
    async def scenario() -> tuple[Registered, bytes]:
        cfg = mn(iha, udp_tunnel=True, care_of_address="10.77.0.5")  # private CoA behind a "NAT"
        udp = await UDPClient.open(cfg, client=RegistrationClient(cfg))
        try:
            res = await udp.register()
            assert isinstance(res.final, Registered)
            udp.send(codec.tunnel_data(echo_request(HOA, iha.address, seq=9)))
            data, _addr = await asyncio.wait_for(udp.proto.queue.get(), 2.0)
            return res.final, data
        finally:
            udp.close()

    reg, data = asyncio.run(scenario())
    assert reg.udp_tunnel == (0, 110)
    assert data[:4] == bytes((4, 4, 0, 0))
    hdr = parse_ipv4(data[4:])
    assert (hdr.src, hdr.dst, data[4 + hdr.ihl]) == (iha.address, HOA, 0)  # ICMP Echo Reply


def test_log_file_has_one_json_line_per_decision_and_no_secret(iha: BackgroundHomeAgent) -> None:
    register_once(mn(iha))
    register_once(mn(iha, secret=b"wrong-key-wrong-key", attempts=1))
    iha.wait_for(lambda d: d.get("code") == 131)
    time.sleep(0.4)  # the log is flushed by the housekeeping tick
    lines = Path(iha.log_path).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["outcome"] for r in records if "outcome" in r] == ["accepted", "denied"]
    text = Path(iha.log_path).read_bytes()
    assert KEY not in text and KEY.hex().encode() not in text and b"wrong-key" not in text


def test_binding_expires_while_serving() -> None:
    with run_home_agent(ha_config()) as ha:
        assert (
            register_once(
                MNConfig(
                    home_address=HOA,
                    home_agent=ha.address,
                    ha_port=ha.port,
                    spi=SPI,
                    secret=KEY,
                    local_address=TRUSTED,
                    lifetime=1,
                )
            ).outcome
            == "accepted"
        )
        rec = ha.wait_for(lambda d: d.get("event") == "expired", timeout=5)
        assert rec is not None and rec["home_address"] == HOA


def test_stop_releases_the_port() -> None:
    ha = run_home_agent(ha_config())
    port = ha.port
    ha.stop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    finally:
        s.close()
