"""``mipcheck lab run --mode c``: access mode c of RFC 5265 end to end over the lab's real links.

Mode c: the mobile node is inside, on the internal network, with a co-located
care-of address, registered with the i-HA only and reverse tunnelled to it
(i-MIP; no FA, no VPN). What ``run`` does, in a lab that is up:

1. the i-HA gets its data plane (:mod:`mipcheck.ha.tun`): a TUN device
   ``tunha`` in its namespace, restarted as ``ha serve --tun tunha`` when it
   runs without one, IP forwarding, a host route for the i-HoA into the TUN
   and proxy ARP for it on the internal network (RFC 5944 4.6: the CN reaches
   the home address on its home link through the home agent);
2. the MN's namespace gets ``tun0`` with the i-HoA and a policy route (what
   the home address sends goes into ``tun0``); the reference MN starts as
   ``mn run --tun tun0`` with a profile for the lab (``mn-lab.toml``: the
   lab's i-HA and x-HA, its keys, care-of addresses inside 10.1.0.50 and
   outside its usual address);
3. the MN's veth is moved in the switch from its bridge to the internal one,
   readdressed, and the node told with ``mn ctl move eth0 inside``; ``run``
   waits for detection (``mn ctl status``: mode inside);
4. the MN pings the CN from its home address (a raw ICMP socket bound to the
   i-HoA: through ``tun0``, the node's data gate, MIP Tunnel Data to the i-HA,
   its TUN, the CN, and back), while each segment is captured
   (:mod:`.capture`) and written as a pcap;
5. everything of the run is undone (the MN is back on its own network, its
   runner stopped, ``tun0`` and the route gone); the i-HA keeps its data
   plane (harmless: nothing is routed to it but the i-HoA).

The report: registrations (the i-HA's decision log: accepted, with TNC),
detection (mode, time from the move), data (pings answered, RTTs, the CN
saw the home address), overhead measured on the MN-i-HA segment (outer minus
inner IPv4 length of each Tunnel Data packet) next to RFC 5265 5.2's figure.
Modes f, cvc and fvc are not built yet (docs/lab.md says what is missing).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets
import select
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

from mipcheck.errors import MipcheckError
from mipcheck.mn.control import ask
from mipcheck.proto.ip import checksum

from . import control, netns
from .capture import SegmentCapture
from .topology import (
    CN_ADDRESS,
    IHA_ADDRESS,
    INNER_HOME_ADDRESS,
    OUTER_HOME_ADDRESS,
    VPN_GATEWAY_ADDRESS,
    XHA_ADDRESS,
)

MODES = ("c", "f", "cvc", "fvc")
IMPLEMENTED = ("c",)
MISSING = {
    "f": "needs a foreign agent in the data path (the i-FA namespace is a router; an FA agent is a later part)",
    "fvc": "needs the x-FA in the data path and IKE from the MN through the x-MIP tunnel",
    "cvc": "needs IKE from the MN's x-HoA through the x-MIP tunnel (the reference MN uses static ESP SAs; the "
    "lab's gateway speaks IKEv2 only)",
}
MODE_C_COA = "10.1.0.50"  # the MN's co-located care-of address on the internal network
INTERNAL_GATEWAY = "10.1.0.254"
IHA_TUN = "tunha"
MN_TUN = "tun0"
MN_IFACE = "eth0"
MN_TABLE = "100"  # the MN's policy-routing table: what the home address sends goes into tun0
MN_PORT = 49434
#: RFC 5265 5.2: maximum overhead per access mode (IP-in-IP; NAT traversal not included).
RFC5265_OVERHEAD = {"f": 0, "c": 20, "fvc": 77, "cvc": 97}
#: RFC 5265 5.2: "12 octets when MIP NAT traversal [RFC 3519] is used" (UDP 8 + Tunnel Data header 4).
MIP_NATT_OVERHEAD = 12
DETECT_TIMEOUT = 15.0
PING_TIMEOUT = 2.0
LOG_WAIT = 2.5  # longest wait for a home agent's decision log to be flushed


class RunError(MipcheckError):
    """A step of ``lab run`` failed; one line, exit 2."""


# ------------------------------------------------------------------ files


def mn_profile_text(lab: control.Lab, outside: str) -> str:
    """The reference MN's profile for this lab (``mn run --profile``); secrets by file, relative to it."""
    hexkey = secrets.token_hex
    return f"""\
# Reference MN profile for lab {lab.name!r}, written by `mipcheck lab run` (docs/lab.md).
[dut]
home_address = "{INNER_HOME_ADDRESS}"
interfaces = ["{MN_IFACE}"]
port = {MN_PORT}
t_monitor = 60
detection_period = 3
correspondent = "{CN_ADDRESS}"

[i_ha]
address = "{IHA_ADDRESS}"
spi = {control.INNER_SPI}
secret_file = "secrets/mn1-inner.key"

[x_ha]
address = "{XHA_ADDRESS}"
home_address = "{OUTER_HOME_ADDRESS}"
spi = {control.OUTER_SPI}
secret_file = "secrets/mn1-outer.key"

# Static ESP SAs of the reference MN: the lab's gateway speaks IKEv2 only, so these are never used
# (mode c runs inside; cvc and fvc need IKE from the MN, docs/lab.md).
[vpn]
gateway = "{VPN_GATEWAY_ADDRESS}"
inner_address = "10.8.0.250"
spi_in = 4097
spi_out = 4098
encryption = "AES-CBC"
encryption_key_hex = "{hexkey(16)}"
integrity = "HMAC-SHA1-96"
integrity_key_hex = "{hexkey(20)}"

[networks]
inside = "{MODE_C_COA}"
outside = "{outside}"
"""


# ------------------------------------------------------------------ the pieces


def _sysctl(ns: str, values: dict[str, str]) -> None:
    netns.sysctl(ns, values)


def iha_data_plane(lab: control.Lab) -> dict[str, Any]:
    """The i-HA's TUN, forwarding, host route and proxy ARP for the i-HoA; restart it with ``--tun`` if needed."""
    topo = lab.topology
    ns = topo.namespace("i-ha")
    if IHA_TUN not in netns.ip("-o", "link", "show", ns=ns, check=False):
        netns.ip("tuntap", "add", "dev", IHA_TUN, "mode", "tun", ns=ns)
    netns.ip("link", "set", IHA_TUN, "up", ns=ns)
    netns.ip("route", "replace", f"{INNER_HOME_ADDRESS}/32", "dev", IHA_TUN, ns=ns)
    leg = topo.node("i-ha").interfaces[0].name
    _sysctl(
        ns,
        {
            "net.ipv4.ip_forward": "1",
            "net.ipv4.conf.all.rp_filter": "0",
            f"net.ipv4.conf.{leg}.rp_filter": "0",
            f"net.ipv4.conf.{IHA_TUN}.rp_filter": "0",
            f"net.ipv4.conf.{leg}.proxy_arp": "1",
            f"net.ipv4.neigh.{leg}.proxy_delay": "0",  # answer at once, not after up to 0.8 s
        },
    )
    current = next((p for p in lab.processes if p.name == "i-ha"), None)
    restarted = False
    if current is None or "--tun" not in current.argv or not netns.pid_alive_in(current.pid, ns):
        if current is not None:
            netns.kill_all([current.pid], grace=2.0)
            lab.processes.remove(current)
        log = lab.state_dir / "logs" / "i-ha.log"
        offset = log.stat().st_size if log.exists() else 0
        faults = ("omit-tnc",) if "iha-omit-tnc" in lab.breaks else ()
        proc, log = control._start_ha(lab, "i-ha", faults, ("--tun", IHA_TUN))
        control.save(lab)
        control._wait_listening(proc, log, "i-ha", time.monotonic() + control.HA_START_TIMEOUT, offset)
        restarted = True
    return {"namespace": ns, "tun": IHA_TUN, "restarted": restarted, "proxy_arp": leg}


class MobileNodeHost:
    """The MN's namespace during a run: its veth in the switch, tun0, the policy route, the runner process."""

    def __init__(self, lab: control.Lab, directory: Path) -> None:
        self.lab = lab
        topo = lab.topology
        self.ns = topo.namespace("mn")
        self.switch = topo.switch_namespace
        leg = topo.node("mn").interfaces[0]
        self.port = leg.port
        self.home_bridge = topo.network(leg.network).bridge
        self.home_cidr = leg.address
        self.home_gateway = next(g for d, g in topo.node("mn").routes if d == "default")
        self.directory = directory
        self.socket = str(lab.state_dir / "mn.sock")  # short (sun_path), and named on the runner's command line
        self.events = directory / "mn-events.jsonl"
        self.log = directory / "mn.log"
        self.proc: subprocess.Popen | None = None
        self.record: control.Process | None = None
        self.moved = False

    # ---- the stack
    def prepare(self) -> None:
        ns = self.ns
        _sysctl(
            ns,
            {
                "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.default.rp_filter": "0",
                # the home address is on tun0: never answer ARP for it on eth0 (the i-HA proxies it)
                "net.ipv4.conf.all.arp_ignore": "1",
                "net.ipv4.conf.all.arp_announce": "2",
            },
        )
        if MN_TUN not in netns.ip("-o", "link", "show", ns=ns, check=False):
            netns.ip("tuntap", "add", "dev", MN_TUN, "mode", "tun", ns=ns)
        netns.ip("address", "replace", f"{INNER_HOME_ADDRESS}/32", "dev", MN_TUN, ns=ns)
        netns.ip("link", "set", MN_TUN, "up", ns=ns)
        netns.ip("route", "replace", "default", "dev", MN_TUN, "table", MN_TABLE, ns=ns)
        netns.ip("rule", "del", "from", INNER_HOME_ADDRESS, "lookup", MN_TABLE, ns=ns, check=False)
        netns.ip("rule", "add", "from", INNER_HOME_ADDRESS, "lookup", MN_TABLE, "priority", "100", ns=ns)

    def start(self, profile: Path) -> None:
        argv = control.mipcheck_argv(
            "mn", "run", "--profile", str(profile), "--socket", self.socket, "--tun", MN_TUN, "--quiet"
        )
        argv += ["--log-json", str(self.events)]
        full = netns.in_ns(self.ns, argv)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=control._child_env(),
                cwd=str(self.lab.state_dir),
                start_new_session=True,
            )
        self.record = control.Process("mn", "mn", self.proc.pid, full, str(self.log))
        self.lab.processes.append(self.record)
        control.save(self.lab)
        deadline = time.monotonic() + 10.0
        while True:
            if os.path.exists(self.socket):
                with contextlib.suppress(MipcheckError):
                    ask(self.socket, {"command": "status"}, timeout=1.0)
                    return
            if self.proc.poll() is not None:
                raise RunError(f"the reference MN did not start: {_last_line(self.log, self.proc.returncode)}")
            if time.monotonic() > deadline:
                raise RunError(f"the reference MN did not answer on {self.socket} in 10 s (see {self.log})")
            time.sleep(0.02)

    # ---- the link
    def move_inside(self) -> None:
        """The veth's switch end from its bridge to the internal one; the MN's address and route with it."""
        netns.ip("link", "set", self.port, "nomaster", ns=self.switch)
        self.moved = True
        netns.ip("link", "set", self.port, "master", "int", "up", ns=self.switch)
        netns.ip("address", "flush", "dev", MN_IFACE, ns=self.ns)
        netns.ip("address", "add", f"{MODE_C_COA}/24", "dev", MN_IFACE, ns=self.ns)
        netns.ip("route", "replace", "default", "via", INTERNAL_GATEWAY, ns=self.ns)

    def ctl(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = ask(self.socket, request, timeout=5.0)
        if not answer.get("ok"):
            raise RunError(f"mn ctl {request.get('command')}: {answer.get('error')}")
        return answer

    def status(self) -> dict[str, Any]:
        return self.ctl({"command": "status"})["status"]

    # ---- undo
    def restore(self) -> list[str]:
        """Stop the runner, put the MN back on its network; returns what could not be undone."""
        problems: list[str] = []
        if self.proc is not None:
            netns.kill_all([self.proc.pid], grace=2.0)
            with contextlib.suppress(Exception):
                self.proc.wait(1.0)
            if self.record in self.lab.processes:
                self.lab.processes.remove(self.record)
            with contextlib.suppress(OSError):
                control.save(self.lab)
        steps: list[tuple[str, ...]] = [
            ("rule", "del", "from", INNER_HOME_ADDRESS, "lookup", MN_TABLE),
            ("link", "del", MN_TUN),
        ]
        if self.moved:
            steps += [
                ("address", "flush", "dev", MN_IFACE),
                ("address", "add", self.home_cidr, "dev", MN_IFACE),
                ("route", "replace", "default", "via", self.home_gateway),
            ]
        for step in steps:
            try:
                netns.ip(*step, ns=self.ns)
            except netns.LabError as exc:
                problems.append(str(exc))
        if self.moved:
            try:
                netns.ip("link", "set", self.port, "nomaster", ns=self.switch)
                netns.ip("link", "set", self.port, "master", str(self.home_bridge), "up", ns=self.switch)
            except netns.LabError as exc:
                problems.append(str(exc))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        return problems


def _last_line(path: Path, code: int | None) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return lines[-1].strip() if lines else f"exit {code}"


# ------------------------------------------------------------------ data


def _icmp_echo(identifier: int, sequence: int, payload: bytes) -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, identifier, sequence)
    return head[:2] + struct.pack("!H", checksum(head + payload)) + head[4:] + payload


def ping(ns: str, src: str, dst: str, count: int, timeout: float = PING_TIMEOUT) -> list[float | None]:
    """ICMP echo from ``src`` (bound: the policy route takes it into tun0) to ``dst``; RTT per request or None."""
    sock = netns.socket_in(ns, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    identifier = secrets.randbelow(0xFFFF) + 1
    rtts: list[float | None] = []
    try:
        sock.bind((src, 0))
        for seq in range(1, count + 1):
            payload = b"mipcheck lab run mode c " + bytes(32)
            sent = time.monotonic()
            sock.sendto(_icmp_echo(identifier, seq, payload), (dst, 0))
            rtt = None
            deadline = sent + timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                data, _addr = sock.recvfrom(65535)
                ihl = (data[0] & 0x0F) * 4
                if len(data) < ihl + 8 or socket.inet_ntoa(data[12:16]) != dst:
                    continue
                kind, _code, _sum, ident, sequence = struct.unpack_from("!BBHHH", data, ihl)
                if kind == 0 and ident == identifier and sequence == seq:
                    rtt = time.monotonic() - sent
                    break
            rtts.append(rtt)
            if rtt is not None and seq < count:
                time.sleep(0.05)
    finally:
        sock.close()
    return rtts


def tunnel_overheads(packets: list[tuple[float, bytes, bool]]) -> list[dict[str, Any]]:
    """Each MIP Tunnel Data packet on a segment: outer and inner IPv4 lengths, their difference, direction."""
    found = []
    for _at, data, outgoing in packets:
        if len(data) < 20 or data[9] != 17:
            continue
        ihl = (data[0] & 0x0F) * 4
        udp = data[ihl : ihl + 8]
        if len(udp) < 8:
            continue
        sport, dport = struct.unpack("!HH", udp[:4])
        body = data[ihl + 8 :]
        if 434 not in (sport, dport) or len(body) < 24 or body[0] != 4 or body[4] >> 4 != 4:
            continue
        outer = struct.unpack("!H", data[2:4])[0]
        inner = struct.unpack("!H", body[6:8])[0]
        found.append(
            {
                "outer": outer,
                "inner": inner,
                "overhead": outer - inner,
                "direction": "mn->i-ha" if dport == 434 else "i-ha->mn",
                "outgoing": outgoing,
                "inner_protocol": body[4 + 9],
            }
        )
    return found


def _decisions_since(path: Path, offset: int) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict):
                out.append(rec)
    return out


def _accepted(path: Path, offset: int, home: str, *, wait: bool) -> list[dict[str, Any]]:
    """Accepted registrations for ``home`` in a home agent's decision log since ``offset``.

    The home agent flushes its log at most every second (``LOG_FLUSH_PERIOD``): with ``wait`` (a
    registration is known to have been accepted), read again for up to :data:`LOG_WAIT` seconds.
    """
    deadline = time.monotonic() + (LOG_WAIT if wait else 0.0)
    while True:
        found = [
            d
            for d in _decisions_since(path, offset)
            if d.get("outcome") == "accepted" and d.get("home_address") == home and d.get("code") is not None
        ]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def _events(path: Path) -> list[dict[str, Any]]:
    return _decisions_since(path, 0)


def _echo_seen(packets: list[tuple[float, bytes, bool]], src: str, dst: str, kind: int) -> int:
    n = 0
    for _at, data, _out in packets:
        if len(data) >= 28 and data[9] == 1:
            ihl = (data[0] & 0x0F) * 4
            if socket.inet_ntoa(data[12:16]) == src and socket.inet_ntoa(data[16:20]) == dst and data[ihl] == kind:
                n += 1
    return n


# ------------------------------------------------------------------ the run


def run_mode(
    lab: control.Lab, mode: str, *, pings: int = 3, out_dir: Path | None = None, timeout: float = DETECT_TIMEOUT
) -> dict[str, Any]:
    """Run access mode ``mode`` end to end; returns the report (``ok``: inside, registered, every ping answered)."""
    if mode not in MODES:
        raise MipcheckError(f"mode {mode!r}: one of {', '.join(MODES)}")
    if mode not in IMPLEMENTED:
        raise MipcheckError(f"lab run --mode {mode}: not built yet ({MISSING[mode]}; docs/lab.md)")
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(out_dir) if out_dir else lab.state_dir / "runs" / f"mode-{mode}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    topo = lab.topology
    t0 = time.monotonic()
    report: dict[str, Any] = {"mode": mode, "lab": lab.name, "directory": str(out), "problems": []}
    iha = iha_data_plane(lab)
    report["i_ha"] = iha
    outside = topo.node("mn").interfaces[0].ip
    profile = lab.state_dir / "mn-lab.toml"
    profile.write_text(mn_profile_text(lab, outside))
    os.chmod(profile, 0o600)
    report["mn_profile"] = str(profile)
    decisions = lab.state_dir / "i-ha.decisions.log"
    x_decisions = lab.state_dir / "x-ha.decisions.log"
    offsets = {p: (p.stat().st_size if p.exists() else 0) for p in (decisions, x_decisions)}
    host = MobileNodeHost(lab, out)
    captures = [
        SegmentCapture("mn-eth0", topo.namespace("mn"), MN_IFACE),
        SegmentCapture("mn-tun0", topo.namespace("mn"), MN_TUN),
        SegmentCapture("i-ha-int", topo.namespace("i-ha"), topo.node("i-ha").interfaces[0].name),
        SegmentCapture("i-ha-tunha", topo.namespace("i-ha"), IHA_TUN),
        SegmentCapture("cn-int", topo.namespace("cn"), topo.node("cn").interfaces[0].name),
    ]
    started: list[SegmentCapture] = []
    try:
        host.prepare()
        for cap in captures:
            started.append(cap.start())
        host.start(profile)
        host.move_inside()
        moved_at = time.time()
        host.ctl({"command": "move", "interface": MN_IFACE, "network": "inside", "care_of_address": MODE_C_COA})
        mode_now, status = None, {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = host.status()
            mode_now = status["interfaces"][MN_IFACE]["mode"]
            if mode_now in ("inside", "outside"):
                break
            time.sleep(0.02)
        detected_at = time.time()
        rtts = ping(topo.namespace("mn"), INNER_HOME_ADDRESS, CN_ADDRESS, pings) if mode_now == "inside" else []
        time.sleep(0.2)  # the last packets reach every capture
        status = host.status()
    finally:
        for cap in started:
            cap.stop()
        report["problems"] += host.restore()
    events = _events(host.events)
    inside_at = next((e["at"] for e in events if e.get("event") == "Inside"), None)
    moved_ev = next((e["at"] for e in events if e.get("event") == "Moved" and e.get("care_of_address")), None)
    iha_accepts = _accepted(decisions, offsets[decisions], INNER_HOME_ADDRESS, wait=mode_now == "inside")
    xha_accepts = _accepted(x_decisions, offsets[x_decisions], OUTER_HOME_ADDRESS, wait=mode_now == "inside")
    pcaps = {}
    for cap in captures:
        pcaps[cap.name] = {
            "file": str(cap.write(out / f"{cap.name}.pcap")),
            "packets": len(cap.packets),
            "namespace": cap.ns,
            "interface": cap.interface,
        }
    segment = next(c for c in captures if c.name == "mn-eth0")
    overheads = tunnel_overheads(segment.packets)
    data_overheads = sorted({o["overhead"] for o in overheads if o["inner_protocol"] == 1})
    cn = next(c for c in captures if c.name == "cn-int")
    answered = [r for r in rtts if r is not None]
    iface = status.get("interfaces", {}).get(MN_IFACE, {}) if status else {}
    report.update(
        registration={
            "i_ha_accepted": len(iha_accepts),
            "i_ha_tnc": any(d.get("tnc") for d in iha_accepts),
            "i_ha_care_of_address": iha_accepts[0].get("care_of_address") if iha_accepts else None,
            "i_ha_udp_tunnel": any(d.get("udp_tunnel") for d in iha_accepts),
            "x_ha_accepted": len(xha_accepts),
        },
        detection={
            "result": mode_now,
            "seconds": round(inside_at - moved_ev, 4)
            if inside_at is not None and moved_ev is not None
            else round(detected_at - moved_at, 4),
            "seconds_observed": round(detected_at - moved_at, 4),  # from `mn ctl move` until status said so
            "data_gate": iface.get("data"),
            "care_of_address": iface.get("care_of_address"),
        },
        data={
            "pings": pings,
            "answered": len(answered),
            "rtt_ms": [None if r is None else round(r * 1000, 3) for r in rtts],
            "rtt_ms_avg": round(sum(answered) * 1000 / len(answered), 3) if answered else None,
            "cn_saw_requests_from_home_address": _echo_seen(cn.packets, INNER_HOME_ADDRESS, CN_ADDRESS, 8),
            "cn_sent_replies_to_home_address": _echo_seen(cn.packets, CN_ADDRESS, INNER_HOME_ADDRESS, 0),
            "mn_counters": iface.get("counters", {}),
        },
        overhead={
            "segment": "mn-eth0 (MN - i-HA, internal network)",
            "measured": data_overheads,
            "tunnel_data_packets": len([o for o in overheads if o["inner_protocol"] == 1]),
            "packets": overheads[:20],
            "rfc5265_5_2": RFC5265_OVERHEAD[mode],
            "rfc5265_5_2_with_mip_nat_traversal": RFC5265_OVERHEAD[mode] + MIP_NATT_OVERHEAD,
            "why": "the reference agents tunnel in UDP (RFC 3519: IPv4 20 + UDP 8 + Tunnel Data header 4 = 32), "
            "RFC 5265 5.2 counts IP-in-IP (20) and adds 12 for MIP NAT traversal",
        },
        pcaps=pcaps,
        seconds=round(time.monotonic() - t0, 3),
    )
    report["ok"] = bool(
        mode_now == "inside"
        and iha_accepts
        and report["registration"]["i_ha_tnc"]
        and pings > 0
        and len(answered) == pings
        and data_overheads
        and not report["problems"]
    )
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
