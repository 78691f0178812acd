"""Link-layer header types of pcap/pcapng (tcpdump.org LINKTYPE_* values) the dissector knows."""

from __future__ import annotations

NULL = 0  # BSD loopback: 4-octet address family in host byte order
ETHERNET = 1
LINUX_SLL = 113  # Linux cooked capture v1, 16-octet header, protocol at offset 14
LINUX_SLL2 = 276  # Linux cooked capture v2, 20-octet header, protocol at offset 0
RAW = frozenset((101, 228, 12, 14))  # LINKTYPE_RAW, LINKTYPE_IPV4, and DLT_RAW as some systems write it
BSD_AF_INET6 = frozenset((10, 24, 28, 30))  # AF_INET6 differs between Linux and the BSDs

NAMES = {
    NULL: "BSD loopback",
    ETHERNET: "Ethernet",
    LINUX_SLL: "Linux cooked (SLL)",
    LINUX_SLL2: "Linux cooked v2 (SLL2)",
    101: "raw IP",
    228: "raw IPv4",
}
