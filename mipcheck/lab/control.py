"""``up``, ``down`` and ``status`` of a lab: build Figure 1 from :mod:`.topology`, start its agents, record it.

``up`` creates the namespaces, bridges and veths, addresses and routes, loads
the firewall's, the NAT's and the VPN gateway's nftables rulesets, writes the
home agents' configs, the VPN gateway's strongSwan config and two profiles
under the state directory, starts the i-HA and x-HA (``mipcheck ha serve``)
and charon in their namespaces and waits until each answers, connects the
site audit's VPN host (``audit-vpn``) to the gateway, then writes
``lab.json``. If anything fails (or ``up`` is interrupted), what was made is
torn down again. ``breaks`` (:mod:`.breaks`) build a deliberately
misconfigured lab for the site audit's proofs.

The profiles: ``site-audit.toml`` for ``mipcheck run --suite site`` (the
lab's addresses, the mobile node's keys, and the vantage points: namespaces
of the lab) is ``site_profile`` in ``lab.json``; ``site.toml`` is the same
site for ``mipcheck analyze --profile`` (``analyze_profile``);
``ha-suite-inside.toml`` and ``ha-suite-vpn.toml`` test the i-HA with
``mipcheck run --suite ha`` from ``audit-in`` and ``audit-vpn``
(``ha_profiles``; :mod:`.ha_audit`, ``mipcheck lab audit-ha``).

``down`` works from names, not from ``lab.json``: it kills every process in
a namespace with the lab's prefix or naming the state directory, deletes the
namespaces (the veths, bridges and nftables tables inside go with them) and
removes the state directory. So it also cleans up after a ``kill -9`` of ``up``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mipcheck.errors import MipcheckError

from . import breaks as br
from . import firewall, ha_audit, netns, vpn
from .topology import (
    CN_ADDRESS,
    IHA_ADDRESS,
    INNER_HOME_ADDRESS,
    INTERNAL_NETWORK,
    MIP_PORT,
    MN_NAI,
    OUTER_HOME_ADDRESS,
    VPN_GATEWAY_ADDRESS,
    VPN_POOL,
    XHA_ADDRESS,
    Node,
    Topology,
    build_topology,
    check_lab_name,
    namespace_prefix,
)

STATE_FILE = "lab.json"
HA_START_TIMEOUT = 10.0
INNER_SPI = 0x52650001
OUTER_SPI = 0x52660001
SITE_PROFILE = "site-audit.toml"  # the site suite's profile (lab.json "site_profile")
ANALYZE_PROFILE = "site.toml"  # the same site for `mipcheck analyze --profile`
AUDIT_VPN_HOST = "audit-vpn"
AUDIT_OUT_HOST = "audit-out"
TRUST_ALL = "0.0.0.0/0"  # the i-HA's trusted networks under the break iha-trust-all
#: the lab's home agents offer minimal encapsulation too (RFC 2004; 'M' through a foreign agent, lab run)
ENCAPSULATIONS_LINE = 'encapsulations = ["ipip", "minimal"]'
FA_LINK = "fa"  # a foreign agent node's interface on its link
FA_TUN = "tunfa"  # its TUN for reverse tunnelling (RFC 3024)
FOREIGN_AGENTS = ("i-fa", "x-fa")
NAT_T_PORT_BROKEN = 4501  # charon.port_nat_t under the break vpn-no-natt


def default_state_dir(name: str) -> Path:
    """``/run/mipcheck/lab-<name>`` as root, else under ``$XDG_RUNTIME_DIR``; ``$MIPCHECK_LAB_DIR`` overrides."""
    base = os.environ.get("MIPCHECK_LAB_DIR")
    if base:
        return Path(base) / f"lab-{name}"
    if os.geteuid() != 0 and os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "mipcheck" / f"lab-{name}"
    return Path("/run/mipcheck") / f"lab-{name}"


def mipcheck_argv(*args: str) -> list[str]:
    """``python -m mipcheck ARGS`` (or the equivalent while there is no ``mipcheck/__main__.py``)."""
    import mipcheck

    if Path(mipcheck.__file__).with_name("__main__.py").exists():
        return [sys.executable, "-m", "mipcheck", *args]
    return [sys.executable, "-c", "from mipcheck.cli import main; main()", *args]


def _child_env() -> dict[str, str]:
    """The environment for mipcheck processes: this mipcheck importable first, whatever the cwd."""
    import mipcheck

    root = str(Path(mipcheck.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "PYTHONUNBUFFERED": "1"}


@dataclass
class Process:
    node: str
    name: str
    pid: int
    argv: list[str]
    log: str


@dataclass
class Lab:
    """A running lab: its topology, where its files are, what it started."""

    topology: Topology
    state_dir: Path
    processes: list[Process] = field(default_factory=list)
    vpn_not_started: str | None = None
    site_profile: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    started: str = ""
    up_seconds: float = 0.0
    breaks: tuple[str, ...] = ()
    vpn_host_not_started: str | None = None  # why the audit's VPN host is not on the VPN (None: it is)
    analyze_profile: Path | None = None
    ha_profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # vantage -> ha_audit.write_profiles record

    @property
    def name(self) -> str:
        return self.topology.name

    def pids(self, node: str) -> list[int]:
        return [p.pid for p in self.processes if p.node == node]

    def _host_json(self, n: Node) -> dict[str, Any]:
        t = self.topology
        return {
            "name": n.name,
            "role": n.role,
            "namespace": t.namespace(n.name),
            "addresses": n.addresses,
            "interfaces": [
                {"name": i.name, "network": i.network, "address": i.address, "switch_port": i.port}
                for i in n.interfaces
            ],
            "routes": [{"to": d, "via": g} for d, g in n.routes],
            "pids": self.pids(n.name),
            "description": n.description,
        }

    def as_json(self) -> dict[str, Any]:
        t = self.topology
        return {
            "name": t.name,
            "prefix": t.prefix,
            "state_dir": str(self.state_dir),
            "started": self.started,
            "up_seconds": round(self.up_seconds, 3),
            "nat": t.nat,
            "switch": {
                "namespace": t.switch_namespace,
                "bridges": {n.name: n.bridge for n in t.networks if n.bridge},
            },
            "networks": [
                {"name": n.name, "subnet": str(n.subnet), "bridge": n.bridge, "description": n.description}
                for n in t.networks
            ],
            "nodes": [self._host_json(n) for n in t.nodes],
            "vantages": [self._host_json(n) for n in t.vantages],
            "breaks": [
                {"name": name, "case": br.BREAKS[name].case, "summary": br.BREAKS[name].summary} for name in self.breaks
            ],
            "processes": [p.__dict__ for p in self.processes],
            "vpn": {
                "not_started": self.vpn_not_started,
                "directory": str(self.state_dir / "vpn-gateway"),
                "audit_host_not_started": self.vpn_host_not_started,
            },
            "firewall": {"namespace": t.namespace("firewall"), "table": f"{firewall.TABLE_FAMILY} {firewall.TABLE}"},
            "site_profile": str(self.site_profile) if self.site_profile else None,
            "analyze_profile": str(self.analyze_profile) if self.analyze_profile else None,
            "ha_profiles": self.ha_profiles,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Lab:
        topo = build_topology(doc["name"], nat=bool(doc.get("nat")))
        lab = cls(topo, Path(doc["state_dir"]))
        lab.processes = [Process(**p) for p in doc.get("processes", [])]
        lab.vpn_not_started = doc.get("vpn", {}).get("not_started")
        lab.vpn_host_not_started = doc.get("vpn", {}).get("audit_host_not_started")
        lab.site_profile = Path(doc["site_profile"]) if doc.get("site_profile") else None
        lab.analyze_profile = Path(doc["analyze_profile"]) if doc.get("analyze_profile") else None
        lab.breaks = tuple(b["name"] for b in doc.get("breaks", []) if b.get("name") in br.BREAKS)
        lab.files = dict(doc.get("files", {}))
        lab.ha_profiles = dict(doc.get("ha_profiles") or {})
        lab.started = doc.get("started", "")
        lab.up_seconds = float(doc.get("up_seconds", 0.0))
        return lab


# ------------------------------------------------------------------ files under the state directory


def _write_secret(path: Path) -> str:
    secret = secrets.token_hex(16)
    path.write_text(secret + "\n")
    os.chmod(path, 0o600)
    return secret


def _ha_config(
    role: str,
    address: str,
    home: str,
    spi: int,
    secret_file: str,
    trusted: list[str],
    audit_homes: tuple[str, ...] = (),
) -> str:
    lines = [
        f"# {role} of lab; written by `mipcheck lab up`",
        f'address = "{address}"',
        f"port = {MIP_PORT}",
        f'role = "{role}"',
    ]
    if trusted:
        lines.append("trusted_networks = [" + ", ".join(f'"{n}"' for n in trusted) + "]")
    lines.append(ENCAPSULATIONS_LINE)
    lines += [
        f'log_file = "{role}.decisions.log"',
        "",
        "[[mobile_node]]",
        f'home_address = "{home}"',
        f"spi = {spi}",
        f'secret_file = "{secret_file}"',
        f'nai = "{MN_NAI}"',
        "",
    ]
    if audit_homes:
        lines.append("# The HA audit's mobile nodes (mipcheck lab audit-ha): the same key, home addresses of their own")
    for audit_home in audit_homes:
        lines += [
            "[[mobile_node]]",
            f'home_address = "{audit_home}"',
            f"spi = {spi}",
            f'secret_file = "{secret_file}"',
            "",
        ]
    return "\n".join(lines)


def site_profile_text(topo: Topology) -> str:
    """A minimal site profile (the format of ``mipcheck analyze --profile``) for this lab."""
    return f"""\
# Site profile of lab {topo.name!r}, written by `mipcheck lab up` (RFC 5265 Figure 1 in namespaces).
[home_agents]
internal = ["{IHA_ADDRESS}"]
external = ["{XHA_ADDRESS}"]

[networks]
trusted = ["{INTERNAL_NETWORK}"]     # the i-HA's trusted networks; the VPN-TIA pool {VPN_POOL} is inside
internal = ["{INTERNAL_NETWORK}"]

[timers]
t_monitor = 60

[[mobile_node]]
home_address = "{INNER_HOME_ADDRESS}"
external_home_address = "{OUTER_HOME_ADDRESS}"
nai = "{MN_NAI}"
"""


def site_audit_profile_text(topo: Topology, breaks: tuple[str, ...] = (), vpn_host: str | None = None) -> str:
    """The site suite's profile of this lab: addresses, the mobile node's keys, vantage points (namespaces).

    ``vpn_host`` is why the audit's VPN host is not on the VPN (None: it is,
    and the profile has a vantage point with role ``vpn``). Secrets are named
    by file, relative to the profile's directory (the state directory).
    """
    ns = topo.namespace
    xha = IHA_ADDRESS if br.SAME_HA_ADDRESS in breaks else XHA_ADDRESS
    said = ", ".join(breaks) if breaks else "none"
    lines = [
        f"# Site-audit profile of lab {topo.name!r}: mipcheck run --suite site --profile THIS_FILE",
        "# Written by `mipcheck lab up`; the vantage points are the lab's namespaces (docs/lab.md).",
        f"# Breaks: {said}",
    ]
    for name in breaks:
        lines.append(f"#   {name}: {br.BREAKS[name].summary}")
    if br.SAME_HA_ADDRESS in breaks:
        lines.append(f"# (same-ha-address: the x-HA is reached from outside at {IHA_ADDRESS}, the i-HA's address)")
    lines += [
        "",
        "[site]",
        f'name = "lab {topo.name}"',
        f'internal_home_agents = ["{IHA_ADDRESS}"]',
        f'external_home_agents = ["{xha}"]',
        f'vpn_gateways = ["{VPN_GATEWAY_ADDRESS}"]',
        f'internal_networks = ["{INTERNAL_NETWORK}"]',
        f'enterprise_hosts = ["{CN_ADDRESS}"]',
        "",
        "[timing]",
        "reply_timeout = 1.0",
        "silence = 0.5",
        "",
        "[[mobile_node]]",
        'home_agent = "internal"',
        f'home_address = "{INNER_HOME_ADDRESS}"',
        f"spi = {INNER_SPI}",
        'secret_file = "secrets/mn1-inner.key"',
        f'nai = "{MN_NAI}"',
        "",
        "[[mobile_node]]",
        'home_agent = "external"',
        f'home_address = "{OUTER_HOME_ADDRESS}"',
        f"spi = {OUTER_SPI}",
        'secret_file = "secrets/mn1-outer.key"',
        f'nai = "{MN_NAI}"',
    ]
    vantages = [
        ("external", "outside", AUDIT_OUT_HOST, "a host on the external network"),
        ("dmz", "outside", "x-ha", "the DMZ (the x-HA's namespace)"),
        ("internal", "inside", "cn", "the internal network (the CN's namespace)"),
        ("vpn", "vpn", AUDIT_VPN_HOST, "a host behind the NAT, connected to the VPN gateway"),
        ("i-ha", "i-ha", "i-ha", "the i-HA's own namespace: sees what arrives there"),
    ]
    for name, role, node, what in vantages:
        lines.append("")
        if role == "vpn" and vpn_host is not None:
            lines.append(f"# no vantage point on the VPN: {vpn_host}")
            continue
        lines += [
            "[[vantage]]",
            f'name = "{name}"  # {what}',
            f'role = "{role}"',
            f'namespace = "{ns(node)}"',
        ]
        if role == "vpn":
            lines.append('interface = "eth0"  # its outer interface, where SITE-VPN-ENCRYPT-ALL captures')
    return "\n".join(lines) + "\n"


def _write_files(lab: Lab, psk: str) -> None:
    d = lab.state_dir
    (d / "secrets").mkdir(mode=0o700, exist_ok=True)
    (d / "logs").mkdir(exist_ok=True)
    _write_secret(d / "secrets" / "mn1-inner.key")
    _write_secret(d / "secrets" / "mn1-outer.key")
    (d / "secrets" / "vpn.psk").write_text(psk + "\n")
    os.chmod(d / "secrets" / "vpn.psk", 0o600)
    trusted = [TRUST_ALL] if br.IHA_TRUST_ALL in lab.breaks else [str(INTERNAL_NETWORK)]
    iha = _ha_config(
        "i-ha",
        IHA_ADDRESS,
        INNER_HOME_ADDRESS,
        INNER_SPI,
        "secrets/mn1-inner.key",
        trusted,
        tuple(ha_audit.all_home_addresses()),
    )
    xha = _ha_config("x-ha", XHA_ADDRESS, OUTER_HOME_ADDRESS, OUTER_SPI, "secrets/mn1-outer.key", [])
    (d / "i-ha.toml").write_text(iha)
    (d / "x-ha.toml").write_text(xha)
    lab.analyze_profile = d / ANALYZE_PROFILE
    lab.analyze_profile.write_text(site_profile_text(lab.topology))
    lab.site_profile = d / SITE_PROFILE
    write_site_profile(lab)
    lab.files = {
        "i-ha config": str(d / "i-ha.toml"),
        "x-ha config": str(d / "x-ha.toml"),
        "mn1 inner key": str(d / "secrets" / "mn1-inner.key"),
        "mn1 outer key": str(d / "secrets" / "mn1-outer.key"),
        "vpn psk": str(d / "secrets" / "vpn.psk"),
        "site profile": str(lab.site_profile),
        "analyze profile": str(lab.analyze_profile),
    }


def write_site_profile(lab: Lab) -> None:
    """(Re)write ``site-audit.toml``: once the files are written, again when the VPN host's fate is known."""
    assert lab.site_profile is not None
    text = site_audit_profile_text(lab.topology, lab.breaks, lab.vpn_host_not_started)
    tmp = lab.site_profile.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(lab.site_profile)


# ------------------------------------------------------------------ up


def _build_network(topo: Topology) -> None:
    for ns in topo.namespaces:
        netns.add_namespace(ns)
        netns.sysctl(ns, {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"})
    sw = topo.switch_namespace
    for net in topo.networks:
        if net.bridge:
            netns.bridge(sw, net.bridge)
    for node in topo.hosts:
        ns = topo.namespace(node.name)
        for leg in node.interfaces:
            net = topo.network(leg.network)
            if net.bridge:
                netns.veth(sw, leg.port, ns, leg.name)
                netns.enslave(sw, leg.port, net.bridge)
    for network, a, b in topo.links:
        ia, ib = topo.node(a).interface(network), topo.node(b).interface(network)
        netns.veth(topo.namespace(a), ia.name, topo.namespace(b), ib.name)
    for node in topo.hosts:
        ns = topo.namespace(node.name)
        if node.router:
            netns.sysctl(ns, {"net.ipv4.ip_forward": "1"})
        for leg in node.interfaces:
            netns.address(ns, leg.name, leg.address)
        for dev, extra in node.extra_addresses:
            # ARP keeps asking with the leg's own address, never an extra one off the link's subnet
            netns.sysctl(ns, {f"net.ipv4.conf.{dev}.arp_announce": "2"})
            netns.address(ns, dev, extra)
        for destination, gateway in node.routes:
            netns.route(ns, destination, gateway)


def spawn(argv: list[str], log: Path | str, cwd: Path) -> subprocess.Popen:
    """One of the lab's processes: ``argv`` as it is (already inside its namespace), output appended to ``log``,
    this mipcheck importable, a session of its own (``down`` finds it by namespace, not by process group)."""
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - the lab's own command lines
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            cwd=str(cwd),
            start_new_session=True,
        )


def start_agent(lab: Lab, node: str, name: str, args: list[str], log: Path) -> subprocess.Popen:
    """``mipcheck ARGS`` in ``node``'s namespace, recorded in ``lab.processes`` as ``name`` (not yet saved)."""
    full = netns.in_ns(lab.topology.namespace(node), mipcheck_argv(*args))
    proc = spawn(full, log, lab.state_dir)
    lab.processes.append(Process(node, name, proc.pid, full, str(log)))
    return proc


def _start_ha(
    lab: Lab, node: str, faults: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, Path]:
    """Start ``mipcheck ha serve`` for ``node``; ``extra``: more arguments (``lab run``: ``--tun NAME``)."""
    config = lab.state_dir / f"{node}.toml"
    log = lab.state_dir / "logs" / f"{node}.log"
    fault_args = [arg for fault in faults for arg in ("--fault", fault)]
    args = ["ha", "serve", "--config", str(config), "--log-json", *fault_args, *extra]
    return start_agent(lab, node, node, args, log), log


def _wait_listening(proc: subprocess.Popen, log: Path, node: str, deadline: float, offset: int = 0) -> None:
    """Until the log (from ``offset`` on: a restarted agent appends) says the agent listens."""
    while True:
        try:
            with open(log, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            text = ""
        if '"event":"listening"' in text:
            return
        if proc.poll() is not None:
            last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), f"exit {proc.returncode}")
            raise netns.LabError(f"{node} did not start: {last.strip()}")
        if time.monotonic() > deadline:
            raise netns.LabError(f"{node} did not start listening in {HA_START_TIMEOUT:g} s (see {log})")
        time.sleep(0.02)


def fa_config_text(lab: Lab, node: str) -> str:
    """The reference foreign agent of ``node`` (i-fa, x-fa): its link address is its address and care-of address."""
    address = next(i.ip for i in lab.topology.node(node).interfaces if i.name == FA_LINK)
    return f"""\
# {node} of lab {lab.name!r}; written by `mipcheck lab` (docs/lab.md)
address = "{address}"
port = 434
care_of_addresses = ["{address}"]
advertise_interval = 1.0
flags = "FMT"
reverse_tunneling = true
max_lifetime = 1800
log_file = "{lab.state_dir / f"{node}.decisions.log"}"
"""


def start_foreign_agent(lab: Lab, node: str) -> dict[str, Any]:
    """The reference FA on ``node``'s link (``fa serve --link fa --tun tunfa``); started by ``up``, restarted when
    its config changed or it died."""
    ns = lab.topology.namespace(node)
    legs = [i.name for i in lab.topology.node(node).interfaces]
    # the host's part (docs/lab.md): forwarding, and no reverse-path filter (visitors' home addresses are foreign)
    values = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
    values.update({f"net.ipv4.conf.{leg}.rp_filter": "0" for leg in legs})
    netns.sysctl(ns, values)
    config = lab.state_dir / f"{node}.toml"
    text = fa_config_text(lab, node)
    changed = not config.exists() or config.read_text() != text  # an agent started with another config restarts
    config.write_text(text)
    current = next((p for p in lab.processes if p.name == node), None)
    started = False
    if current is None or changed or not netns.pid_alive_in(current.pid, ns):
        if current is not None:
            netns.kill_all([current.pid], grace=2.0)
            lab.processes.remove(current)
        log = lab.state_dir / "logs" / f"{node}.log"
        offset = log.stat().st_size if log.exists() else 0
        args = ["fa", "serve", "--config", str(config), "--log-json", "--link", FA_LINK, "--tun", FA_TUN]
        proc = start_agent(lab, node, node, args, log)
        save(lab)
        _wait_listening(proc, log, node, time.monotonic() + HA_START_TIMEOUT, offset)
        started = True
    return {"namespace": ns, "link": FA_LINK, "tun": FA_TUN, "started": started, "config": str(config)}


def lab_exists(name: str, state_dir: Path) -> bool:
    return bool(netns.namespaces(namespace_prefix(name))) or (state_dir / STATE_FILE).exists()


def up(
    name: str = "lab",
    *,
    state_dir: Path | None = None,
    nat: bool = False,
    with_vpn: bool = True,
    breaks: tuple[str, ...] | list[str] = (),
) -> Lab:
    """Build and start lab ``name``; on any failure, tear down what was made and raise.

    ``breaks`` are names of :data:`.breaks.BREAKS`: each misconfigures the
    part of the lab one site-audit case checks (``mipcheck lab breaks``).
    """
    check_lab_name(name)
    chosen = tuple(sorted(br.check_breaks(breaks)))
    netns.preflight()
    if shutil.which("nft") is None:
        raise MipcheckError("mipcheck lab needs nftables (no 'nft' command: install nftables)")
    state_dir = Path(state_dir) if state_dir else default_state_dir(name)
    if lab_exists(name, state_dir):
        raise MipcheckError(f"lab {name!r} is already up (or left over): run `mipcheck lab down --name {name}` first")
    t0 = time.monotonic()
    topo = build_topology(name, nat=nat)
    lab = Lab(topo, state_dir, started=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), breaks=chosen)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        psk = secrets.token_hex(16)
        _write_files(lab, psk)
        _build_network(topo)
        firewall.load(topo.namespace("firewall"), firewall.firewall_ruleset(chosen))
        firewall.load(topo.namespace("nat"), firewall.nat_ruleset())
        firewall.load(topo.namespace("vpn-gateway"), firewall.vpn_policy_ruleset(chosen))
        deadline = time.monotonic() + HA_START_TIMEOUT
        iha_faults = ("omit-tnc",) if br.IHA_OMIT_TNC in chosen else ()
        has = [_start_ha(lab, "i-ha", iha_faults), _start_ha(lab, "x-ha")]
        charon = None
        vpn_dir = state_dir / "vpn-gateway"
        lab.vpn_not_started = "not requested" if not with_vpn else vpn.missing()
        if lab.vpn_not_started is None:
            port_nat_t = NAT_T_PORT_BROKEN if br.VPN_NO_NATT in chosen else None
            vpn.write_config(vpn_dir, vpn.gateway_conf(psk), vpn.strongswan_conf(port_nat_t))
            charon = vpn.start(topo.namespace("vpn-gateway"), vpn_dir)
            lab.processes.append(
                Process("vpn-gateway", "charon", charon.pid, list(charon.args), str(vpn_dir / "charon.log"))
            )
        for (proc, log), node in zip(has, ("i-ha", "x-ha"), strict=True):
            _wait_listening(proc, log, node, deadline)
        if charon is not None:
            try:
                vpn.wait_ready(charon, vpn_dir)
            except netns.LabError as exc:
                # the lab is still useful without IPsec: the gateway stays a plain router, status says why
                lab.vpn_not_started = f"strongSwan failed: {exc}"
                netns.kill_all([charon.pid], grace=1.0)
                lab.processes = [p for p in lab.processes if p.name != "charon"]
        for node in FOREIGN_AGENTS:  # Figure 1's foreign agents, on their links (modes f and fvc)
            start_foreign_agent(lab, node)
        _connect_audit_vpn_host(lab)
        write_ha_profiles(lab)
        lab.up_seconds = time.monotonic() - t0
        save(lab)
    except BaseException:
        down(name, state_dir=state_dir)
        raise
    return lab


def _connect_audit_vpn_host(lab: Lab) -> None:
    """Put the site audit's VPN host on the VPN; when it cannot be, say why in the site profile (no failure)."""
    if lab.vpn_not_started is not None:
        lab.vpn_host_not_started = f"the VPN gateway is not running ({lab.vpn_not_started})"
    elif not br.vpn_host_allowed(lab.breaks):
        blocking = ", ".join(b for b in lab.breaks if not br.BREAKS[b].vpn_host)
        lab.vpn_host_not_started = f"the lab break {blocking} leaves the VPN unusable for clients"
    else:
        try:
            start_vpn_client(lab, AUDIT_VPN_HOST, identity="audit@lab.example")
            if br.VPN_PLAINTEXT in lab.breaks:
                _split_tunnel(lab, AUDIT_VPN_HOST)
        except MipcheckError as exc:
            lab.vpn_host_not_started = f"the audit's VPN client did not connect: {exc}"
    if lab.vpn_host_not_started is not None:
        write_site_profile(lab)


def _split_tunnel(lab: Lab, node: str) -> None:
    """The break ``vpn-plaintext``: only the i-HA is routed into the tunnel, the rest of 10/8 past it.

    With kernel-libipsec a client's IPsec policy takes effect through the
    routes charon installs into ``ipsec0`` (table 220, looked up by rule 220).
    Two rules before it make a split tunnel: the i-HA still goes to table 220,
    everything else for the internal network to the main table, i.e. out of
    the host's outer interface in plaintext. (charon puts back any route of
    table 220 that is deleted, and narrowing the traffic selectors cannot be
    built here: kernel-libipsec on the gateway refuses a child SA whose local
    selector holds none of its addresses.)
    """
    ns = lab.topology.namespace(node)
    netns.ip("rule", "add", "to", f"{IHA_ADDRESS}/32", "lookup", "220", "priority", "100", ns=ns)
    netns.ip("rule", "add", "to", str(INTERNAL_NETWORK), "lookup", "main", "priority", "101", ns=ns)


def write_ha_profiles(lab: Lab) -> None:
    """The HA suite's profiles of the i-HA (``mipcheck lab audit-ha``): from inside, and from the VPN when on it."""
    tia = vpn_tunnel_address(lab, AUDIT_VPN_HOST) if lab.vpn_host_not_started is None else None
    lab.ha_profiles = ha_audit.write_profiles(lab, tia)
    for vantage, record in lab.ha_profiles.items():
        if record["profile"]:
            lab.files[f"ha profile {vantage}"] = record["profile"]


def save(lab: Lab) -> None:
    path = lab.state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(lab.as_json(), indent=2) + "\n")
    tmp.replace(path)


def load(name: str = "lab", *, state_dir: Path | None = None) -> Lab:
    check_lab_name(name)
    netns.preflight()
    state_dir = Path(state_dir) if state_dir else default_state_dir(name)
    path = state_dir / STATE_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        left = netns.namespaces(namespace_prefix(name))
        hint = f" ({len(left)} namespaces of it are left over: `mipcheck lab down --name {name}`)" if left else ""
        raise MipcheckError(f"lab {name!r} is not up: no {path}{hint}", exit_code=1) from None
    except (OSError, ValueError) as exc:
        raise MipcheckError(f"{path}: cannot read: {exc}") from None
    return Lab.from_json(doc)


def start_vpn_client(
    lab: Lab, node: str = "mn", identity: str = MN_NAI, *, local_address: str | None = None, connect: bool = True
) -> Process:
    """Connect ``node`` to the VPN gateway with its own charon (IKEv2 PSK, virtual IP = a VPN-TIA).

    Blocks until the child SA is up (``connect=False``: only until charon has its connection loaded;
    ``vpn.initiate_command`` brings it up later); the client's files are under ``<state>/vpn-<node>/``
    and its process is recorded in ``lab.json`` (``down`` stops it with the rest). ``local_address``:
    IKE and ESP from there (mode cvc: the MN's x-HoA, RFC 5265 2.3).
    """
    reason = lab.vpn_not_started or vpn.missing()
    if reason:
        raise MipcheckError(f"vpn: not running ({reason})")
    directory = lab.state_dir / f"vpn-{node}"
    psk = (lab.state_dir / "secrets" / "vpn.psk").read_text().strip()
    vpn.write_config(directory, vpn.client_conf(psk, identity, local_address))
    for stale in ("charon.vici", "charon.pid"):  # a socket left by an earlier client would look ready at once
        (directory / stale).unlink(missing_ok=True)
    proc = vpn.start(lab.topology.namespace(node), directory)
    record = Process(node, "charon", proc.pid, list(proc.args), str(directory / "charon.log"))
    lab.processes.append(record)
    save(lab)
    vpn.wait_ready(proc, directory)
    if connect:
        vpn.initiate(directory)
    return record


def vpn_tunnel_address(lab: Lab, node: str = "mn") -> str | None:
    """The VPN-TIA the gateway gave ``node`` (the address on its ``ipsec0``), None without one."""
    out = netns.ip("-o", "-4", "address", "show", "dev", "ipsec0", ns=lab.topology.namespace(node), check=False)
    for word in out.split():
        if "/" in word and word.split("/")[0].count(".") == 3:
            return word.split("/")[0]
    return None


# ------------------------------------------------------------------ down


@dataclass
class DownReport:
    namespaces: list[str]
    killed: list[int]
    state_dir: Path | None
    left: list[str]


def down(name: str = "lab", *, state_dir: Path | None = None) -> DownReport:
    """Remove every trace of lab ``name``; idempotent, and needs nothing ``up`` wrote."""
    check_lab_name(name)
    netns.preflight()
    state_dir = Path(state_dir) if state_dir else default_state_dir(name)
    prefix = namespace_prefix(name)
    names: list[str] = []
    pids: set[int] = set()
    left: list[str] = []
    for _ in range(3):  # a crashed up's orphaned `ip netns add` may still make a namespace after the first pass
        found = netns.namespaces(prefix)
        inodes = [i for i in (netns.namespace_inode(n) for n in found) if i]
        # what runs in the namespaces, what was started for them but had not entered one yet, and `ip` commands
        # still making them (a killed up leaves its children running)
        killing = set(netns.pids_in(inodes)) | set(netns.pids_naming(str(state_dir) + os.sep))
        killing |= set(netns.pids_naming(prefix))
        killing.discard(os.getpid())
        netns.kill_all(killing)
        pids |= killing
        names += [n for n in found if n not in names]
        left = netns.delete_namespaces(found)
        if not killing and not netns.namespaces(prefix):
            break
    removed = None
    if state_dir.exists():
        shutil.rmtree(state_dir, ignore_errors=True)
        removed = state_dir
    return DownReport(names, sorted(pids), removed, left)


def down_all() -> list[DownReport]:
    """``down`` for every lab on this machine (any namespace named ``mipcheck-<lab>-...``)."""
    labs = sorted({n.split("-")[1] for n in netns.namespaces("mipcheck-") if n.count("-") >= 2})
    return [down(lab) for lab in labs if check_lab_name_ok(lab)]


def check_lab_name_ok(name: str) -> bool:
    try:
        check_lab_name(name)
    except MipcheckError:
        return False
    return True


# ------------------------------------------------------------------ status


def status(lab: Lab) -> dict[str, Any]:
    """``lab.json`` plus what is alive now: namespaces, processes, firewall table, VPN."""
    doc = lab.as_json()
    topo = lab.topology
    existing = set(netns.namespaces(topo.prefix))
    problems: list[str] = []
    for node in doc["nodes"] + doc["vantages"]:
        ns = node["namespace"]
        node["namespace_exists"] = ns in existing
        alive = {str(pid): netns.pid_alive_in(pid, ns) for pid in node["pids"]}
        node["alive"] = alive
        if not node["namespace_exists"]:
            problems.append(f"{node['name']}: namespace {ns} is gone")
        for pid, ok in alive.items():
            if not ok:
                problems.append(f"{node['name']}: pid {pid} is not running")
    doc["switch"]["namespace_exists"] = topo.switch_namespace in existing
    if not doc["switch"]["namespace_exists"]:
        problems.append(f"switch: namespace {topo.switch_namespace} is gone")
    fw_ns = topo.namespace("firewall")
    table = f"{firewall.TABLE_FAMILY} {firewall.TABLE}"
    doc["firewall"]["loaded"] = fw_ns in existing and table in firewall.tables(fw_ns)
    if not doc["firewall"]["loaded"]:
        problems.append(f"firewall: table {table} is not loaded")
    charon = next((p.pid for p in lab.processes if p.name == "charon"), None)
    st = vpn.status(topo.namespace("vpn-gateway"), lab.state_dir / "vpn-gateway", charon, lab.vpn_not_started)
    doc["vpn"].update(running=st.running, status=str(st), pid=st.pid)
    if lab.vpn_not_started is None and not st.running:
        problems.append(str(st))
    doc["problems"] = problems
    doc["healthy"] = not problems
    return doc
