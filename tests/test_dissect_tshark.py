"""tshark as the independent oracle: addresses, ports and Mobile IP fields of every golden packet."""

from __future__ import annotations

import shutil

import pytest
from test_pcaps import PCAPS, WELL_FORMED, dissect, tshark_fields

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (the independent oracle) is not installed"),
]

FIELDS = (
    "ip.src",
    "ip.dst",
    "mip.type",
    "mip.homeaddr",
    "mip.haaddr",
    "mip.coa",
    "mip.life",
    "mip.code",
    "mip.ext.type",
    "mip.auth.spi",
    "mip.nai",
)


@pytest.mark.parametrize("name", WELL_FORMED)
def test_every_ip_header_and_mobile_ip_field_matches_tshark(name):
    ours = dissect(name)
    theirs = tshark_fields(PCAPS / name, *FIELDS)
    assert len(ours) == len(theirs)
    compared = 0
    for record, row in zip(ours, theirs, strict=True):
        t = dict(zip(FIELDS, row, strict=True))
        where = f"{name} frame {record['frame']}"
        ips = [(ip["src"], ip["dst"]) for ip in record["ip"]]
        assert list(zip(t["ip.src"].split(","), t["ip.dst"].split(","), strict=True)) == ips, where
        mip = record["mip"]
        if mip is None or mip["name"] in ("Agent Advertisement", "Tunnel Data"):
            continue

        def last(field: str, t: dict = t) -> str:
            return t[field].split(",")[-1]  # innermost occurrence

        assert int(last("mip.type")) == mip["type"], where
        assert last("mip.homeaddr") == mip["home_address"], where
        assert last("mip.haaddr") == mip["home_agent"], where
        assert int(last("mip.life")) == mip["lifetime"], where
        if mip["type"] == 1:
            assert last("mip.coa") == mip["care_of_address"], where
        else:
            assert int(last("mip.code")) == mip["code"], where
        assert [int(x) for x in t["mip.ext.type"].split(",")] == [e["type"] for e in mip["extensions"]], where
        assert [int(x, 16) for x in t["mip.auth.spi"].split(",")] == [a["spi"] for a in mip["auth"]], where
        assert t["mip.nai"] == next((e["nai"] for e in mip["extensions"] if e["type"] == 131), ""), where
        compared += 1
    assert compared or name in ("rfc5265-appendix-a.pcapng",) or not any(r["mip"] for r in ours)


def test_tshark_and_mipcheck_agree_on_udp_ports_of_the_innermost_datagram():
    for name in WELL_FORMED:
        for record, (sport, dport) in zip(
            dissect(name), tshark_fields(PCAPS / name, "udp.srcport", "udp.dstport"), strict=True
        ):
            if record["sport"] is None or "Tunnel Data" in record["layers"] or "ESP" in record["layers"]:
                continue
            assert (int(sport.split(",")[-1]), int(dport.split(",")[-1])) == (record["sport"], record["dport"]), (
                f"{name} {record['frame']}"
            )
