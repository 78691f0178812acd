"""``mipcheck overhead``: RFC 5265 5.2 figures measured on built packets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from scapy.layers.inet import IP

from mipcheck.capture import overhead as oh
from mipcheck.capture import scenarios as s
from mipcheck.capture.layered import make_sa

RFC_FIGURES = {"f": 0, "c": 20, "fvc": 77, "cvc": 97, "cvc-natt": 129}  # RFC 5265 5.2


@pytest.mark.parametrize("cipher", ["3des-cbc", "des-cbc"])
def test_rfc_5265_figures_come_out_of_the_built_packets(cipher):
    results = {r.mode: r for r in oh.measure_all(cipher)}
    assert {mode: r.total for mode, r in results.items()} == RFC_FIGURES
    for r in results.values():
        assert r.packet - r.payload == r.total == sum(layer.octets for layer in r.layers)
    esp = next(layer for layer in results["cvc"].layers if layer.name.startswith("ESP"))
    # 20 (new IP header) + 4+4+8 (SPI, sequence, IV) + 7+2 (padding, pad length, next header) + 12 (ICV)
    assert esp.octets == 57
    assert esp.detail == {
        "ip": 20,
        "spi_and_sequence": 8,
        "iv": 8,
        "padding": 7,
        "pad_length_and_next_header": 2,
        "icv": 12,
    }
    natt = results["cvc-natt"]
    # NAT traversal adds 12 (MIP), 8 (IPsec), 12 (MIP) octets over cvc
    assert [layer.octets for layer in natt.layers] == [20 + 12, 57 + 8, 20 + 12]


def test_aes_cbc_has_a_16_octet_block_and_iv():
    results = {r.mode: r for r in oh.measure_all("aes-cbc")}
    esp = next(layer for layer in results["fvc"].layers if layer.name.startswith("ESP"))
    assert esp.detail["iv"] == 16 and esp.detail["padding"] == 15  # worst case for a 16-octet block
    assert {m: r.total for m, r in results.items()} == {"f": 0, "c": 20, "fvc": 93, "cvc": 113, "cvc-natt": 145}


@pytest.mark.parametrize("payload", [28, 100, 1000, 1003])
def test_given_payload_pads_to_the_cipher_block(payload):
    for cipher, block, iv in (("3des-cbc", 8, 8), ("aes-cbc", 16, 16)):
        for r in oh.measure_all(cipher, payload):
            assert r.payload == payload
            for layer in r.layers:
                if layer.name.startswith("ESP"):
                    inner = payload + (20 if r.mode in ("fvc", "cvc") else 32)
                    assert layer.detail["padding"] == -(inner + 2) % block
                    assert layer.detail["iv"] == iv


def test_the_measured_esp_packet_really_decrypts():
    spec = oh.esp_spec("3des-cbc")
    user = s.user_packet(size=83)
    inner = s.ipip(s.NET.vpn_tia, s.NET.i_ha, user)
    packet = s.esp_tunnel(inner, spec, s.NET.x_hoa, s.NET.vpn_gw, 1)
    plain = make_sa(spec).decrypt(IP(bytes(packet)))
    assert bytes(plain.payload) == bytes(inner)


def test_cli_table_and_json():
    def run(*a):
        return subprocess.run([sys.executable, "-m", "mipcheck.cli", "overhead", *a], capture_output=True, text=True)

    doc = json.loads(run("--json").stdout)
    assert {m["mode"]: m["total"] for m in doc["modes"]} == RFC_FIGURES
    assert doc["block"] == 8 and doc["iv"] == 8 and doc["integrity"] == "hmac-sha1-96"
    table = run()
    assert table.returncode == 0 and "129" in table.stdout and "97" in table.stdout
    bad = run("--payload", "3")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
