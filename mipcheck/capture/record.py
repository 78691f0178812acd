"""The dissection record: one dict per packet, and its one-line summary.

Both dissection paths (``fastpath`` and ``layered``) produce exactly this
shape, so ``--json``, the summary, the filters and ``analyze`` never need to
know which path decoded a packet. Keys::

    frame     1-based number within its file
    time      seconds since the epoch (float)
    length    octets on the wire
    layers    protocol names, outermost first ("Ethernet", "IP", "UDP", "ESP", "RRQ", ...)
    ip        every IPv4 header, outermost first: {"src", "dst", "proto"}
    src, dst  the IP header that carries the innermost Mobile IP message,
              or the innermost IP header when there is none (None without IP)
    sport, dport  the UDP/TCP ports beside src/dst (None without)
    esp       every ESP header met: {"spi", "seq", "decrypted"}
    mip       None, or the innermost Mobile IP message: {"type", "name",
              ["code", "code_name"], "flags", <fixed fields>, "extensions", "auth"}
    errors    what is malformed or truncated, one string each

A record is a plain dict so it serialises to JSON as it is.
"""

from __future__ import annotations

from typing import Any

from .names import MIP_LAYERS, extension_label, numbers

Record = dict[str, Any]

AUTH_TYPES = frozenset(
    (numbers.EXT_MN_HA_AUTH, numbers.EXT_MN_FA_AUTH, numbers.EXT_FA_HA_AUTH, numbers.EXT_GEN_AUTH)
)
TEXT_FIELDS = frozenset(("nai", "text"))  # extension fields that carry UTF-8 text
LINK_LAYERS = frozenset(("Ethernet", "802.1Q", "SLL", "SLL2", "Loopback"))

RRQ_FLAGS = ("S", "B", "D", "M", "G", "r", "T", "x")  # RFC 5944 3.3, most significant bit first
REVOCATION_FLAGS = ("A", "I")  # RFC 3543 3.1
AGENT_FLAGS = ("R", "B", "H", "F", "M", "G", "r", "T", "U", "X", "I")  # RFC 5944 2.1.1 (+3519, 3543, 4857)


def text(value: bytes) -> str:
    """Extension text (NAI, message string) for JSON: UTF-8, undecodable octets escaped."""
    return value.decode("utf-8", "backslashreplace")


def new_record(frame: int, time: float, length: int) -> Record:
    return {
        "frame": frame,
        "time": time,
        "length": length,
        "layers": [],
        "ip": [],
        "src": None,
        "dst": None,
        "sport": None,
        "dport": None,
        "esp": [],
        "mip": None,
        "errors": [],
    }


# -- summary --------------------------------------------------------------


def flag_letters(flags: dict[str, bool]) -> str:
    return "".join(name for name, on in flags.items() if on) or "-"


def extension_list(mip: Record) -> str:
    """`` ext=[NAI, MN-HA Auth(256) ok]``: names, SPI and verdict of authentication extensions."""
    exts = mip.get("extensions") or []
    if not exts:
        return ""
    pending = list(mip.get("auth") or [])
    labels = []
    for ext in exts:
        label = extension_label(ext["type"])
        if ext["type"] in AUTH_TYPES and "spi" in ext:
            label = f"{label}({ext['spi']})"
            for i, check in enumerate(pending):
                if check["type"] == ext["type"] and check["spi"] == ext["spi"]:
                    verdict = check["verified"]
                    if verdict is not None:
                        label += " ok" if verdict else " BAD"
                    del pending[i]
                    break
        labels.append(label)
    return " ext=[" + ", ".join(labels) + "]"


def describe_mip(mip: Record) -> str:
    """Message name and its key fields, as the summary line shows them."""
    t = mip["type"]
    name = mip["name"]
    if name == "Agent Advertisement":
        mobility = next((e for e in mip.get("extensions", []) if e.get("type") == numbers.AGENT_EXT_MOBILITY), None)
        if mobility is None:
            return "Agent Advertisement (no mobility extension)"
        coas = ",".join(mobility.get("care_of_addresses", [])) or "-"
        return (
            f"Agent Advertisement seq={mobility['sequence']} life={mobility['registration_lifetime']} "
            f"flags={flag_letters(mobility['flags'])} CoA={coas}"
        )
    if name == "Agent Solicitation":
        return "Agent Solicitation"
    if "data" in mip:  # unknown type, or shorter than its fixed part: no fields to show
        return f"MIP type {t}"
    exts = extension_list(mip)
    if t == numbers.MSG_RRQ:
        return (
            f"RRQ flags={flag_letters(mip['flags'])} life={mip['lifetime']} HoA={mip['home_address']} "
            f"HA={mip['home_agent']} CoA={mip['care_of_address']} id=0x{mip['identification']:016x}{exts}"
        )
    if t == numbers.MSG_RRP:
        return (
            f"RRP code={mip['code']} ({mip['code_name']}) life={mip['lifetime']} HoA={mip['home_address']} "
            f"HA={mip['home_agent']} id=0x{mip['identification']:016x}{exts}"
        )
    if t == numbers.MSG_TUNNEL_DATA:
        nh = mip["next_header"]
        return f"Tunnel Data next={numbers.NEXT_HEADERS.get(nh, nh)}"
    if t == numbers.MSG_REVOCATION:
        return (
            f"Revocation flags={flag_letters(mip['flags'])} HoA={mip['home_address']} "
            f"HDA={mip['home_domain_address']} FDA={mip['foreign_domain_address']} id={mip['revocation_id']}{exts}"
        )
    if t == numbers.MSG_REVOCATION_ACK:
        return f"Revocation Ack flags={flag_letters(mip['flags'])} HoA={mip['home_address']} id={mip['revocation_id']}{exts}"
    return f"MIP type {t}"


def addresses(record: Record) -> str:
    src, dst = record["src"] or "-", record["dst"] or "-"
    if record["sport"] is None:
        return f"{src} -> {dst}"
    return f"{src}:{record['sport']} -> {dst}:{record['dport']}"


def path(record: Record) -> str:
    """`` [192.0.2.10 -> 198.51.100.1: IP/IP/ESP/IP/UDP/RRQ]``: outermost addresses and the nesting, when tunnelled."""
    ips = record["ip"]
    if len(ips) < 2:
        return ""
    nesting = "/".join(name for name in record["layers"] if name not in LINK_LAYERS)
    return f" [{ips[0]['src']} -> {ips[0]['dst']}: {nesting}]"


def summary_body(record: Record) -> str:
    """Everything of the summary line after frame number and time."""
    mip = record["mip"]
    layers = record["layers"]
    if mip is not None:
        what = describe_mip(mip)
    elif layers:
        what = layers[-1]
        if what == "ESP" and record["esp"]:
            esp = record["esp"][-1]
            what = f"ESP spi=0x{esp['spi']:08x} seq={esp['seq']}"
    else:
        what = "-"
    line = f"{addresses(record)} {what}{path(record)}"
    if record["errors"]:
        line += " !! " + "; ".join(record["errors"])
    return line


def summary_line(record: Record, t0: float) -> str:
    return f"{record['frame']:>6} {record['time'] - t0:11.6f} {summary_body(record)}"


def is_mip_layer(name: str) -> bool:
    return name in MIP_LAYERS
