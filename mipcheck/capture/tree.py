"""``dissect --tree``: every field of every header, as a rich tree per packet."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.tree import Tree
from scapy.fields import PacketListField
from scapy.packet import Packet

from mipcheck.layers.secret import VirtualField

from .record import TEXT_FIELDS, safe_summary_line, text


def _field_lines(node: Tree, pkt: Packet) -> None:
    for field in pkt.fields_desc:
        if isinstance(field, VirtualField):
            continue  # not on the wire; SecretField (keys) among them, never shown
        value = pkt.getfieldval(field.name)
        if isinstance(field, PacketListField):
            branch = node.add(f"[bold]{field.name}[/] ({len(value)})")
            for element in value:
                sub = branch.add(escape(getattr(element, "name", type(element).__name__)))
                _field_lines(sub, element)
            continue
        if isinstance(value, bytes):
            shown = repr(text(value)) if field.name in TEXT_FIELDS else value.hex() if value else "(empty)"
        else:
            try:
                shown = field.i2repr(pkt, value)
            except Exception:  # noqa: BLE001 - a repr bug must not hide the rest of the packet
                shown = repr(value)
        node.add(f"{escape(field.name)}: {escape(str(shown))}")


def packet_tree(record: dict[str, Any], items: list[tuple[str, Packet | None, str]], t0: float) -> Tree:
    root = Tree(escape(safe_summary_line(record, t0)))
    for name, pkt, note in items:
        title = name if pkt is None else f"{name} ({pkt.name})" if pkt.name != name else name
        if note:
            title += f" - {note}"
        node = root.add(f"[bold cyan]{escape(title)}[/]")
        if pkt is not None:
            _field_lines(node, pkt)
    for error in record["errors"]:
        root.add(f"[bold red]error:[/] {escape(error)}")
    return root
