"""Golden captures: reproducible, read by tshark without a malformed packet, layered as RFC 5265 draws them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mipcheck.capture.dissector import Dissector, records
from mipcheck.capture.keys import load_keys_file

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"
KEYS = PCAPS / "keys.toml"


def _generator():
    spec = importlib.util.spec_from_file_location("make_pcaps", PCAPS / "make_pcaps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_pcaps"] = module
    spec.loader.exec_module(module)
    return module


make_pcaps = _generator()
ALL = sorted(make_pcaps.CAPTURES)
WELL_FORMED = [name for name in ALL if name != "malformed.pcap"]

needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark (the independent oracle) is not installed"
)

# Wireshark's names for the ESP algorithms of the key file (its esp_sa UAT)
WS_CIPHERS = {
    "3des-cbc": "TripleDES-CBC [RFC2451]",
    "aes-cbc": "AES-CBC [RFC3602]",
    "des-cbc": "DES-CBC [RFC2405]",
    "null": "NULL",
}
WS_INTEGRITY = {"hmac-sha1-96": "HMAC-SHA-1-96 [RFC2404]", "hmac-md5-96": "HMAC-MD5-96 [RFC2403]", "null": "NULL"}


def tshark_esp_options() -> list[str]:
    opts = ["-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE"]
    for sa in load_keys_file(str(KEYS)).esp.values():
        entry = (
            f'"IPv4","*","*","0x{sa.spi:08x}","{WS_CIPHERS[sa.encryption]}","0x{sa.encryption_key.hex()}",'
            f'"{WS_INTEGRITY[sa.authentication]}","0x{sa.authentication_key.hex()}"'
        )
        opts += ["-o", f"uat:esp_sa:{entry}"]
    return opts


def tshark_fields(path: Path, *fields: str, decrypt: bool = True) -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(path), *(tshark_esp_options() if decrypt else []), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def dissect(name: str) -> list[dict]:
    return list(records(str(PCAPS / name), Dissector(load_keys_file(str(KEYS)))))


def test_regenerating_gives_byte_identical_files(tmp_path):
    written = make_pcaps.write_all(tmp_path)
    assert sorted(p.name for p in written) == ALL
    for path in written:
        assert path.read_bytes() == (PCAPS / path.name).read_bytes(), f"{path.name} differs from pcaps/{path.name}"


def test_readme_lists_every_capture_and_the_keys():
    readme = (PCAPS / "README.md").read_text()
    for name in ALL:
        assert name in readme
    for sa in load_keys_file(str(KEYS)).esp.values():
        assert sa.encryption_key.hex() in readme and sa.authentication_key.hex() in readme
    for key in load_keys_file(str(KEYS)).mip.values():
        assert key.key.hex() in readme


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("name", WELL_FORMED)
def test_tshark_reads_each_capture_without_malformed_packets_or_errors(name):
    rows = tshark_fields(PCAPS / name, "frame.number", "_ws.malformed", "_ws.expert.severity", "esp.icv_good")
    assert rows, "tshark read no packet"
    error = "8388608"  # PI_ERROR
    for number, malformed, severity, icv in rows:
        assert not malformed, f"{name} frame {number}: tshark finds it malformed"
        assert error not in severity.split(","), f"{name} frame {number}: tshark reports an error"
        assert "0" not in icv.split(","), f"{name} frame {number}: ESP ICV check failed in tshark"


@needs_tshark
@pytest.mark.tshark
def test_tshark_also_finds_the_broken_packets_broken():
    ours = {r["frame"] for r in dissect("malformed.pcap") if r["errors"]}
    theirs = {
        int(n) for n, malformed in tshark_fields(PCAPS / "malformed.pcap", "frame.number", "_ws.malformed") if malformed
    }
    assert theirs, "tshark flags nothing: the capture no longer holds broken packets"
    assert theirs <= ours, f"tshark flags frames {sorted(theirs - ours)} that mipcheck does not"


# RFC 5265 appendix A, packet by packet: headers (ESP trailer omitted) and the addresses under each IP header.
CO, XHA, XHOA, VPN, TIA, IHA, HOA, CN = (
    "192.0.2.10",
    "198.51.100.1",
    "198.51.100.50",
    "198.51.100.2",
    "10.99.0.50",
    "10.20.0.1",
    "10.20.0.50",
    "203.0.113.7",
)
APPENDIX_A = [
    ("{1a}", ["IP", "IP", "UDP", "IKE"], [(CO, XHA), (XHOA, VPN)]),
    ("{2a}", ["IP", "IP", "ESP", "IP", "UDP", "RRQ"], [(CO, XHA), (XHOA, VPN), (TIA, IHA)]),
    ("{2b}", ["IP", "ESP", "IP", "UDP", "RRQ"], [(XHOA, VPN), (TIA, IHA)]),
    ("{2c}", ["IP", "UDP", "RRQ"], [(TIA, IHA)]),
    ("{3a}", ["IP", "UDP"], [(HOA, CN)]),
    ("{3b}", ["IP", "IP", "ESP", "IP", "IP", "UDP"], [(CO, XHA), (XHOA, VPN), (TIA, IHA), (HOA, CN)]),
    ("{3c}", ["IP", "ESP", "IP", "IP", "UDP"], [(XHOA, VPN), (TIA, IHA), (HOA, CN)]),
    ("{3d}", ["IP", "IP", "UDP"], [(TIA, IHA), (HOA, CN)]),
    ("{3e}", ["IP", "UDP"], [(HOA, CN)]),
    (
        "{3b} NAT",
        ["IP", "UDP", "Tunnel Data", "IP", "UDP", "ESP", "IP", "UDP", "Tunnel Data", "IP", "UDP"],
        [(CO, XHA), (XHOA, VPN), (TIA, IHA), (HOA, CN)],
    ),
]
# tshark's protocol names for the same headers
TSHARK_NAMES = {"ip": "IP", "udp": "UDP", "esp": "ESP", "isakmp": "IKE", "mip": "MIP"}


def test_appendix_a_packets_have_the_layers_the_rfc_draws():
    got = dissect("rfc5265-appendix-a.pcapng")
    assert len(got) == len(APPENDIX_A)
    for record, (label, layers, addresses) in zip(got, APPENDIX_A, strict=True):
        assert record["layers"] == layers, label
        assert [(ip["src"], ip["dst"]) for ip in record["ip"]] == addresses, label
        assert not record["errors"], label
    ports = {label: (r["sport"], r["dport"]) for r, (label, _l, _a) in zip(got, APPENDIX_A, strict=True)}
    assert ports["{1a}"] == (500, 500) and ports["{2a}"][1] == 434 and ports["{2c}"][1] == 434
    nat = got[-1]
    natt_udp = [lay for lay in nat["layers"] if lay == "UDP"]
    assert len(natt_udp) == 4 and nat["esp"][0]["decrypted"]


@needs_tshark
@pytest.mark.tshark
def test_tshark_sees_the_same_layer_order_in_appendix_a():
    rows = tshark_fields(PCAPS / "rfc5265-appendix-a.pcapng", "frame.protocols", "ip.src", "ip.dst")
    for (protocols, src, dst), (label, layers, addresses) in zip(rows, APPENDIX_A, strict=True):
        theirs = [TSHARK_NAMES[p] for p in protocols.split(":") if p in TSHARK_NAMES]
        ours = ["MIP" if lay in ("RRQ", "Tunnel Data") else lay for lay in layers]
        assert theirs == ours, f"{label}: tshark {protocols}"
        assert list(zip(src.split(","), dst.split(","), strict=True)) == addresses, label


ACCESS_MODES = {
    "access-mode-c.pcap": [
        ["Ethernet", "IP", "UDP", "RRQ"],
        ["Ethernet", "IP", "UDP", "RRP"],
        ["Ethernet", "IP", "IP", "UDP"],
        ["Ethernet", "IP", "IP", "UDP"],
    ],
    "access-mode-cvc.pcap": [
        ["SLL", "IP", "UDP", "RRQ"],
        ["SLL", "IP", "UDP", "RRP"],
        ["SLL", "IP", "IP", "ESP", "IP", "UDP", "RRQ"],
        ["SLL", "IP", "IP", "ESP", "IP", "UDP", "RRP"],
        ["SLL", "IP", "IP", "ESP", "IP", "IP", "UDP"],
        ["SLL", "IP", "IP", "ESP", "IP", "IP", "UDP"],
    ],
    "access-mode-fvc.pcapng": [
        ["SLL2", "IP", "Agent Advertisement"],
        ["SLL2", "IP", "UDP", "RRQ"],
        ["SLL2", "IP", "UDP", "RRP"],
        ["SLL2", "IP", "ESP", "IP", "UDP", "RRQ"],
        ["SLL2", "IP", "ESP", "IP", "UDP", "RRP"],
        ["SLL2", "IP", "ESP", "IP", "IP", "UDP"],
        ["SLL2", "IP", "ESP", "IP", "IP", "UDP"],
    ],
}


@pytest.mark.parametrize("name", sorted(ACCESS_MODES))
def test_access_mode_captures_register_then_carry_user_data_both_ways(name):
    got = dissect(name)
    assert [r["layers"] for r in got] == ACCESS_MODES[name]
    replies = [r["mip"] for r in got if r["mip"] and r["mip"]["name"] == "Registration Reply"]
    i_ha_replies = [m for m in replies if m["home_agent"] == IHA]
    assert i_ha_replies and all(any(e["type"] == 149 for e in m["extensions"]) for m in i_ha_replies)
    assert all(check["verified"] for r in got if r["mip"] for check in r["mip"]["auth"])
    users = [r for r in got if r["mip"] is None]
    assert [(r["src"], r["dst"]) for r in users] == [(HOA, CN), (CN, HOA)]


def test_access_mode_f_has_both_legs_of_the_foreign_agent():
    got = dissect("access-mode-f.pcap")
    assert got[0]["mip"]["name"] == "Agent Advertisement"
    names = [r["mip"]["name"] if r["mip"] else None for r in got]
    assert names.count("Registration Request") == 2 and names.count("Registration Reply") == 2
    assert [len(r["ip"]) for r in got[5:]] == [1, 2, 2, 1]  # plain on the MN's link, IP-in-IP between FA and i-HA
