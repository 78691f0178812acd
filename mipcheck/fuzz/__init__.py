"""Structure-aware fuzzing of home agents (``mipcheck fuzz``).

A case is named by (seed, index) alone: :mod:`.case` derives its random
generator from that pair, :mod:`.strategies` turns it into a message built
with :mod:`mipcheck.proto` and a list of named mutations, :mod:`.sender`
pipelines cases to the target and attributes reactions, :mod:`.health`
checks the target still registers a valid mobile node, :mod:`.triage` finds
and minimises the culprit after a failed check, :mod:`.store` keeps the
campaign in SQLite so that a killed run resumes without loss or repeat, and
:mod:`.campaign` ties them together (workers, shards, progress, reports).

:mod:`.mn` fuzzes mobile nodes the same way: mipcheck plays the device's
i-HA and x-HA and breaks the replies and tunnel data they send it.
"""
