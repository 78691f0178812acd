"""``mipcheck lab run --mode MODE[,MODE...]``: RFC 5265 access modes end to end over the lab's real links.

Mode c: the mobile node is inside, on the internal network, with a co-located
care-of address, registered with the i-HA and reverse tunnelled to it (i-MIP).
Mode f: inside, on the i-FA's link, registered through the reference foreign
agent with its care-of address (the agent tunnels IP-in-IP both ways).
Mode cvc: outside with a co-located care-of address: x-MIP to the x-HA, the
VPN (strongSwan in the MN's namespace, IKE from the x-HoA through x-MIP),
i-MIP from the VPN-TIA through the VPN (2.3). Mode fvc: the same with x-MIP
through the x-FA. What ``run`` does, in a lab that is up:

1. the home agents get their data planes (:mod:`mipcheck.ha.tun`): a TUN
   ``tunha`` in their namespace (restarted as ``ha serve --tun tunha`` when
   running without one), forwarding, a host route for their home address into
   the TUN and proxy ARP for it (RFC 5944 4.6); for f and fvc the foreign
   agents start on their links (``fa serve --link fa --tun tunfa``) and stay;
2. the MN's namespace gets ``tun0`` with the home addresses and policy rules
   (:mod:`.mnhost`), cvc a VPN client; the reference MN starts as ``mn run
   --tun tun0`` (cvc: ``--host-vpn ipsec0``) with ``mn-lab.toml``;
3. for each mode in turn: the MN's veth moves between the switch's bridges,
   the node is told (``mn ctl move``), ``run`` waits for the detection the
   mode must end in, pings the CN from the home address and, for a sequence,
   exchanges a line over one TCP connection kept across the moves;
4. every segment is captured (:mod:`.capture`) and written as a pcap; the
   overhead is measured on them (:mod:`.overhead`) next to RFC 5265 5.2;
5. everything of the run is undone (the MN back on its own network, its
   runner and VPN client stopped, ``tun0`` and the rules gone); the home
   agents keep their data planes (harmless: only home addresses reach them).

docs/lab.md has the diagrams and the measured figures.
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mipcheck.errors import MipcheckError
from mipcheck.proto.ip import checksum

from . import control, netns, vpn
from .capture import SegmentCapture
from .mnhost import (
    BEHIND_NAT,
    I_FA_LINK,
    MN_IFACE,
    MN_PORT,
    MN_TUN,
    MODE_C_COA,
    X_FA_LINK,
    MobileNodeHost,
    RunError,
)
from .overhead import overhead
from .topology import (
    CN_ADDRESS,
    IHA_ADDRESS,
    INNER_HOME_ADDRESS,
    OUTER_HOME_ADDRESS,
    VPN_GATEWAY_ADDRESS,
    XHA_ADDRESS,
)

MODES = ("c", "f", "cvc", "fvc")
IMPLEMENTED = MODES
MISSING: dict[str, str] = {}  # every mode is built; kept for a mode that is not (the CLI says what is missing)
#: the detection result each mode must end in (RFC 5265 1.3)
EXPECTED = {"c": "inside", "f": "inside", "cvc": "outside", "fvc": "outside"}
FOREIGN_AGENT = {"f": "i-fa", "fvc": "x-fa"}  # the node whose reference FA the MN registers through
FA_LINK, FA_TUN = control.FA_LINK, control.FA_TUN
foreign_agent = control.start_foreign_agent  # started by `up`; a lab from before gets them on its first run
#: the reference MN's tunnels with a co-located care-of address (udp, ipip), or what it asks of a foreign agent
ENCAPSULATIONS = ("udp", "ipip", "minimal")
HA_TUN = "tunha"  # the home agents' data-plane TUN (one per namespace)
#: Longest wait from the move to the expected mode: cvc waits out the detection period (3 s: the i-HA never
#: answers from outside, 3.3), then IKE and the i-MIP registration through the VPN.
DETECT_TIMEOUT = {"c": 15.0, "f": 15.0, "cvc": 25.0, "fvc": 25.0}
PING_TIMEOUT = 2.0
SESSION_TIMEOUT = 10.0  # connect or one echo on the session (TCP retransmits over a lost packet or two)
LOG_WAIT = 2.5  # longest wait for a home agent's decision log to be flushed


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


def ha_data_plane(lab: control.Lab, node: str, home_address: str) -> dict[str, Any]:
    """A home agent's TUN, forwarding, host route and proxy ARP for its home address; restart it with ``--tun``.

    The i-HA's for the i-HoA (every mode), the x-HA's for the x-HoA (cvc: the VPN's IKE and ESP from the
    x-HoA reach the gateway through it, RFC 5265 2.3).
    """
    topo = lab.topology
    ns = topo.namespace(node)
    if HA_TUN not in netns.ip("-o", "link", "show", ns=ns, check=False):
        netns.ip("tuntap", "add", "dev", HA_TUN, "mode", "tun", ns=ns)
    netns.ip("link", "set", HA_TUN, "up", ns=ns)
    netns.ip("route", "replace", f"{home_address}/32", "dev", HA_TUN, ns=ns)
    leg = topo.node(node).interfaces[0].name
    netns.sysctl(
        ns,
        {
            "net.ipv4.ip_forward": "1",
            "net.ipv4.conf.all.rp_filter": "0",
            f"net.ipv4.conf.{leg}.rp_filter": "0",
            f"net.ipv4.conf.{HA_TUN}.rp_filter": "0",
            f"net.ipv4.conf.{leg}.proxy_arp": "1",
            f"net.ipv4.neigh.{leg}.proxy_delay": "0",  # answer at once, not after up to 0.8 s
        },
    )
    current = next((p for p in lab.processes if p.name == node), None)
    restarted = False
    config = lab.state_dir / f"{node}.toml"
    stale = control.ENCAPSULATIONS_LINE not in config.read_text()  # a lab built before the agents offered 'M'
    if stale:
        text = config.read_text()
        first_table = text.find("\n[[")
        config.write_text(text[:first_table] + "\n" + control.ENCAPSULATIONS_LINE + text[first_table:])
    if stale or current is None or "--tun" not in current.argv or not netns.pid_alive_in(current.pid, ns):
        if current is not None:
            netns.kill_all([current.pid], grace=2.0)
            lab.processes.remove(current)
        log = lab.state_dir / "logs" / f"{node}.log"
        offset = log.stat().st_size if log.exists() else 0
        faults = ("omit-tnc",) if node == "i-ha" and "iha-omit-tnc" in lab.breaks else ()
        proc, log = control._start_ha(lab, node, faults, ("--tun", HA_TUN))
        control.save(lab)
        control._wait_listening(proc, log, node, time.monotonic() + control.HA_START_TIMEOUT, offset)
        restarted = True
    return {"namespace": ns, "tun": HA_TUN, "restarted": restarted, "proxy_arp": leg}


def iha_data_plane(lab: control.Lab) -> dict[str, Any]:
    """The i-HA's data plane for the i-HoA (:func:`ha_data_plane`)."""
    return ha_data_plane(lab, "i-ha", INNER_HOME_ADDRESS)


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


def _decision_time(record: dict[str, Any]) -> float | None:
    """A decision log record's time (``2026-12-07T21:40:05.191Z``) as a POSIX timestamp."""
    try:
        return _dt.datetime.fromisoformat(str(record.get("time"))).timestamp()
    except ValueError:
        return None


def _accepted(
    path: Path, offset: int, home: str, *, wait: bool, since: float | None = None, until: float | None = None
) -> list[dict[str, Any]]:
    """Accepted registrations for ``home`` in a home agent's decision log since ``offset`` (and in [since, until)).

    The home agent flushes its log at most every second (``LOG_FLUSH_PERIOD``): with ``wait`` (a
    registration is known to have been accepted), read again for up to :data:`LOG_WAIT` seconds.
    """
    deadline = time.monotonic() + (LOG_WAIT if wait else 0.0)
    while True:
        found = [
            d
            for d in _decisions_since(path, offset)
            if d.get("outcome") == "accepted"
            and d.get("home_address") == home
            and d.get("code") is not None
            and (since is None or (_decision_time(d) or 0) >= since)
            and (until is None or (_decision_time(d) or 0) < until)
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


def _wait_for_mode(host: MobileNodeHost, want: str, timeout: float) -> tuple[str | None, dict[str, Any]]:
    mode_now, status = None, {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = host.status()
        mode_now = status["interfaces"][MN_IFACE]["mode"]
        if mode_now == want or (want == "inside" and mode_now == "outside"):
            break
        time.sleep(0.02)
    return mode_now, status


class Session:
    """One TCP connection from the MN's i-HoA to an echo server on the CN, kept across moves.

    Why: RFC 5265's point is that the inner session survives the move between inside and outside; the CN
    must see the same peer (the i-HoA) on the same connection in every mode.
    """

    def __init__(self, lab: control.Lab) -> None:
        topo = lab.topology
        self.server = netns.socket_in(topo.namespace("cn"), socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((CN_ADDRESS, 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.client = netns.socket_in(topo.namespace("mn"), socket.SOCK_STREAM)
        self.peer: tuple[str, int] | None = None
        self.conn: socket.socket | None = None
        self.local: tuple[str, int] | None = None

    def connect(self, timeout: float = SESSION_TIMEOUT) -> None:
        self.client.settimeout(timeout)
        self.client.bind((INNER_HOME_ADDRESS, 0))  # the policy route takes it into tun0
        self.client.connect((CN_ADDRESS, self.port))
        self.local = self.client.getsockname()
        self.server.settimeout(timeout)
        self.conn, self.peer = self.server.accept()
        self.conn.settimeout(timeout)

    def exchange(self, line: str) -> dict[str, Any]:
        """MN -> CN -> MN on the connection; what the CN saw as its peer."""
        data = (line + "\n").encode()
        t0 = time.monotonic()
        try:
            if self.conn is None:
                self.connect()
            assert self.conn is not None
            self.client.sendall(data)
            got = b""
            while not got.endswith(b"\n"):
                chunk = self.conn.recv(4096)
                if not chunk:
                    raise ConnectionError("the CN's end was closed")
                got += chunk
            self.conn.sendall(got)
            back = b""
            while not back.endswith(b"\n"):
                chunk = self.client.recv(4096)
                if not chunk:
                    raise ConnectionError("the MN's end was closed")
                back += chunk
        except (OSError, ConnectionError) as exc:
            return {"ok": False, "error": str(exc) or type(exc).__name__, "cn_peer": self._peer()}
        ms = round((time.monotonic() - t0) * 1000, 3)
        return {"ok": back == data, "cn_peer": self._peer(), "mn_local": self._local(), "round_trip_ms": ms}

    def _peer(self) -> str | None:
        return None if self.peer is None else f"{self.peer[0]}:{self.peer[1]}"

    def _local(self) -> str | None:
        return None if self.local is None else f"{self.local[0]}:{self.local[1]}"

    def close(self) -> None:
        for sock in (self.client, self.conn, self.server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def run_mode(
    lab: control.Lab, mode: str, *, pings: int = 3, out_dir: Path | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run access mode ``mode`` end to end; returns the report (``ok``: detected right, registered, pings answered)."""
    return run_modes(lab, (mode,), pings=pings, out_dir=out_dir, timeout=timeout)


def run_modes(
    lab: control.Lab,
    modes: tuple[str, ...],
    *,
    pings: int = 3,
    out_dir: Path | None = None,
    timeout: float | None = None,
    nat: bool = False,
    encapsulation: str = "udp",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run access modes one after the other with one reference MN; returns the report.

    One mode: the report of that mode. Several (``c,cvc,c``: inside, outside, inside again): ``steps``, one
    such report per move, and ``session``: a TCP connection from the i-HoA to the CN opened in the first mode
    and used after every move (RFC 5265: the inner session survives; the CN sees the same home address).
    ``nat``: outside, the MN is behind the lab's NAT (as after ``up --nat``), 192.168.100.10.
    ``encapsulation``: the reference MN's tunnels with a co-located care-of address: ``udp`` (RFC 3519 Tunnel
    Data) or ``ipip`` (RFC 2003, through raw sockets at both ends). ``progress``: one line per step, live.
    """
    say = progress or (lambda _line: None)
    if encapsulation not in ENCAPSULATIONS:
        raise MipcheckError(f"encapsulation {encapsulation!r}: one of {', '.join(ENCAPSULATIONS)}")
    if encapsulation == "minimal" and not set(modes) & set(FOREIGN_AGENT):
        raise MipcheckError(
            "lab run --encapsulation minimal: minimal encapsulation runs between a home agent and a foreign "
            "agent (RFC 2004, 'M'): give mode f or fvc"
        )
    for mode in modes:
        if mode not in MODES:
            raise MipcheckError(f"mode {mode!r}: one of {', '.join(MODES)}")
        if mode not in IMPLEMENTED:
            raise MipcheckError(f"lab run --mode {mode}: not built yet ({MISSING[mode]}; docs/lab.md)")
    if not modes:
        raise MipcheckError("lab run: no mode given")
    if nat and "cvc" not in modes:
        raise MipcheckError(
            "lab run --nat: the NAT is in front of the MN's co-located care-of address outside (mode cvc); "
            "c and f are inside, fvc is behind the x-FA"
        )
    need_vpn = bool({"cvc", "fvc"} & set(modes))
    if need_vpn:
        reason = lab.vpn_not_started or vpn.missing()
        if reason:
            which = "/".join(m for m in modes if EXPECTED[m] == "outside")
            raise RunError(f"lab run --mode {which} needs the lab's VPN gateway: {reason}")
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(out_dir) if out_dir else lab.state_dir / "runs" / f"mode-{'-'.join(modes)}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    topo = lab.topology
    t0 = time.monotonic()
    report: dict[str, Any] = {"mode": ",".join(modes), "lab": lab.name, "directory": str(out), "problems": []}
    report["encapsulation"] = encapsulation
    report["i_ha"] = iha_data_plane(lab)
    if need_vpn:
        report["x_ha"] = ha_data_plane(lab, "x-ha", OUTER_HOME_ADDRESS)
    agents = sorted({FOREIGN_AGENT[m] for m in modes if m in FOREIGN_AGENT})
    report["foreign_agents"] = {node: foreign_agent(lab, node) for node in agents}
    host = MobileNodeHost(lab, out, nat=nat and not topo.nat)
    report["nat"] = host.outside == BEHIND_NAT or topo.nat
    profile = lab.state_dir / "mn-lab.toml"
    profile.write_text(mn_profile_text(lab, host.outside.address))
    os.chmod(profile, 0o600)
    report["mn_profile"] = str(profile)
    logs = {"i-ha": lab.state_dir / "i-ha.decisions.log", "x-ha": lab.state_dir / "x-ha.decisions.log"}
    mn_ns, iha_leg = topo.namespace("mn"), topo.node("i-ha").interfaces[0].name
    captures = [
        SegmentCapture("mn-eth0", mn_ns, MN_IFACE),
        SegmentCapture("mn-tun0", mn_ns, MN_TUN),
        SegmentCapture("i-ha-int", topo.namespace("i-ha"), iha_leg),
        SegmentCapture("i-ha-tunha", topo.namespace("i-ha"), HA_TUN),
        SegmentCapture("cn-int", topo.namespace("cn"), topo.node("cn").interfaces[0].name),
    ]
    if need_vpn:
        captures += [
            SegmentCapture("x-ha-dmz", topo.namespace("x-ha"), topo.node("x-ha").interfaces[0].name),
            SegmentCapture("x-ha-tunha", topo.namespace("x-ha"), HA_TUN),
            SegmentCapture("mn-ipsec0", mn_ns, "ipsec0"),  # kernel-libipsec's TUN: charon makes it at start
        ]
    for node in agents:  # the agent's link, and its leg towards the home agents
        for leg in topo.node(node).interfaces:
            captures.append(SegmentCapture(f"{node}-{leg.name}", topo.namespace(node), leg.name))
    started: list[SegmentCapture] = []
    session = Session(lab) if len(modes) > 1 else None
    raw: list[dict[str, Any]] = []
    try:
        host.prepare(x_home=need_vpn)
        extra: tuple[str, ...] = ("--encapsulation", encapsulation)
        if need_vpn:
            directory = host.start_vpn_client()
            extra += ("--host-vpn", "ipsec0", "--vpn-up", vpn.initiate_command(directory))
            extra += ("--vpn-down", vpn.terminate_command(directory))
            report["vpn_client"] = {"directory": str(directory), "local_address": OUTER_HOME_ADDRESS}
        for cap in captures:
            started.append(cap.start())
        host.start(profile, extra)
        for index, mode in enumerate(modes):
            say(f"move {index + 1}/{len(modes)}: mode {mode}, waiting for {EXPECTED[mode]} ...")
            step = _one_move(host, mode, index, pings, timeout, logs, session)
            answered = sum(r is not None for r in step["rtts"])
            waited = step["detected_at"] - step["moved_at"]
            say(f"  {step['mode_now']} after {waited:.2f} s; {answered}/{pings} pings answered")
            raw.append(step)
    finally:
        for cap in started:
            cap.stop()
        if session is not None:
            session.close()
        report["problems"] += host.restore()
    pcaps = {}
    for cap in captures:
        pcaps[cap.name] = {
            "file": str(cap.write(out / f"{cap.name}.pcap")),
            "packets": len(cap.packets),
            "namespace": cap.ns,
            "interface": cap.interface,
        }
    events = _events(host.events)
    steps = []
    for index, step in enumerate(raw):
        until = raw[index + 1]["started"] if index + 1 < len(raw) else None
        steps.append(_step_report(step, events, captures, logs, until, encapsulation))
    if len(modes) == 1:
        report.update(steps[0])
        report["ok"] = steps[0]["ok"] and not report["problems"]
    else:
        peers = {s["session"].get("cn_peer") for s in steps}
        session_ok = all(s["session"].get("ok") for s in steps) and len(peers) == 1
        report["steps"] = steps
        report["session"] = {
            "ok": session_ok,
            "cn_peer": next(iter(peers)) if len(peers) == 1 else sorted(p or "-" for p in peers),
            "same_connection": len(peers) == 1 and None not in peers,
            "exchanges": [s["session"] for s in steps],
        }
        report["ok"] = all(s["ok"] for s in steps) and session_ok and not report["problems"]
    report["pcaps"] = pcaps
    report["seconds"] = round(time.monotonic() - t0, 3)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _one_move(
    host: MobileNodeHost,
    mode: str,
    index: int,
    pings: int,
    timeout: float | None,
    logs: dict[str, Path],
    session: Session | None,
) -> dict[str, Any]:
    """Move the MN for ``mode``, wait for its detection, exchange data; what happened, still raw."""
    want = EXPECTED[mode]
    offsets = {k: (p.stat().st_size if p.exists() else 0) for k, p in logs.items()}
    begun = time.time()
    if mode == "c":
        host.move_inside()
        moved_at = time.time()
        host.ctl({"command": "move", "interface": MN_IFACE, "network": "inside", "care_of_address": MODE_C_COA})
    elif mode in FOREIGN_AGENT:  # f, fvc: onto the agent's link; the node registers through the agent it hears
        place = I_FA_LINK if mode == "f" else X_FA_LINK
        host.go(place)
        moved_at = time.time()
        request = {"command": "move", "interface": MN_IFACE, "network": want, "care_of_address": place.home}
        host.ctl({**request, "foreign_agent": "advertised"})
    else:  # cvc: the MN on its own (external) network or behind the NAT, that address as co-located care-of address
        host.move_outside()
        moved_at = time.time()
        coa = host.outside.address
        host.ctl({"command": "move", "interface": MN_IFACE, "network": "outside", "care_of_address": coa})
    mode_now, status = _wait_for_mode(host, want, timeout if timeout is not None else DETECT_TIMEOUT[mode])
    detected_at = time.time()
    rtts = ping(host.ns, INNER_HOME_ADDRESS, CN_ADDRESS, pings) if mode_now == want else []
    exchanged = None
    if session is not None:
        exchanged = (
            session.exchange(f"step {index + 1}: mode {mode}")
            if mode_now == want
            else {"ok": False, "error": f"not run: the MN is {mode_now}, not {want}"}
        )
    time.sleep(0.2)  # the last packets reach every capture
    return {
        "mode": mode,
        "want": want,
        "started": begun,
        "offsets": offsets,
        "moved_at": moved_at,
        "detected_at": detected_at,
        "mode_now": mode_now,
        "status": host.status(),
        "rtts": rtts,
        "pings": pings,
        "session": exchanged,
    }


def _step_report(
    step: dict[str, Any],
    events: list[dict[str, Any]],
    captures: list[SegmentCapture],
    logs: dict[str, Path],
    until: float | None,
    encapsulation: str = "udp",
) -> dict[str, Any]:
    """One mode's report: registrations, detection, data, overhead (packets captured during the step only)."""
    mode, want, mode_now = step["mode"], step["want"], step["mode_now"]
    begun = step["started"]
    mine = [e for e in events if begun <= e.get("at", 0) and (until is None or e.get("at", 0) < until)]
    detected_ev = next((e["at"] for e in mine if e.get("event") == want.capitalize()), None)
    moved_ev = next((e["at"] for e in mine if e.get("event") == "Moved" and e.get("care_of_address")), None)
    vpn_up_at = next(
        (e["at"] for e in mine if e.get("event") == "ModeChanged" and e.get("new") == "inner-registering"), None
    )
    done = mode_now == want
    span = {"since": begun, "until": until}
    iha_accepts = _accepted(logs["i-ha"], step["offsets"]["i-ha"], INNER_HOME_ADDRESS, wait=done, **span)
    x_wait = done and EXPECTED[mode] == "outside"
    xha_accepts = _accepted(logs["x-ha"], step["offsets"]["x-ha"], OUTER_HOME_ADDRESS, wait=x_wait, **span)
    window = {c.name: c.window(begun, until) for c in captures}
    for absent in ("mn-ipsec0", "i-fa-int", "x-fa-ext"):  # a mode's overhead needs only its own segments
        window.setdefault(absent, [])
    cn = window["cn-int"]
    rtts = step["rtts"]
    answered = [r for r in rtts if r is not None]
    status = step["status"]
    iface = status.get("interfaces", {}).get(MN_IFACE, {}) if status else {}
    report: dict[str, Any] = {
        "mode": mode,
        "registration": {
            "i_ha_accepted": len(iha_accepts),
            "i_ha_tnc": any(d.get("tnc") for d in iha_accepts),
            "i_ha_care_of_address": iha_accepts[-1].get("care_of_address") if iha_accepts else None,
            "i_ha_udp_tunnel": any(d.get("udp_tunnel") for d in iha_accepts),
            "x_ha_accepted": len(xha_accepts),
            "x_ha_care_of_address": xha_accepts[-1].get("care_of_address") if xha_accepts else None,
            # behind the NAT the x-HA sees the NAT's address here, not the care-of address (RFC 3519)
            "x_ha_source": xha_accepts[-1].get("source") if xha_accepts else None,
        },
        "detection": {
            "result": mode_now,
            "expected": want,
            "seconds": round(detected_ev - moved_ev, 4)
            if detected_ev is not None and moved_ev is not None
            else round(step["detected_at"] - step["moved_at"], 4),
            "seconds_observed": round(step["detected_at"] - step["moved_at"], 4),  # `mn ctl move` until status
            "data_gate": iface.get("data"),
            "care_of_address": iface.get("care_of_address"),
            "vpn_tia": iface.get("vpn_tia"),
            "vpn_up_seconds": round(vpn_up_at - moved_ev, 4) if None not in (vpn_up_at, moved_ev) else None,
        },
        "data": {
            "pings": step["pings"],
            "answered": len(answered),
            "rtt_ms": [None if r is None else round(r * 1000, 3) for r in rtts],
            "rtt_ms_avg": round(sum(answered) * 1000 / len(answered), 3) if answered else None,
            "cn_saw_requests_from_home_address": _echo_seen(cn, INNER_HOME_ADDRESS, CN_ADDRESS, 8),
            "cn_sent_replies_to_home_address": _echo_seen(cn, CN_ADDRESS, INNER_HOME_ADDRESS, 0),
            "mn_counters": iface.get("counters", {}),
        },
        "overhead": overhead(mode, window, encapsulation),
    }
    if step["session"] is not None:
        report["session"] = step["session"]
    registered = bool(iha_accepts and report["registration"]["i_ha_tnc"])
    if mode in ("cvc", "fvc"):  # 2.3: x-MIP, then i-MIP with the VPN-TIA as care-of address
        tia = iface.get("vpn_tia")
        registered = registered and bool(xha_accepts) and tia is not None
        registered = registered and report["registration"]["i_ha_care_of_address"] == tia
    if mode in FOREIGN_AGENT:  # RFC 5944 3.7: the agent's care-of address (x-MIP's in fvc, i-MIP's in f)
        agent = (I_FA_LINK if mode == "f" else X_FA_LINK).gateway
        home_agent_coa = report["registration"]["i_ha_care_of_address" if mode == "f" else "x_ha_care_of_address"]
        registered = registered and home_agent_coa == agent and iface.get("foreign_agent") == agent
    report["ok"] = bool(
        done
        and registered
        and step["pings"] > 0
        and len(answered) == step["pings"]
        and report["overhead"]["measured"]
        and (step["session"] is None or step["session"].get("ok"))
    )
    return report
