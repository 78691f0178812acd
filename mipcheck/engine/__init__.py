"""The conformance engine: verdicts, evidence, profiles, the runner and its reports.

Suites (``mipcheck.suites.ha``) describe cases; this package runs them against
a device, records what went over the wire and turns the outcome into reports.
Nothing here knows Mobile IP beyond addresses and ports.
"""
