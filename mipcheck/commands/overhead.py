"""``mipcheck overhead``: octets each layer adds in each RFC 5265 access mode (section 5.2)."""

from __future__ import annotations

import json

import click

from mipcheck.errors import InputError

LABELS = {
    "ip": "IP",
    "udp_4500": "UDP",
    "spi_and_sequence": "SPI+seq",
    "iv": "IV",
    "padding": "pad",
    "pad_length_and_next_header": "padlen+next",
    "icv": "ICV",
}


@click.command("overhead")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--payload",
    type=int,
    default=None,
    metavar="N",
    help="User packet size in octets, its IP and UDP headers included (default: per mode, the size that gives the "
    "worst-case ESP padding).",
)
@click.option(
    "--cipher",
    type=click.Choice(["des-cbc", "3des-cbc", "aes-cbc"]),
    default="3des-cbc",
    show_default=True,
    help="ESP cipher; integrity is always HMAC-SHA1-96 (12-octet ICV) as RFC 5265 5.2 assumes.",
)
def overhead(as_json: bool, payload: int | None, cipher: str) -> None:
    """Build each access mode's packet and report the octets each layer adds.

    Modes f, c, fvc, cvc, and cvc with MIP/IPsec/MIP NAT traversal. With a
    64-bit block cipher and the default payload the totals are RFC 5265
    section 5.2's 0, 20, 77, 97 and 129 octets, measured, not assumed.
    """
    if payload is not None and not 28 <= payload <= 65000:
        raise InputError("--payload: the user packet needs 28 to 65000 octets (its own IP and UDP headers are 28)")
    from mipcheck.capture.overhead import block_and_iv, measure_all

    results = measure_all(cipher, payload)
    if as_json:
        block, iv = block_and_iv(cipher)
        doc = {
            "cipher": cipher,
            "block": block,
            "iv": iv,
            "integrity": "hmac-sha1-96",
            "modes": [r.as_dict() for r in results],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"RFC 5265 5.2 packet overhead, ESP {cipher} + HMAC-SHA1-96")
    for col in ("mode", "user packet", "layer", "octets", "breakdown"):
        table.add_column(col)
    for r in results:
        if not r.layers:
            table.add_row(r.mode, str(r.payload), "(none)", "0", "")
        for i, layer in enumerate(r.layers):
            detail = ", ".join(f"{LABELS.get(k, k)} {v}" for k, v in layer.detail.items())
            table.add_row(
                r.mode if i == 0 else "", str(r.payload) if i == 0 else "", layer.name, str(layer.octets), detail
            )
        table.add_row("", "", "[bold]total[/]", f"[bold]{r.total}[/]", f"packet {r.packet} octets", end_section=True)
    Console().print(table)
