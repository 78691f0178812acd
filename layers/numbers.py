"""Assigned numbers of Mobile IPv4, re-exported from :mod:`mipcheck.proto.numbers`.

The tables live in the Scapy-free ``mipcheck.proto`` so the home agent, the
mobile node and the fast dissector read the same ones without importing
Scapy; ``mipcheck.layers.numbers`` stays for the layers and their users.
"""

from __future__ import annotations

from mipcheck.proto.numbers import *  # noqa: F403
