"""The profile's [commands]: run on the tester's machine; every failure is the tester's error, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mipcheck.engine.control import CommandControl
from mipcheck.engine.verdicts import TesterError

TARGET = ("127.0.0.1", 434)


def test_read_log_and_unconfigured_target(tmp_path: Path) -> None:
    log = tmp_path / "ha.log"
    log.write_text("line one\nsource=127.0.0.66:1 dropped\n")
    marker = tmp_path / "started"
    c = CommandControl(
        {
            "read_log": f"cat {log}",
            "start_unconfigured": f"touch {marker}",
            "stop_unconfigured": f"rm {marker}",
            "unconfigured_target": "127.0.0.5:4343",
        },
        TARGET,
    )
    assert c.read_log() == log.read_text()
    assert c.can_start_unconfigured()
    assert c.start_unconfigured() == ("127.0.0.5", 4343) and marker.exists()
    c.stop_unconfigured()
    assert not marker.exists()
    assert not c.unconfigured_separate


def test_default_unconfigured_target_is_the_device() -> None:
    c = CommandControl({"start_unconfigured": "true", "stop_unconfigured": "true"}, TARGET)
    assert c.start_unconfigured() == TARGET


def test_home_address_is_quoted_into_the_command(tmp_path: Path) -> None:
    out = tmp_path / "sent"
    c = CommandControl({"send_to_home_address": f"echo {{home_address}} > {out}"}, TARGET)
    assert c.send_to_home_address("10.0.0.1; rm -rf /", b"") is True
    assert out.read_text().strip() == "10.0.0.1; rm -rf /"  # one argument, never shell syntax


@pytest.mark.parametrize(
    ("commands", "call", "message"),
    [
        ({"read_log": "exit 3"}, "read_log", "commands.read_log exited with status 3"),
        ({"read_log": "sleep 5", "timeout": 1}, "read_log", "commands.read_log did not finish within 1 s"),
    ],
)
def test_command_failures_are_tester_errors(commands, call, message) -> None:
    c = CommandControl(commands, TARGET)
    with pytest.raises(TesterError) as info:
        getattr(c, call)()
    assert str(info.value) == message


def test_absent_commands_mean_cannot_tell() -> None:
    c = CommandControl({}, TARGET)
    assert c.read_log() is None and not c.can_start_unconfigured() and not c.can_send_to_home_address()
    assert c.send_to_home_address("10.0.0.1", b"") is False
