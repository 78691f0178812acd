"""The Mobile IPv4 wire format without Scapy: numbers, extension specs, codec, identifications, keys.

The single source of wire facts. The home agent, the mobile node and the
fast dissector use it directly (they exist to avoid Scapy's cost); the Scapy
layers in :mod:`mipcheck.layers` re-export its numbers and are held to its
extension table by tests. Importing this package imports nothing else.
"""
