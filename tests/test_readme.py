"""The README's promises hold: its Quick start and its examples run as written."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from mipcheck.cli import cli
from mipcheck.ha.faults import ALL_FAULTS
from mipcheck.mn.faults import FAULTS as MN_FAULTS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_quick_start_is_two_commands_main_job_then_tests() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in re.findall(r"```sh\n(.*?)```", quick, flags=re.S)]
    assert commands == ["pip install . && mipcheck run", "pip install -e '.[test]' && pytest"]


def test_python_example_builds_and_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = _blocks("python")
    monkeypatch.setitem(os.environb, b"MN_HA_SECRET", b"readme-example-key")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert [c.valid for c in scope["checks"]] == [True]
    assert b"readme-example-key" not in bytes(scope["pkt"])


def _example_lines() -> list[list[str]]:
    lines = re.findall(r"^    (?:\S+=\S+ )?mipcheck (.+?)(?:\s{2,}#.*)?$", README, flags=re.M)
    return [shlex.split(line) for line in lines]


def test_examples_name_real_commands_options_and_faults() -> None:
    examples = _example_lines()
    assert len(examples) >= 10
    runner = CliRunner()
    for argv in examples:
        for i, arg in enumerate(argv):
            if arg == "--fault":
                # the reference MN's faults with --suite mn or mn run, the reference HA's otherwise
                mn = "mn" in argv[: i + 1] and (argv[0] == "mn" or "--suite" in argv)
                assert argv[i + 1] in (MN_FAULTS if mn else ALL_FAULTS), argv
        # the command and sub-command exist and know every option used
        words = [a for a in argv if not a.startswith("-")][:2]
        help_out = runner.invoke(cli, [*words[: 2 if argv[0] in ("ha", "mn", "lab", "fa") else 1], "--help"])
        assert help_out.exit_code == 0, (argv, help_out.output)
        for opt in (a for a in argv if a.startswith("--")):
            assert opt in help_out.output, (argv, opt)
