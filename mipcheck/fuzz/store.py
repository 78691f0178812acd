"""The campaign database (``campaign.sqlite``): cases run, findings, coverage, runs; resume and merge.

No loss, no repeat after SIGKILL: a case's row is written only once its
reaction is known, in the same transaction as the rest of its batch and the
run's counters (``BEGIN IMMEDIATE`` ... ``COMMIT``; SQLite's journal makes the
batch all or nothing). ``(seed, idx)`` is the primary key, so no case can be
recorded twice. On ``--resume`` the plan (:func:`pending`) is rebuilt from the
rows themselves: every position of the shard's sequence below ``--max-cases``
that has no row is run, and only those. Cases that were in flight or in an
uncommitted batch when the process died have no row, so they run again (their
first sending left no record); committed ones never do.

WAL mode lets ``--jobs`` worker processes commit to one file.

With ``--identification fresh`` what goes on the wire differs from the case's
own octets in the Identification (and the authenticator over it):
``cases.sent_ident`` holds the Identification each request case carried as
sent (16 hex digits; NULL in ``case`` mode and for other messages), to find a
case from a device's log, and a finding's ``sent_hex`` the culprit's octets as sent when
it was reproduced. In an MN campaign (:mod:`mipcheck.fuzz.mn`) every reply case is sent
with the Identification of the request it answers: ``sent_ident`` holds that one.
Databases from before these columns are brought up to date when opened.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from mipcheck.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    seed INTEGER NOT NULL, idx INTEGER NOT NULL, strategy TEXT NOT NULL, kind TEXT NOT NULL,
    reaction TEXT NOT NULL, signed INTEGER NOT NULL, sent_ident TEXT, PRIMARY KEY (seed, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, seed INTEGER NOT NULL, idx INTEGER, case_hex TEXT,
    minimised_hex TEXT, minimised_ops TEXT, pcap TEXT, detail TEXT, found_at REAL, sent_hex TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, elapsed REAL NOT NULL DEFAULT 0, cases INTEGER NOT NULL DEFAULT 0,
    health_checks INTEGER NOT NULL DEFAULT 0, health_failed INTEGER NOT NULL DEFAULT 0
);
CREATE VIEW IF NOT EXISTS coverage AS SELECT kind, reaction, count(*) AS cases FROM cases GROUP BY kind, reaction;
"""
DB_NAME = "campaign.sqlite"
# Columns added since the first schema, appended to tables of older databases (table -> (column, type)).
ADDED_COLUMNS = {"cases": (("sent_ident", "TEXT"),), "findings": (("sent_hex", "TEXT"),)}


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives the process being killed
    db.executescript(SCHEMA)
    _upgrade(db)
    return db


def _columns(db: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA {schema}.table_info({table})")]


def _upgrade(db: sqlite3.Connection) -> None:
    for table, added in ADDED_COLUMNS.items():
        have = _columns(db, table)
        for column, kind in added:
            if column not in have:
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as exc:  # another worker added it first
                    if "duplicate column" not in str(exc):
                        raise


def open_campaign(out: Path, meta: dict[str, str], *, resume: bool) -> sqlite3.Connection:
    """Create ``out/campaign.sqlite``, or reopen it for ``--resume`` after checking it is the same campaign."""
    path = out / DB_NAME
    if path.exists() and not resume:
        raise ConfigError("--out", f"{path} exists: add --resume to continue that campaign, or choose another --out")
    if resume and not path.exists():
        raise ConfigError("--resume", f"no campaign to resume in {out} ({DB_NAME} is missing)")
    out.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    stored = dict(db.execute("SELECT key, value FROM meta"))
    if stored:
        for key, value in meta.items():
            if stored.get(key) != value:
                db.close()
                raise ConfigError("--resume", f"{path} holds a campaign with {key} {stored.get(key)}, not {value}")
    else:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        db.execute("COMMIT")
    return db


class Recorder:
    """One worker's writer: cases in batches, each committed with the run's counters."""

    def __init__(self, db: sqlite3.Connection, batch: int = 512, period: float = 0.5) -> None:
        self.db = db
        self.batch = batch
        self.period = period
        self.rows: list[tuple] = []
        self.last = time.monotonic()
        self.cases = 0
        db.execute("BEGIN IMMEDIATE")
        self.run_id = db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),)).lastrowid
        db.execute("COMMIT")

    def add(self, row: tuple, counters: tuple[float, int, int]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch or time.monotonic() - self.last >= self.period:
            self.commit(counters)

    def commit(self, counters: tuple[float, int, int]) -> None:
        elapsed, checks, failed = counters
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?)", self.rows)
        self.cases += len(self.rows)
        db.execute(
            "UPDATE runs SET elapsed = ?, cases = ?, health_checks = ?, health_failed = ? WHERE id = ?",
            (elapsed, self.cases, checks, failed, self.run_id),
        )
        db.execute("COMMIT")
        self.rows = []
        self.last = time.monotonic()

    def finding(self, row: dict) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT OR IGNORE INTO findings VALUES (:id, :kind, :seed, :index, :case_hex, :minimised_hex, "
            ":minimised_ops, :pcap, :detail, :found_at, :sent_hex)",
            {"sent_hex": None, **row},
        )
        db.execute("COMMIT")

    def known_finding(self, finding_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM findings WHERE id = ?", (finding_id,)).fetchone() is not None


# ------------------------------------------------------------------ resume plan


def committed_positions(db: sqlite3.Connection, seed: int, shard: tuple[int, int]) -> list[int]:
    """Positions j (index = k-1 + j*N) of shard k/N already recorded, sorted."""
    k, total = shard
    rows = db.execute("SELECT idx FROM cases WHERE seed = ? AND idx % ? = ? ORDER BY idx", (seed, total, k - 1))
    return [(idx - (k - 1)) // total for (idx,) in rows]


def pending(done: list[int], limit: int | None) -> tuple[list[int], int]:
    """The positions still to run: the gaps below the highest done one, then every position from ``first_new`` on
    (below ``limit``).
    """
    have = set(done)
    top = (max(done) + 1) if done else 0
    gaps = [j for j in range(top) if j not in have]
    if limit is not None:
        gaps = [j for j in gaps if j < limit]
    return gaps, top


def positions(gaps: list[int], first_new: int, limit: int | None, worker: int, workers: int) -> Iterator[int]:
    """Worker ``worker`` of ``workers``: every workers-th pending position, starting at its own."""
    k = worker
    while True:
        j = gaps[k] if k < len(gaps) else first_new + (k - len(gaps))
        if limit is not None and j >= limit:
            return
        yield j
        k += workers


# ------------------------------------------------------------------ reports


def findings(db: sqlite3.Connection) -> list[dict]:
    rows = db.execute(
        "SELECT id, kind, seed, idx, case_hex, minimised_hex, pcap, detail, minimised_ops, sent_hex FROM findings "
        "ORDER BY found_at, id"
    )
    return [
        {
            "id": r[0],
            "kind": r[1],
            "seed": r[2],
            "index": r[3],
            "case_hex": r[4],
            "minimised_hex": r[5],
            "pcap": r[6],
            "detail": r[7],
            "minimised_ops": json.loads(r[8]) if r[8] else None,
            "sent_hex": r[9],
        }
        for r in rows
    ]


def totals(db: sqlite3.Connection) -> dict:
    cases = db.execute("SELECT count(*) FROM cases").fetchone()[0]
    checks, failed = db.execute(
        "SELECT coalesce(sum(health_checks), 0), coalesce(sum(health_failed), 0) FROM runs"
    ).fetchone()
    coverage = {
        f"{k}/{r}": c for k, r, c in db.execute("SELECT kind, reaction, cases FROM coverage ORDER BY kind, reaction")
    }
    return {"cases": cases, "health_checks": checks, "health_failed": failed, "coverage": coverage}


def merge(sources: Iterable[Path], out: Path) -> sqlite3.Connection:
    """Join campaign databases into ``out/campaign.sqlite`` (cases by (seed, idx), findings by id, runs appended)."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / DB_NAME
    if target.exists():
        raise ConfigError("--out", f"{target} exists; merge into a new folder")
    db = connect(target)
    for i, src in enumerate(sources):
        path = src / DB_NAME if src.is_dir() else src
        if not path.exists():
            raise ConfigError("DIR", f"{src}: no {DB_NAME} there")
        db.execute(f"ATTACH DATABASE ? AS s{i}", (str(path),))
        db.execute("BEGIN IMMEDIATE")
        for table in ("cases", "findings"):  # by name: a source from before a column was added gives NULL for it
            have = set(_columns(db, table, f"s{i}"))
            names = _columns(db, table)
            picked = ", ".join(c if c in have else "NULL" for c in names)
            db.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) SELECT {picked} FROM s{i}.{table}")
        db.execute(
            "INSERT INTO runs (started, elapsed, cases, health_checks, health_failed) SELECT started, elapsed, cases, "
            f"health_checks, health_failed FROM s{i}.runs"
        )
        db.execute(f"INSERT OR IGNORE INTO meta SELECT * FROM s{i}.meta WHERE key = 'seed'")
        db.execute("COMMIT")
        db.execute(f"DETACH DATABASE s{i}")
    return db
