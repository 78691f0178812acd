#!/usr/bin/env python3
"""Cases per second of ``mipcheck fuzz run`` against the built-in i-HA, health checks on (median of --repeat runs).

Each run is the real command in a fresh process (imports, the home agent's
start and the reports included), ``--health-every 100``; the figure is
``summary.json``'s ``cases_per_s``. With ``--boofuzz-python PY`` (a Python
that has boofuzz installed, e.g. a venv) the same run also measures boofuzz
fuzzing an equivalent Registration Request model (fixed part, NAI, MN-HA
extension) against a built-in i-HA, web UI off, default settings otherwise
(it waits for a reply after each case), and prints the ratio.

    python bench/bench_fuzz.py --cases 30000 --repeat 3
    python bench/bench_fuzz.py --cases 30000 --repeat 3 --boofuzz-python /tmp/boo/bin/python --boofuzz-cases 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOOFUZZ_MODEL = r"""
import sys, time, tempfile, os
from boofuzz import Session, Target, UDPSocketConnection, s_initialize, s_byte, s_word, s_dword, s_qword
from boofuzz import s_static, s_get, s_bytes
port, cases = int(sys.argv[1]), int(sys.argv[2])
s_initialize("rrq")
s_byte(1, name="type", fuzzable=False)
s_byte(0x20, name="flags")
s_word(300, name="lifetime", endian=">")
s_dword(0x7F010001, name="home_address", endian=">")
s_dword(0x7F000001, name="home_agent", endian=">")
s_dword(0x7F000002, name="care_of", endian=">")
s_qword(0xED00378000000000, name="identification", endian=">")
s_byte(131, name="nai_type"); s_byte(20, name="nai_len"); s_bytes(b"fuzz@mipcheck.invalid"[:20], name="nai")
s_byte(32, name="auth_type"); s_byte(20, name="auth_len")
s_dword(0x1001, name="spi", endian=">"); s_bytes(b"\0" * 16, name="authenticator")
db = os.path.join(tempfile.mkdtemp(), "boofuzz.db")
session = Session(target=Target(connection=UDPSocketConnection("127.0.0.1", port, recv_timeout=0.02)),
                  web_port=None, console_gui=False, fuzz_loggers=[], db_filename=db, index_end=cases, sleep_time=0)
session.connect(s_get("rrq"))
t0 = time.monotonic()
session.fuzz()
print(session.num_cases_actually_fuzzed / (time.monotonic() - t0))
"""


def ours(cases: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mipcheck.cli",
                "fuzz",
                "run",
                "-q",
                "--seed",
                str(seed),
                "--max-cases",
                str(cases),
                "--health-every",
                "100",
                "--out",
                tmp,
            ],
            check=True,
        )
        return json.loads((Path(tmp) / "summary.json").read_text())["cases_per_s"]


def boofuzz(python: str, cases: int) -> float:
    lab = subprocess.Popen([sys.executable, "-m", "mipcheck.fuzz.lab"], stdout=subprocess.PIPE)
    try:
        port = int(lab.stdout.readline().split()[2])
        out = subprocess.run(
            [python, "-c", BOOFUZZ_MODEL, str(port), str(cases)], capture_output=True, text=True, check=True
        )
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        lab.terminate()
        lab.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=30000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--boofuzz-python", default=None)
    ap.add_argument("--boofuzz-cases", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs, boo = [], []
    for i in range(args.repeat):
        runs.append(ours(args.cases, seed=100 + i))
        if args.boofuzz_python:
            boo.append(boofuzz(args.boofuzz_python, args.boofuzz_cases))
        time.sleep(0.2)
    result = {"mipcheck_cases_per_s": runs, "mipcheck_median": statistics.median(runs)}
    if boo:
        result |= {
            "boofuzz_cases_per_s": boo,
            "boofuzz_median": statistics.median(boo),
            "ratio": statistics.median(runs) / statistics.median(boo),
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
