"""Names of Mobile IPv4 numbers for the dissector, without importing Scapy.

The tables are :mod:`mipcheck.proto.numbers` (plain data, no Scapy: importing
the layers costs about 0.4 s, more than the whole budget of the fast path),
the same ones the Scapy layers re-export, so both dissection paths name
things the same way.
"""

from __future__ import annotations

from mipcheck.proto import numbers

MIP_PORT: int = numbers.MIP_PORT
NATT_PORT = 4500  # RFC 3948 2.1: UDP-encapsulated ESP and IKE share port 4500
IKE_PORT = 500  # RFC 3947 / RFC 2409

# Layer names used in records ("layers" list), in the order packets nest them.
MESSAGE_LAYER: dict[int, str] = {
    numbers.MSG_RRQ: "RRQ",
    numbers.MSG_RRP: "RRP",
    numbers.MSG_TUNNEL_DATA: "Tunnel Data",
    numbers.MSG_REVOCATION: "Revocation",
    numbers.MSG_REVOCATION_ACK: "Revocation Ack",
}
AGENT_ADVERTISEMENT = "Agent Advertisement"
AGENT_SOLICITATION = "Agent Solicitation"
MIP_LAYERS = frozenset(MESSAGE_LAYER.values()) | {AGENT_ADVERTISEMENT, AGENT_SOLICITATION, "MIP"}

MESSAGE_NAMES: dict[int, str] = {t: name for t, (name, _rfc) in numbers.MESSAGE_TYPES.items()}

# Short extension labels for the one-line summary; JSON uses the full names.
EXTENSION_LABELS: dict[int, str] = {
    numbers.EXT_MN_HA_AUTH: "MN-HA Auth",
    numbers.EXT_MN_FA_AUTH: "MN-FA Auth",
    numbers.EXT_FA_HA_AUTH: "FA-HA Auth",
    numbers.EXT_GEN_AUTH: "Gen Auth",
    numbers.EXT_CVSE: "CVSE",
    numbers.EXT_UDP_TUNNEL_REPLY: "UDP Tunnel Reply",
    numbers.EXT_NAI: "NAI",
    numbers.EXT_MN_FA_CHALLENGE: "Challenge",
    numbers.EXT_NVSE: "NVSE",
    numbers.EXT_REVOCATION_SUPPORT: "Revocation Support",
    numbers.EXT_UDP_TUNNEL_REQUEST: "UDP Tunnel Request",
    numbers.EXT_MESSAGE_STRING: "Message String",
    numbers.EXT_TNC: "TNC",
}


def extension_name(ext_type: int) -> str:
    entry = numbers.EXTENSION_TYPES.get(ext_type)
    return entry[0] if entry else f"Unassigned extension {ext_type}"


def extension_label(ext_type: int) -> str:
    label = EXTENSION_LABELS.get(ext_type)
    if label is None:
        label = EXTENSION_LABELS[ext_type] = f"ext {ext_type}"
    return label


def reply_code_name(code: int) -> str:
    return numbers.reply_code_name(code)
