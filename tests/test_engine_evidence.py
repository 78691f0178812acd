"""Evidence and transport: datagrams recorded at the tester's sockets become a pcap with real addresses."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mipcheck.engine.evidence import RECEIVED, SENT, Capture, write_pcap
from mipcheck.engine.transport import Endpoint
from mipcheck.engine.verdicts import TesterError


@pytest.fixture
def echo_server():
    """A tiny UDP echo on 127.0.0.1 (the fake device): answers each datagram once, reversed."""
    import threading

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, src = sock.recvfrom(2048)
            except TimeoutError:
                continue
            if data != b"quiet":
                sock.sendto(data[::-1], src)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()
    stop.set()
    t.join()
    sock.close()


def test_send_receive_recorded_with_frames(echo_server, tmp_path: Path) -> None:
    cap = Capture()
    with Endpoint(cap, "127.0.0.2") as ep:
        sent = ep.send(b"hello", echo_server)
        got = ep.receive(1.0)
    assert got is not None and got.payload == b"olleh"
    assert (sent.frame, got.frame) == (1, 2)
    assert sent.direction == SENT and got.direction == RECEIVED
    assert sent.src == ep.local and sent.dst == echo_server and got.src == echo_server
    path = write_pcap(tmp_path / "x.pcap", cap.frames)

    from scapy.layers.inet import IP, UDP
    from scapy.utils import rdpcap

    pkts = rdpcap(str(path))
    assert len(pkts) == 2
    assert pkts[0][IP].src == "127.0.0.2" and pkts[0][IP].dst == "127.0.0.1"
    assert pkts[0][UDP].sport == sent.src[1] and pkts[0][UDP].dport == echo_server[1]
    assert bytes(pkts[0][UDP].payload) == b"hello"
    assert pkts[1][IP].src == "127.0.0.1" and bytes(pkts[1][UDP].payload) == b"olleh"


def test_receive_keeps_unmatched_datagrams(echo_server) -> None:
    cap = Capture()
    with Endpoint(cap, "127.0.0.2") as ep:
        ep.send(b"ab", echo_server)
        ep.send(b"cd", echo_server)
        second = ep.receive(1.0, lambda d: d.payload == b"dc")
        first = ep.receive(1.0, lambda d: d.payload == b"ba")
    assert second is not None and first is not None
    assert len(cap) == 4


def test_silence_is_judged_over_the_window(echo_server) -> None:
    cap = Capture()
    with Endpoint(cap, "127.0.0.2") as ep:
        ep.send(b"quiet", echo_server)
        assert ep.drain(0.1) == []
        ep.send(b"loud", echo_server)
        heard = ep.drain(0.3)
    assert [d.payload for d in heard] == [b"duol"]


def test_bind_failure_is_a_tester_error() -> None:
    cap = Capture()
    with Endpoint(cap, "127.0.0.2") as ep, pytest.raises(TesterError) as info:
        Endpoint(cap, "127.0.0.2", ep.port)
    assert "cannot bind tester source 127.0.0.2" in str(info.value)


def test_empty_capture_is_a_valid_pcap(tmp_path: Path) -> None:
    from scapy.utils import rdpcap

    path = write_pcap(tmp_path / "sub" / "empty.pcap", [])
    assert len(rdpcap(str(path))) == 0
