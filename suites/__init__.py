"""Conformance suites and the requirement catalogue (importable as mipcheck.suites)."""
