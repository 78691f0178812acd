"""An in-memory network with a virtual clock: protocol parties as sans-IO actors, every datagram recorded.

See :mod:`mipcheck.sim.network`. The HA suite runs over it unchanged
(``mipcheck.sim.home_agent.SimLab``), so a scenario with 60-second timers
costs milliseconds; the MN suite, the fuzzer's oracle and the lab reuse it.
"""
