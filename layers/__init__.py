"""Scapy layers for Mobile IPv4 (RFC 5944), its extensions and RFC 5265.

Importing this package binds the layers: UDP port 434 both ways dissects to
Mobile IP messages (ahead of Scapy's own ``scapy.layers.mobileip``), IP
protocol 55 to minimal encapsulation, ICMP types 9 and 10 to agent
advertisement and solicitation.
"""

from __future__ import annotations

from .agent import (
    AGENT_EXTENSION_CLASSES,
    AgentAdvertisement,
    AgentChallenge,
    AgentExtension,
    AgentExtPadding,
    AgentExtUnknown,
    AgentSolicitation,
    MobilityAgentAdvertisement,
    PrefixLengths,
    RouterAddress,
)
from .auth import ALGORITHMS, HMAC_MD5, PREFIX_SUFFIX_MD5, AuthCheck, Key, compute_authenticator
from .extensions import (
    EXTENSION_CLASSES,
    MIPExtAuth,
    MIPExtCVSE,
    MIPExtension,
    MIPExtFAHAAuth,
    MIPExtGenAuth,
    MIPExtMessageString,
    MIPExtMNFAAuth,
    MIPExtMNFAChallenge,
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtNVSE,
    MIPExtRevocationSupport,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MIPExtUnknown,
)
from .identification import (
    identification_time,
    nonce_identification,
    split_nonce_identification,
    timestamp_identification,
)
from .messages import (
    MESSAGE_CLASSES,
    MIPTruncatedMessage,
    MIPUnknownMessage,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAcknowledgment,
    TunnelData,
)
from .minenc import MinimalEncapsulation
from .registry import LayerInfo, known_layers

__all__ = [
    "AGENT_EXTENSION_CLASSES",
    "ALGORITHMS",
    "AgentAdvertisement",
    "AgentChallenge",
    "AgentExtPadding",
    "AgentExtUnknown",
    "AgentExtension",
    "AgentSolicitation",
    "AuthCheck",
    "EXTENSION_CLASSES",
    "HMAC_MD5",
    "Key",
    "LayerInfo",
    "MESSAGE_CLASSES",
    "MIPExtAuth",
    "MIPExtCVSE",
    "MIPExtFAHAAuth",
    "MIPExtGenAuth",
    "MIPExtMNFAAuth",
    "MIPExtMNFAChallenge",
    "MIPExtMNHAAuth",
    "MIPExtMessageString",
    "MIPExtNAI",
    "MIPExtNVSE",
    "MIPExtRevocationSupport",
    "MIPExtTNC",
    "MIPExtUDPTunnelReply",
    "MIPExtUDPTunnelRequest",
    "MIPExtUnknown",
    "MIPExtension",
    "MIPTruncatedMessage",
    "MIPUnknownMessage",
    "MinimalEncapsulation",
    "MobileIPMessage",
    "MobilityAgentAdvertisement",
    "PREFIX_SUFFIX_MD5",
    "PrefixLengths",
    "RegistrationReply",
    "RegistrationRequest",
    "RegistrationRevocation",
    "RevocationAcknowledgment",
    "RouterAddress",
    "TunnelData",
    "compute_authenticator",
    "identification_time",
    "known_layers",
    "nonce_identification",
    "split_nonce_identification",
    "timestamp_identification",
]
