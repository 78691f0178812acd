#!/usr/bin/env python3
"""Fuzz campaign for the capture dissectors: mutated golden frames through every reading path.

Every input goes through the fast path (``fastpath.decode``, ``record_of``,
``summary_of``, with and without keys); every ``--scapy-every``-th also
through the Scapy path (``layered.dissect_frame`` with and without the golden
keys, the ``--tree`` rendering, the summary line, JSON and ``Analyzer.feed``).
An exception, a "dissection failed" error (the safety net caught a bug), or
Scapy log output / a Python warning outside a packet's errors counts as a
finding. Mutants come from tests/test_fuzz_capture_support.py, so the campaign
and the tests share one engine.

    python bench/fuzz_capture.py --inputs 1000000 --seed 1 --scapy-every 50
    python bench/fuzz_capture.py --cli 20000 --seed 1

``--cli N`` instead writes N mutants to captures (one per link type) and runs
every capture-reading command on them in a fresh process, as a user would:
``dissect`` (summary, ``--scapy``, ``--json``, ``--tree``, each with and
without ``--keys``) and ``analyze --keys``. A finding there is an exit status
other than 0 (or 1 from ``analyze`` with a MUST-level finding), anything on
stderr, a traceback, or a frame missing from the output.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_fuzz_capture_support import KEYS_FILE, SITE_PROFILE, mutant, write_capture  # noqa: E402

from mipcheck.capture import fastpath  # noqa: E402
from mipcheck.capture.keys import load_keys_file  # noqa: E402
from mipcheck.capture.record import new_record, summary_line  # noqa: E402


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "mipcheck" in f.filename] or frames
    last = own[-1] if own else None
    return (
        f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno} {last.name}" if last else type(exc).__name__
    )


FRAME_LINE = re.compile(r"^ *(\d+) +-?\d+\.\d{6} ", re.MULTILINE)


def _frames_shown(options: tuple[str, ...], stdout: str) -> list[int]:
    if "--json" in options:
        return [json.loads(line)["frame"] for line in stdout.splitlines()]
    return [int(n) for n in FRAME_LINE.findall(stdout)]


def cli_campaign(inputs: int, seed: int) -> int:
    """Mutants through the real command line, one process per command and capture."""
    rng = random.Random(seed)
    by_link: dict[int, list[tuple[int, bytes]]] = {}
    for _ in range(inputs):
        frame, data = mutant(rng.randrange)
        by_link.setdefault(frame.linktype, []).append((frame.linktype, data))
    keys = ("--keys", str(KEYS_FILE))
    variants = [(), ("--scapy",), ("--json",), ("--tree",)]
    findings = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for linktype, frames in sorted(by_link.items()):
            path = Path(folder) / f"mutants-{linktype}.pcap"
            write_capture(path, frames)
            expected = list(range(1, len(frames) + 1))
            runs = [("dissect", *v, str(path)) for v in variants] + [
                ("dissect", *v, *keys, str(path)) for v in variants
            ]
            runs.append(("analyze", str(path), "--profile", str(SITE_PROFILE), *keys, "--json"))
            for args in runs:
                done = subprocess.run([sys.executable, "-m", "mipcheck.cli", *args], capture_output=True, text=True)
                allowed = (0, 1) if args[0] == "analyze" else (0,)
                if args[0] == "analyze":
                    shown_ok = done.returncode in allowed and json.loads(done.stdout)["packets"] == len(frames)
                else:
                    shown_ok = _frames_shown(args, done.stdout) == expected
                problems = [
                    f"exit {done.returncode}" if done.returncode not in allowed else "",
                    f"stderr: {done.stderr[:200]!r}" if done.stderr else "",
                    "traceback" if "Traceback" in done.stdout + done.stderr else "",
                    "frames missing" if not shown_ok else "",
                ]
                problems = [p for p in problems if p]
                print(
                    f"  {' '.join(args[:-1] if args[0] == 'dissect' else args[:1])} linktype {linktype}, {len(frames)} "
                    f"frames: {'; '.join(problems) or 'ok'}"
                )
                findings += bool(problems)
    seconds = time.perf_counter() - start
    print(f"cli inputs {inputs}  seed {seed}  seconds {seconds:.1f}  findings {findings}")
    return 1 if findings else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scapy-every", type=int, default=50, help="also run the Scapy path on every Nth input (0: never)"
    )
    parser.add_argument("--show", type=int, default=3, help="example inputs to print per finding")
    parser.add_argument(
        "--cli", type=int, default=0, metavar="N", help="run N mutants through the command line instead"
    )
    args = parser.parse_args(argv)
    if args.cli:
        return cli_campaign(args.cli, args.seed)

    from rich.console import Console

    from mipcheck.capture import layered
    from mipcheck.capture.analysis import Analyzer
    from mipcheck.capture.profile import load_profile
    from mipcheck.capture.tree import packet_tree

    ring = load_keys_file(str(KEYS_FILE))
    keys = ring.mip
    esp = layered.EspDecryptor(ring)
    analyzer = Analyzer(load_profile(str(SITE_PROFILE)))
    console = Console(file=io.StringIO(), width=120)
    collect = _Collect()
    logging.getLogger("scapy").addHandler(collect)
    warnings.simplefilter("always")

    rng = random.Random(args.seed)
    choose = rng.randrange
    findings: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    fast_accepted = scapy_runs = 0
    start = time.perf_counter()
    for i in range(args.inputs):
        frame, data = mutant(choose)
        problem = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                decoded = fastpath.decode(data, frame.linktype)
                if decoded is not None:
                    fast_accepted += 1
                    fastpath.record_of(decoded, new_record(1, 0.0, len(data)), keys)
                    fastpath.summary_of(decoded, keys)
                    fastpath.summary_of(decoded, None)
                if args.scapy_every and not i % args.scapy_every:
                    scapy_runs += 1
                    for with_keys in (False, True):
                        record = new_record(i + 1, frame.time, len(data))
                        items = layered.dissect_frame(
                            data,
                            frame.linktype,
                            record,
                            ring if with_keys else None,
                            esp if with_keys else None,
                            tree=True,
                        )
                        summary_line(record, 0.0)
                        console.print(packet_tree(record, items or [], 0.0))
                        json.dumps(record)
                        analyzer.feed(record)
                        failed = [e for e in record["errors"] if e.startswith("dissection failed")]
                        if failed:
                            problem = f"caught by the safety net: {failed[0][:120]}"
            except Exception as exc:  # noqa: BLE001 - the campaign counts them
                problem = _where(exc) + f": {exc}"[:100]
        if problem is None and collect.records:
            problem = f"Scapy log on stderr: {collect.records[0].getMessage()[:100]}"
        if problem is None and caught:
            problem = f"warning outside the record: {caught[0].category.__name__}: {str(caught[0].message)[:100]}"
        collect.records.clear()
        if problem is not None:
            findings[problem] += 1
            shown = examples.setdefault(problem, [])
            if len(shown) < args.show:
                shown.append(f"{frame.capture}#{frame.number} linktype {frame.linktype}: {data.hex()}")
    seconds = time.perf_counter() - start
    analyzer.findings()
    total = sum(findings.values())
    print(f"inputs {args.inputs}  seed {args.seed}  seconds {seconds:.1f}  inputs/s {args.inputs / seconds:,.0f}")
    print(
        f"fast path accepted {fast_accepted}  Scapy path runs {scapy_runs} (x2: with and without keys, tree, JSON, "
        "analyze)"
    )
    print(f"exceptions and leaks found: {total}")
    for problem, count in findings.most_common():
        print(f"  {count:7d}  {problem}")
        for line in examples[problem]:
            print(f"           {line}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
