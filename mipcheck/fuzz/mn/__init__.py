"""Fuzz campaigns against a mobile node (issue 11, item 2): mipcheck plays its i-HA and x-HA and breaks what they send.

A case is a pure function of (seed, index) and the MN profile, as for home
agents (:mod:`mipcheck.fuzz.case`): :mod:`.strategies` turns the case's
generator into a Registration Reply (or a MIP Tunnel Data message) and named
mutations; signed cases carry a valid MN-HA authenticator (the profile's key
of the party that sends it) over the mutated octets. Only the Identification
comes from the device at send time: a reply copies the one of the request it
answers, as a home agent does (:mod:`.cases`).

Each case is a short stateful exchange (:mod:`.wire`): move the device
inside, answer its first request to the i-HA (or the x-HA) with the mutated
reply, or register it validly and then send the mutated tunnel data; then
listen for ``--window`` seconds and name its reaction. :mod:`.health` checks
that the device still registers and answers an ICMP echo through the direct
i-HA tunnel; :mod:`.target` starts, watches and restarts the built-in
reference mobile node or ``--target-cmd``; :mod:`.campaign` runs the cases,
health checks, culprit search and minimisation into the same campaign
database and reports as the home-agent campaign.
"""
