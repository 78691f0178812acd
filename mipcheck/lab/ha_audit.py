"""The HA suite's trust cases against the lab's i-HA, from inside and through the VPN (``mipcheck lab audit-ha``).

``up`` writes one HA-suite profile (the format of ``mipcheck run --suite ha
--profile``, :mod:`mipcheck.engine.profile`) per vantage point, and
``audit-ha`` runs ``mipcheck run --suite ha`` with it inside the vantage
point's namespace, as ``mipcheck lab shell NODE -- mipcheck run ...`` would:

``inside``
    ``audit-in``, a host on the internal LAN. Trusted source: its address
    10.1.0.20. Untrusted sources: 172.16.1.20 and 172.16.1.21, two more
    addresses on the same interface, outside the i-HA's trusted networks
    10.0.0.0/8. The firewall (the i-HA's default gateway) routes 172.16.1.0/24
    back to ``audit-in``: without that route a reply the i-HA must not send
    would be lost on the way, and an i-HA answering untrusted sources would
    pass HA-UNTRUSTED-DROP. :func:`route_back` shows the route works before
    a run.
``vpn``
    ``audit-vpn``, the host ``up`` connects to the VPN gateway. Trusted
    source: its VPN-TIA. No untrusted source: whatever reaches the i-HA
    through the VPN comes from a VPN-TIA (the client's IPsec policy and the
    gateway's 4.2 policy let nothing else in), and the lab trusts the whole
    VPN-TIA pool. The untrusted cases are left to ``inside``.

The profiles play mobile nodes of their own: home addresses on the i-HA
(``up`` configures them there) with the lab's inner key,
``secrets/mn1-inner.key`` and its SPI, so an audit never registers, renews
or de-registers the MN's home address 10.1.0.100. The i-HA's decision log is
the profile's ``read_log`` (HA-UNTRUSTED-LOG). There is no
``start_unconfigured``: the lab's i-HA cannot be brought up with no trusted
subnet, so HA-TRUST-NONE-DEFAULT is not applicable here (the loopback run
``mipcheck run`` checks it against a second, unconfigured instance).

Case ids are plain strings here: the lab sits below the suites
(docs/design/contracts.md, "Import floors"); ``tests/test_lab_ha_audit.py``
checks them against the HA suite.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mipcheck.errors import ConfigError, MipcheckError

from . import netns, probe
from .topology import (
    AUDIT_IN_ADDRESS,
    AUDIT_UNTRUSTED_ADDRESSES,
    IHA_ADDRESS,
    INTERNAL_NETWORK,
    MIP_PORT,
    UNTRUSTED_NETWORK,
    VPN_POOL,
)

if TYPE_CHECKING:
    from .control import Lab

INSIDE, VPN = "inside", "vpn"
VANTAGES = (INSIDE, VPN)
AUDIT_IN_HOST = "audit-in"
AUDIT_VPN_HOST = "audit-vpn"
HOSTS = {INSIDE: AUDIT_IN_HOST, VPN: AUDIT_VPN_HOST}
PROFILE_FILES = {INSIDE: "ha-suite-inside.toml", VPN: "ha-suite-vpn.toml"}
# The audit's home addresses on the i-HA, one pool per vantage point (both may run at once): first, last.
HOME_RANGES = {INSIDE: ("10.1.0.110", "10.1.0.117"), VPN: ("10.1.0.120", "10.1.0.127")}
NAT_CARE_OF_ADDRESS = "172.16.2.10"  # the "private" Care-of Address behind a pretend NAT: a field value, never sent to
REPLY_TIMEOUT = 1.0
SILENCE_WINDOW = 0.5
DEFAULT_OUT = "out/lab-ha"

#: The HA suite's cases of RFC 5265 4.3 and 3.4: trust and TNC (``audit-ha`` runs these unless told otherwise).
TRUST_CASES = (
    "HA-UNTRUSTED-DROP",
    "HA-SOURCE-NOT-COA",
    "HA-TNC-INCLUDED",
    "HA-TNC-FORMAT",
    "HA-TNC-AUTHENTICATED",
    "HA-TNC-ON-DENIAL",
    "HA-TRUST-NONE-DEFAULT",
    "HA-UNTRUSTED-LOG",
)
UNTRUSTED_CASES = ("HA-UNTRUSTED-DROP", "HA-SOURCE-NOT-COA", "HA-UNTRUSTED-LOG")
NO_UNTRUSTED_ON_VPN = (
    f"no untrusted source reaches the i-HA through the VPN: its traffic comes from a VPN-TIA ({VPN_POOL}), "
    f"inside the i-HA's trusted networks ({INTERNAL_NETWORK}); `--from inside` runs these"
)


def home_addresses(vantage: str) -> list[str]:
    first, last = (int(ipaddress.IPv4Address(a)) for a in HOME_RANGES[vantage])
    return [str(ipaddress.IPv4Address(i)) for i in range(first, last + 1)]


def all_home_addresses() -> list[str]:
    """Every audit home address the i-HA must know (``up`` writes them into ``i-ha.toml``)."""
    return [a for v in VANTAGES for a in home_addresses(v)]


def default_cases(vantage: str) -> tuple[str, ...]:
    return tuple(c for c in TRUST_CASES if vantage == INSIDE or c not in UNTRUSTED_CASES)


def left_out(vantage: str) -> dict[str, str]:
    """Trust cases the vantage point does not run by default, each with why."""
    return {} if vantage == INSIDE else {c: NO_UNTRUSTED_ON_VPN for c in UNTRUSTED_CASES}


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string for what the lab writes (paths, command lines)


def profile_text(lab_name: str, namespace: str, state_dir: Path, vantage: str, trusted: str, spi: int) -> str:
    """The HA-suite profile of the lab's i-HA as tested from ``vantage`` (``trusted``: the tester's trusted source)."""
    host = HOSTS[vantage]
    first, last = HOME_RANGES[vantage]
    log = state_dir / "i-ha.decisions.log"
    lines = [
        f"# HA-suite profile of lab {lab_name!r}, tested from {vantage} ({host}, namespace {namespace}).",
        '# Written by `mipcheck lab up` (docs/lab.md, "HA trust audit"). Run it with',
        f"#   mipcheck lab audit-ha --name {lab_name} --from {vantage}",
        "# or, the same run by hand:",
        f"#   mipcheck lab shell --name {lab_name} {host} -- mipcheck run --suite ha --profile THIS_FILE",
        "",
        "[dut]",
        f'address = "{IHA_ADDRESS}"        # the lab\'s i-HA',
        f"port = {MIP_PORT}",
        'role = "i-ha"',
        "",
        "# The audit's own mobile nodes: home addresses the i-HA knows besides the MN's 10.1.0.100 (never",
        "# touched by an audit), with the lab's inner key and SPI.",
        "[mn]",
        f'home_addresses = ["{first}-{last}"]',
        f"spi = {spi}",
        'secret_file = "secrets/mn1-inner.key"',
        "",
        "[tester]",
    ]
    if vantage == INSIDE:
        lines += [
            f'trusted_sources = ["{trusted}"]         # {host} on the internal LAN',
            "untrusted_sources = [" + ", ".join(f'"{a}"' for a in AUDIT_UNTRUSTED_ADDRESSES) + "]",
            f"# ^ more addresses of {host}, outside the trusted networks {INTERNAL_NETWORK}. The firewall (the",
            f"#   i-HA's default gateway) routes {UNTRUSTED_NETWORK} back to {host}: a reply the i-HA must not send",
            "#   arrives where the suite listens for it.",
        ]
    else:
        lines += [
            f'trusted_sources = ["{trusted}"]          # {host}\'s VPN-TIA (pool {VPN_POOL}, trusted)',
            "# No untrusted_sources: nothing but a VPN-TIA reaches the i-HA through the VPN, and the whole pool",
            f"# is trusted ({INTERNAL_NETWORK}). The untrusted cases run from inside (ha-suite-inside.toml); with",
            "# this profile they are inconclusive.",
        ]
    lines += [
        f"reply_timeout = {REPLY_TIMEOUT}",
        f"silence_window = {SILENCE_WINDOW}",
        f'nat_care_of_address = "{NAT_CARE_OF_ADDRESS}"   # HA-NATT-UDP-TUNNEL\'s CoA behind a NAT: never sent to',
        "",
        "[applicability]",
        "trusted_networks = true",
        "nat_traversal = true",
        "",
        "[commands]",
        "# The i-HA's decision log (HA-UNTRUSTED-LOG). No start_unconfigured: the lab's i-HA cannot be brought up",
        "# with no trusted subnet, so HA-TRUST-NONE-DEFAULT is not applicable here.",
        f"read_log = {_q('cat ' + shlex.quote(str(log)))}",
        "timeout = 10",
    ]
    return "\n".join(lines) + "\n"


def write_profiles(lab: Lab, vpn_tia: str | None) -> dict[str, dict[str, Any]]:
    """Write ``ha-suite-inside.toml`` and, when the VPN host has a VPN-TIA, ``ha-suite-vpn.toml``; their records.

    The records are ``lab.json``'s ``ha_profiles``: per vantage point its
    profile (None with ``not_written`` saying why), host, namespace,
    sources, home addresses, default cases and the cases it leaves out.
    """
    from .control import INNER_SPI

    out: dict[str, dict[str, Any]] = {}
    for vantage in VANTAGES:
        host = HOSTS[vantage]
        ns = lab.topology.namespace(host)
        trusted = AUDIT_IN_ADDRESS if vantage == INSIDE else vpn_tia
        record: dict[str, Any] = {
            "profile": None,
            "not_written": None,
            "host": host,
            "namespace": ns,
            "trusted_sources": [trusted] if trusted else [],
            "untrusted_sources": list(AUDIT_UNTRUSTED_ADDRESSES) if vantage == INSIDE else [],
            "home_addresses": home_addresses(vantage),
            "cases": list(default_cases(vantage)),
            "left_out": left_out(vantage),
        }
        path = lab.state_dir / PROFILE_FILES[vantage]
        if trusted is None:
            why = lab.vpn_host_not_started or "the audit's VPN host has no VPN-TIA"
            record["not_written"] = f"the audit's VPN host is not on the VPN ({why})"
            path.unlink(missing_ok=True)
        else:
            text = profile_text(lab.name, ns, lab.state_dir, vantage, trusted, INNER_SPI)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            record["profile"] = str(path)
        out[vantage] = record
    return out


# ------------------------------------------------------------------ running


def route_back(lab: Lab) -> list[tuple[str, bool]]:
    """(untrusted source, reached): an ICMP echo from the i-HA's namespace to each, and its answer.

    The echo leaves by the i-HA's own routes (default via the firewall), so
    it shows that a reply the i-HA sent to an untrusted source would reach
    the tester: the control that makes silence at those sources mean "dropped".
    """
    ns = lab.topology.namespace("i-ha")
    return [(address, probe.ping(ns, address, timeout=1.0)) for address in AUDIT_UNTRUSTED_ADDRESSES]


def check_ready(lab: Lab, vantage: str) -> dict[str, Any]:
    """The vantage point's record, once it is usable; else one line (exit 2) naming what is wrong."""
    from .control import vpn_tunnel_address

    if vantage not in VANTAGES:
        raise ConfigError("--from", f"{vantage!r}: one of {', '.join(VANTAGES)}")
    record = lab.ha_profiles.get(vantage)
    if not record:
        raise MipcheckError(
            f"lab {lab.name!r} has no HA-suite profile for {vantage} (brought up by an older mipcheck?): "
            f"`mipcheck lab down --name {lab.name}` and up again"
        )
    if record["profile"] is None:
        raise MipcheckError(f"audit-ha --from {vantage}: no profile: {record['not_written']}")
    if not Path(record["profile"]).is_file():
        raise MipcheckError(f"audit-ha --from {vantage}: {record['profile']} is gone")
    if record["namespace"] not in netns.namespaces(lab.topology.prefix):
        raise MipcheckError(f"audit-ha --from {vantage}: namespace {record['namespace']} is gone")
    if vantage == VPN:
        now = vpn_tunnel_address(lab, record["host"])
        if now not in record["trusted_sources"]:
            raise MipcheckError(
                f"audit-ha --from vpn: {record['host']}'s VPN-TIA is {now or 'gone'}, the profile says "
                f"{record['trusted_sources'][0]}: the VPN client reconnected or dropped; bring the lab up again"
            )
    else:
        lost = [address for address, ok in route_back(lab) if not ok]
        if lost:
            raise MipcheckError(
                f"audit-ha --from inside: nothing from the i-HA's namespace reaches {', '.join(lost)} (route "
                f"{UNTRUSTED_NETWORK} via {AUDIT_IN_ADDRESS} on the firewall): silence at the untrusted sources "
                "would prove nothing"
            )
    return record


def suite_argv(lab: Lab, vantage: str, cases: tuple[str, ...], out: Path, *, quiet: bool = False) -> list[str]:
    """``mipcheck run --suite ha --profile P --case ... --out OUT`` inside the vantage point's namespace."""
    from .control import mipcheck_argv

    record = lab.ha_profiles[vantage]
    args = ["run", "--suite", "ha", "--profile", record["profile"], "--out", str(out)]
    if cases:
        args += ["--case", ",".join(cases)]
    if quiet:
        args.append("-q")
    return netns.in_ns(record["namespace"], mipcheck_argv(*args))


def run(lab: Lab, vantage: str, cases: tuple[str, ...], out: Path, *, quiet: bool = False) -> int:
    """Run the HA suite from ``vantage`` (its stdout and stderr are this process's); its exit code."""
    from .control import _child_env

    argv = suite_argv(lab, vantage, cases, out.resolve(), quiet=quiet)
    return subprocess.run(argv, env=_child_env(), stdin=subprocess.DEVNULL, check=False).returncode
