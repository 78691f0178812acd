"""``mipcheck dissect``: captures down to the innermost Mobile IP message."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from mipcheck.capture.keys import build_keyring
from mipcheck.errors import InputError, MipcheckError
from mipcheck.keysource import INLINE_WARNING

KEY_HELP = """Keys:

\b
  --key SPI=[ALGORITHM:]SOURCE   Mobile IP key to verify authenticators.
      SPI decimal or 0x-hex; ALGORITHM hmac-md5 (default) or
      prefix-suffix-md5; SOURCE env:NAME or file:PATH holding the key's
      octets (one trailing newline dropped), or hex:00ff... / text:... typed
      inline, for published test keys only (ps and shell history show it:
      mipcheck warns).
      e.g. --key 256=env:MN_HA_KEY  --key 0x101=prefix-suffix-md5:file:mn.key
  --esp-sa SPI,ENC,ENC-KEY,AUTH,AUTH-KEY   ESP SA to decrypt with.
      ENC null|des-cbc|3des-cbc|aes-cbc|aes-ctr|aes-gcm, AUTH null|hmac-sha1-96|
      hmac-md5-96|hmac-sha2-256-128|...; keys as env:NAME or file:PATH
      holding hex (or inline hex, with a warning), empty for null.
      e.g. --esp-sa 0x1001,aes-cbc,env:ESP_ENC,hmac-sha1-96,file:esp-auth.hex
  --keys FILE   TOML with [[mip]] (spi, algorithm, secret) and [[esp]] (spi,
      encryption, encryption_key, authentication, authentication_key) tables;
      a secret is hex:..., text:..., env:NAME or file:PATH; pcaps/keys.toml
      is one.

Secrets are never printed. Verdicts: "ok", "BAD", nothing when no key.
"""

TYPE_FILTERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "rrq": lambda r: r["mip"] is not None and r["mip"]["name"] == "Registration Request",
    "rrp": lambda r: r["mip"] is not None and r["mip"]["name"] == "Registration Reply",
    "registration": lambda r: (
        r["mip"] is not None and r["mip"]["name"] in ("Registration Request", "Registration Reply")
    ),
    "tunnel": lambda r: r["mip"] is not None and r["mip"]["name"] == "Tunnel Data",
    "revocation": lambda r: r["mip"] is not None and r["mip"]["name"] == "Registration Revocation",
    "revocation-ack": lambda r: r["mip"] is not None and r["mip"]["name"] == "Revocation Acknowledgment",
    "advertisement": lambda r: r["mip"] is not None and r["mip"]["name"] == "Agent Advertisement",
    "solicitation": lambda r: r["mip"] is not None and r["mip"]["name"] == "Agent Solicitation",
    "mip": lambda r: r["mip"] is not None,
    "esp": lambda r: "ESP" in r["layers"],
    "ike": lambda r: "IKE" in r["layers"],
    "malformed": lambda r: bool(r["errors"]),
    "other": lambda r: r["mip"] is None,
}


def _home_address_filter(addresses: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
    wanted = set()
    for text in addresses:
        try:
            wanted.add(str(ipaddress.IPv4Address(text)))
        except ValueError:
            raise InputError(f"--home-address: {text!r} is not an IPv4 address") from None

    def match(r: dict[str, Any]) -> bool:
        mip = r["mip"]
        if mip is not None and mip.get("home_address") in wanted:
            return True
        return any(ip["src"] in wanted or ip["dst"] in wanted for ip in r["ip"])

    return match


class _Output:
    """Buffered stdout: lines are joined and written in chunks (the summary is the hot path)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.write = sys.stdout.write

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= 2048:
            self.flush()

    def write_lines(self, lines: list[str]) -> None:
        self.flush_lines()
        if lines:
            self.write("\n".join(lines))
            self.write("\n")

    def flush_lines(self) -> None:
        if self.lines:
            self.write("\n".join(self.lines))
            self.write("\n")
            self.lines.clear()

    def flush(self) -> None:
        if self.lines:
            self.write("\n".join(self.lines))
            self.write("\n")
            self.lines.clear()
        sys.stdout.flush()


@click.command("dissect", epilog=KEY_HELP)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--tree", is_flag=True, help="Every field of every header, as a tree per packet (uses Scapy).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per packet and line.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="SPI=[ALG:]SOURCE",
    help="Mobile IP key to verify authenticators, from env:NAME or file:PATH (repeatable).",
)
@click.option("--keys", "keys_file", metavar="FILE", help="TOML file with Mobile IP keys and ESP SAs.")
@click.option(
    "--esp-sa", "esp_sas", multiple=True, metavar="SPI,ENC,KEY,AUTH,KEY", help="ESP SA to decrypt with (repeatable)."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(sorted(TYPE_FILTERS)),
    help="Only packets of this kind (repeatable).",
)
@click.option(
    "--home-address",
    "home_addresses",
    multiple=True,
    metavar="ADDR",
    help="Only packets about this home address: in the message or any IP header (repeatable).",
)
@click.option(
    "--scapy", "scapy_only", is_flag=True, help="Decode every packet with the Scapy layers (slow; for cross-checks)."
)
def dissect(
    files: tuple[str, ...],
    tree: bool,
    as_json: bool,
    keys: tuple[str, ...],
    keys_file: str | None,
    esp_sas: tuple[str, ...],
    types: tuple[str, ...],
    home_addresses: tuple[str, ...],
    scapy_only: bool,
) -> None:
    """Dissect pcap/pcapng FILEs down to the innermost Mobile IP message.

    One summary line per packet by default. Reads Ethernet, Linux cooked (SLL,
    SLL2) and raw IP captures, through IP-in-IP, minimal encapsulation, GRE,
    ESP (with --esp-sa), NAT traversal on UDP 4500 (RFC 3948) and Mobile IP
    tunnel data (RFC 3519). A malformed packet is reported with its error and
    dissection goes on; exit status 2 when a file cannot be read (after the
    other files were processed), else 0.
    """
    from mipcheck.capture.dissector import Dissector, parallel_summaries
    from mipcheck.capture.progress import FileProgress
    from mipcheck.capture.reader import CaptureReader
    from mipcheck.capture.record import safe_summary_line

    if tree and as_json:
        raise MipcheckError("--tree and --json cannot be combined")
    ring = build_keyring(keys, esp_sas, keys_file)
    for what in ring.typed_inline:
        click.echo(f"mipcheck: warning: {what}: {INLINE_WARNING}", err=True)
    filters = [TYPE_FILTERS[t] for t in types]
    wanted_home = _home_address_filter(home_addresses) if home_addresses else None
    filtered = bool(filters or wanted_home)
    dissector = Dissector(ring, scapy_only=scapy_only)
    out = _Output()
    console = None
    if tree:
        from rich.console import Console

        from mipcheck.capture.tree import packet_tree

        console = Console(highlight=False, soft_wrap=False)
    failed = 0
    try:
        for path in files:
            try:
                reader = CaptureReader(path)
            except InputError as exc:
                out.flush()
                click.echo(f"mipcheck: error: {exc}", err=True)
                failed += 1
                continue
            if len(files) > 1 and not as_json:
                out.add(f"# {path}")
            with reader, FileProgress(os.path.basename(path), reader.size) as bar:
                try:
                    if not (tree or as_json or filtered):
                        out.flush()
                        if not bar.enabled and parallel_summaries(reader, dissector, out.write_lines):
                            continue
                        for lines in dissector.summaries(reader):
                            out.write_lines(lines)
                            bar.update(reader.position)
                        continue
                    t0: float | None = None
                    for frame, packet in enumerate(reader, start=1):
                        if bar.enabled and not frame % bar.EVERY:
                            bar.update(reader.position)
                        if t0 is None:
                            t0 = packet[0]
                        if tree:
                            record, items = dissector.tree(frame, packet)
                            if _keep(record, filters, wanted_home):
                                out.flush()
                                console.print(packet_tree(record, items, t0))
                            continue
                        record = dissector.record(frame, packet)
                        if filtered and not _keep(record, filters, wanted_home):
                            continue
                        if as_json:
                            record["file"] = path
                            out.add(json.dumps(record))
                        else:
                            out.add(safe_summary_line(record, t0))
                except InputError as exc:
                    out.write_lines(getattr(exc, "partial_lines", []))
                    out.flush()
                    click.echo(f"mipcheck: error: {exc}", err=True)
                    failed += 1
        out.flush()
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return
    if failed:
        click.get_current_context().exit(2)


def _keep(record: dict[str, Any], filters: list, wanted_home: Callable | None) -> bool:
    if filters and not any(f(record) for f in filters):
        return False
    return wanted_home is None or wanted_home(record)
