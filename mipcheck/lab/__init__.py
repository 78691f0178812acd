"""The RFC 5265 lab: Figure 1 in network namespaces, with a real firewall (nftables), NAT and IPsec (strongSwan).

``topology`` is the address plan as data; ``netns`` drives ``ip`` and works
inside namespaces; ``firewall`` holds the nftables rulesets; ``vpn`` runs
strongSwan's charon with kernel-libipsec; ``control`` is ``up``/``down``/``status``.
See docs/lab.md. Needs root and network namespaces.
"""
