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

from mipcheck.proto.extensions import AUTHENTICATOR_TYPES as AUTH_TYPES

from .names import extension_label, numbers

Record = dict[str, Any]

TEXT_FIELDS = frozenset(("nai", "text"))  # extension fields that carry UTF-8 text
LINK_LAYERS = frozenset(("Ethernet", "802.1Q", "SLL", "SLL2", "Loopback"))

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


def _shown(fields: Record, name: str) -> Any:
    """A field for the summary, or "?" when a damaged message lacks it (the record's errors say why)."""
    value = fields.get(name)
    return "?" if value is None else value


def _id64(fields: Record, name: str) -> str:
    value = fields.get(name)
    return f"0x{value:016x}" if isinstance(value, int) else "?"


def describe_mip(mip: Record) -> str:
    """Message name and its key fields, as the summary line shows them.

    Damaged messages reach here with fields missing (a Mobility Agent
    Advertisement extension too short for its Sequence Number, a reply cut
    inside its fixed part): every field is looked up, never assumed, and a
    missing one shows as "?".
    """
    t = mip.get("type")
    name = mip.get("name")
    if name == "Agent Advertisement":
        extensions = mip.get("extensions") or []
        mobility = next((e for e in extensions if e.get("type") == numbers.AGENT_EXT_MOBILITY), None)
        if mobility is None:
            return "Agent Advertisement (no mobility extension)"
        coas = ",".join(mobility.get("care_of_addresses") or []) or "-"
        return (
            f"Agent Advertisement seq={_shown(mobility, 'sequence')} life={_shown(mobility, 'registration_lifetime')} "
            f"flags={flag_letters(mobility.get('flags') or {})} CoA={coas}"
        )
    if name == "Agent Solicitation":
        return "Agent Solicitation"
    if "data" in mip:  # unknown type, or shorter than its fixed part: no fields to show
        return f"MIP type {t}"
    exts = extension_list(mip)
    flags = flag_letters(mip.get("flags") or {})
    home = _shown(mip, "home_address")
    if t == numbers.MSG_RRQ:
        return (
            f"RRQ flags={flags} life={_shown(mip, 'lifetime')} HoA={home} HA={_shown(mip, 'home_agent')} "
            f"CoA={_shown(mip, 'care_of_address')} id={_id64(mip, 'identification')}{exts}"
        )
    if t == numbers.MSG_RRP:
        return (
            f"RRP code={_shown(mip, 'code')} ({_shown(mip, 'code_name')}) life={_shown(mip, 'lifetime')} HoA={home} "
            f"HA={_shown(mip, 'home_agent')} id={_id64(mip, 'identification')}{exts}"
        )
    if t == numbers.MSG_TUNNEL_DATA:
        nh = mip.get("next_header")
        return f"Tunnel Data next={numbers.NEXT_HEADERS.get(nh, _shown(mip, 'next_header'))}"
    if t == numbers.MSG_REVOCATION:
        return (
            f"Revocation flags={flags} HoA={home} HDA={_shown(mip, 'home_domain_address')} "
            f"FDA={_shown(mip, 'foreign_domain_address')} id={_shown(mip, 'revocation_id')}{exts}"
        )
    if t == numbers.MSG_REVOCATION_ACK:
        return f"Revocation Ack flags={flags} HoA={home} id={_shown(mip, 'revocation_id')}{exts}"
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


def safe_summary_line(record: Record, t0: float) -> str:
    """Summary line that cannot fail: a formatting bug is shown on its packet, and the run goes on."""
    try:
        return summary_line(record, t0)
    except Exception as exc:  # noqa: BLE001 - one bad packet must not end the run
        return (
            f"{record['frame']:>6} {record['time'] - t0:11.6f} (cannot summarise: {type(exc).__name__}: {exc}) "
            f"{record['errors']}"
        )
