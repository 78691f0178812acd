"""Assigned numbers of Mobile IPv4 (IANA "Mobile IPv4 Numbers" registry) and fixed field values.

One table per number space, so the codec, the Scapy layers, the dissector and
``mipcheck layers`` name things the same way. Each entry cites the RFC that
defines it. Plain data: importing it costs nothing (no Scapy).
"""

from __future__ import annotations

MIP_PORT = 434  # RFC 5944 section 1.8: UDP port for Mobile IP control messages

INFINITE_LIFETIME = 0xFFFF  # RFC 5944 3.3: a Lifetime of all ones means infinity

# Registration Request flag bits, the octet after the type (RFC 5944 3.3, RFC 3024).
FLAG_S = 0x80  # simultaneous bindings
FLAG_B = 0x40  # broadcast datagrams
FLAG_D = 0x20  # decapsulation by the mobile node (co-located care-of address)
FLAG_M = 0x10  # minimal encapsulation
FLAG_G = 0x08  # GRE encapsulation
FLAG_R = 0x04  # 'r': sent as zero, ignored on reception
FLAG_T = 0x02  # reverse tunnelling requested (RFC 3024)
FLAG_X = 0x01  # 'x': sent as zero, ignored on reception
#: The same bits as letters, most significant first ('r' and 'x' are the reserved bits).
RRQ_FLAG_LETTERS = ("S", "B", "D", "M", "G", "r", "T", "x")

# Message types (UDP 434, first octet).
MSG_RRQ = 1  # RFC 5944 3.3
MSG_RRP = 3  # RFC 5944 3.4
MSG_TUNNEL_DATA = 4  # RFC 3519 3.3
MSG_REVOCATION = 7  # RFC 3543 3.1
MSG_REVOCATION_ACK = 15  # RFC 3543 3.2

MESSAGE_TYPES: dict[int, tuple[str, str]] = {
    MSG_RRQ: ("Registration Request", "RFC 5944"),
    MSG_RRP: ("Registration Reply", "RFC 5944"),
    MSG_TUNNEL_DATA: ("Tunnel Data", "RFC 3519"),
    MSG_REVOCATION: ("Registration Revocation", "RFC 3543"),
    MSG_REVOCATION_ACK: ("Revocation Acknowledgment", "RFC 3543"),
}

# Extensions of registration messages (RFC 5944 1.9: 0-127 non-skippable,
# 128-255 skippable).
EXT_MN_HA_AUTH = 32
EXT_MN_FA_AUTH = 33
EXT_FA_HA_AUTH = 34
EXT_GEN_AUTH = 36
EXT_CVSE = 38
EXT_UDP_TUNNEL_REPLY = 44
EXT_NAI = 131
EXT_MN_FA_CHALLENGE = 132
EXT_NVSE = 134
EXT_REVOCATION_SUPPORT = 137
EXT_UDP_TUNNEL_REQUEST = 144
EXT_MESSAGE_STRING = 145
EXT_TNC = 149

EXTENSION_TYPES: dict[int, tuple[str, str]] = {
    EXT_MN_HA_AUTH: ("Mobile-Home Authentication", "RFC 5944"),
    EXT_MN_FA_AUTH: ("Mobile-Foreign Authentication", "RFC 5944"),
    EXT_FA_HA_AUTH: ("Foreign-Home Authentication", "RFC 5944"),
    EXT_GEN_AUTH: ("Generalized Mobile IP Authentication", "RFC 3012"),
    37: ("Critical Vendor/Organization Specific (deprecated number)", "RFC 3025"),
    EXT_CVSE: ("Critical Vendor/Organization Specific (CVSE)", "RFC 3115"),
    EXT_UDP_TUNNEL_REPLY: ("UDP Tunnel Reply", "RFC 3519"),
    45: ("FA Error", "RFC 4636"),
    46: ("GFA IP Address", "RFC 4857"),
    47: ("PMIPv4 Non-skippable", "RFC 5563"),
    130: ("Encapsulating Delivery Style", "RFC 3024"),
    EXT_NAI: ("Mobile Node NAI", "RFC 2794"),
    EXT_MN_FA_CHALLENGE: ("MN-FA Challenge", "RFC 3012"),
    EXT_NVSE: ("Normal Vendor/Organization Specific (NVSE)", "RFC 3115"),
    136: ("NAI Carrying", "RFC 3846"),
    EXT_REVOCATION_SUPPORT: ("Revocation Support", "RFC 3543"),
    139: ("Dynamic HA", "RFC 4433"),
    EXT_UDP_TUNNEL_REQUEST: ("UDP Tunnel Request", "RFC 3519"),
    EXT_MESSAGE_STRING: ("Message String", "RFC 4917"),
    148: ("Mobile Network", "RFC 5177"),
    EXT_TNC: ("Trusted Networks Configured (TNC)", "RFC 5265"),
    255: ("Skippable Extension for Experimental Use", "RFC 4064"),
}

# Sub-types of the Generalized Authentication extension (36), RFC 3012 and later.
GEN_AUTH_SUBTYPES: dict[int, str] = {
    1: "MN-AAA Authentication",
    2: "FA-FA Authentication",
    3: "MN-GFA Authentication",
    4: "MN-PAR Authentication",
}

# Encapsulation / Next Header values used by RFC 3519 (tunnel data, UDP Tunnel Request).
NEXT_HEADERS: dict[int, str] = {4: "IP-in-IP", 47: "GRE", 55: "Minimal Encapsulation"}

UDP_TUNNEL_REPLY_CODES: dict[int, str] = {
    0: "will do tunneling",
    64: "tunneling declined, reason unspecified",
}

# Registration Reply codes (RFC 5944 3.4 and the IANA registry).
REPLY_CODES: dict[int, str] = {
    0: "registration accepted",
    1: "registration accepted, but simultaneous mobility bindings unsupported",
    # denied by the foreign agent
    64: "reason unspecified (FA)",
    65: "administratively prohibited (FA)",
    66: "insufficient resources (FA)",
    67: "mobile node failed authentication (FA)",
    68: "home agent failed authentication (FA)",
    69: "requested Lifetime too long (FA)",
    70: "poorly formed Request (FA)",
    71: "poorly formed Reply (FA)",
    72: "requested encapsulation unavailable (FA)",
    73: "reserved and unavailable (FA)",
    74: "requested reverse tunnel unavailable (FA)",
    75: "reverse tunnel is mandatory and 'T' bit not set (FA)",
    76: "mobile node too distant (FA)",
    77: "invalid care-of address (FA)",
    78: "registration timeout (FA)",
    79: "delivery style not supported (FA)",
    80: "home network unreachable (FA)",
    81: "home agent host unreachable (FA)",
    82: "home agent port unreachable (FA)",
    88: "home agent unreachable (FA)",
    89: "vendor-specific reason (FA)",
    90: "non-zero HA address required (FA)",
    96: "non-zero home address required (FA)",
    97: "missing NAI (FA)",
    98: "missing home agent (FA)",
    99: "missing home address (FA)",
    100: "unable to interpret CVSE sent by MN (FA)",
    101: "unable to interpret CVSE sent by HA (FA)",
    104: "unknown challenge (FA)",
    105: "missing challenge (FA)",
    106: "stale challenge (FA)",
    107: "missing MN-FA key generation nonce reply extension (FA)",
    108: "MN failed AAA authentication (FA)",
    109: "HA sent wrong challenge in reply (FA)",
    127: "error code for experimental use (FA)",
    # denied by the home agent
    128: "reason unspecified",
    129: "administratively prohibited",
    130: "insufficient resources",
    131: "mobile node failed authentication",
    132: "foreign agent failed authentication",
    133: "registration Identification mismatch",
    134: "poorly formed Request",
    135: "too many simultaneous mobility bindings",
    136: "unknown home agent address",
    137: "requested reverse tunnel unavailable",
    138: "reverse tunnel is mandatory and 'T' bit not set",
    139: "requested encapsulation unavailable",
    140: "unable to interpret CVSE sent by MN",
    141: "unable to interpret CVSE sent by FA",
    142: "UDP encapsulation unavailable",
    143: "register with redirected HA",
    144: "MN failed AAA authentication",
    149: "PMIP unsupported",
    150: "PMIP disallowed",
    192: "error code for experimental use (HA)",
}


def reply_code_name(code: int) -> str:
    return REPLY_CODES.get(code, f"unassigned code {code}")


def reply_accepted(code: int) -> bool:
    """RFC 5944 3.4: codes 0-63 mean the registration was accepted."""
    return 0 <= code < 64


# ICMP Router Discovery extensions used by agent advertisements (RFC 5944 2.1).
AGENT_EXT_PADDING = 0
AGENT_EXT_MOBILITY = 16
AGENT_EXT_PREFIX_LENGTHS = 19
AGENT_EXT_CHALLENGE = 24

AGENT_EXTENSION_TYPES: dict[int, tuple[str, str]] = {
    AGENT_EXT_PADDING: ("One-byte Padding", "RFC 5944"),
    AGENT_EXT_MOBILITY: ("Mobility Agent Advertisement", "RFC 5944"),
    AGENT_EXT_PREFIX_LENGTHS: ("Prefix-Lengths", "RFC 5944"),
    AGENT_EXT_CHALLENGE: ("Challenge", "RFC 3012"),
}

ICMP_ROUTER_ADVERTISEMENT = 9
ICMP_ROUTER_SOLICITATION = 10

IPPROTO_IPIP = 4
IPPROTO_GRE = 47
IPPROTO_MINENC = 55  # RFC 2004


def is_skippable(ext_type: int) -> bool:
    """RFC 5944 1.9: an unrecognised extension of type 128-255 is skipped."""
    return ext_type >= 128
