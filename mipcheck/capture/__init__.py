"""Reading, dissecting and analysing captures of Mobile IPv4 traffic.

``reader`` streams pcap/pcapng records, ``fastpath`` decodes the common
registration packets with plain ``struct`` calls, ``layered`` decodes anything
with the Scapy layers (and decrypts ESP), ``dissector`` picks between the two
per packet, ``analysis`` runs the passive RFC 5265 checks and ``overhead``
measures per-layer packet overhead. Modules that need Scapy import it
themselves, so the fast path starts without it.
"""
