"""The reference foreign agent (RFC 5944 2, 3.7; RFC 3024): agent advertisements, relaying, visitors, delivery.

A sans-IO core (:mod:`mipcheck.fa.core`) with a thin asyncio shell
(:mod:`mipcheck.fa.server`), configured by :mod:`mipcheck.fa.config` and made to
break one rule at a time by :mod:`mipcheck.fa.faults`. Importing this package
imports nothing else.
"""
