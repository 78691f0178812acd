"""The ``mipcheck`` command line.

Sub-commands live in ``mipcheck.commands.<module>`` and are imported only when
used, so ``mipcheck --help`` stays fast and one broken command cannot take the
others down. Every :class:`~mipcheck.errors.MipcheckError` becomes one line on
stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from . import __version__
from .errors import EXIT_USAGE, MipcheckError

# name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("mipcheck.commands.run", "run", "Run a conformance suite against a device (default: the built-in i-HA)."),
    "list": ("mipcheck.commands.catalogue", "list_cmd", "List the requirement catalogue and its coverage."),
    "ha": ("mipcheck.commands.ha", "ha", "Run the reference home agent (i-HA or x-HA)."),
    "mn": ("mipcheck.commands.mn", "mn", "Play the mobile node: register with a home agent."),
    "fa": ("mipcheck.commands.fa", "fa", "Run the reference foreign agent: advertise, relay registrations."),
    "dissect": ("mipcheck.commands.dissect", "dissect", "Dissect captures down to the innermost Mobile IP message."),
    "analyze": ("mipcheck.commands.analyze", "analyze", "Check a capture passively against RFC 5265."),
    "overhead": (
        "mipcheck.commands.overhead",
        "overhead",
        "Per-layer packet overhead of each access mode (RFC 5265 5.2).",
    ),
    "layers": ("mipcheck.commands.layers", "layers", "List every message and extension the Scapy layers know."),
    "fuzz": (
        "mipcheck.commands.fuzz",
        "fuzz",
        "Fuzz a home agent with structure-aware messages (default: the built-in i-HA).",
    ),
    "lab": ("mipcheck.commands.lab", "lab", "RFC 5265 Figure 1 in network namespaces (root): up, down, status, shell."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        # find_spec raises, rather than returning None, when a parent package
        # is missing (a broken install): treat that as "not available".
        try:
            return importlib.util.find_spec(COMMANDS[name][0]) is not None
        except ImportError:
            return False

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr, _help = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mipcheck")
def cli() -> None:
    """Test Mobile IPv4 equipment against RFC 5265 and the base Mobile IPv4 RFCs."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="mipcheck", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("mipcheck: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MipcheckError as exc:
        click.echo(f"mipcheck: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("mipcheck: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:
        click.echo(f"mipcheck: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), err=True)
        sys.exit(EXIT_USAGE)


def _exit_with(result: Any) -> None:
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    _exit_with(main())
