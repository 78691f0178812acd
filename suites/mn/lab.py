"""The MN suite in the netns lab (``mipcheck lab suite-mn``): the played parties in the lab's namespaces.

The same cases as on loopback (:mod:`.cases`), against the reference mobile
node running in the lab's ``mn`` namespace over real links:

* :class:`LabEnv` is :class:`~.env.LoopbackEnv` with each played party's UDP
  socket opened inside the lab's namespace of that party
  (:func:`mipcheck.lab.netns.socket_in`): the i-HA at 10.1.0.1:434 in
  ``mipcheck-<lab>-i-ha``, the x-HA at 192.0.2.1:434 in ``...-x-ha``, the VPN
  gateway at 192.0.2.2:4500 in ``...-vpn-gateway``. With the reference MN's
  static SAs the ESP travels inside x-MIP Tunnel Data to the x-HA, which opens
  it (docs/design/mn-loopback.md); the gateway's own socket only sees a device
  that sends to the gateway directly, past the x-HA.
* The lab's firewall drops everything from outside to the i-HA (RFC 5265
  3.1), so from outside the played i-HA hears nothing, where on loopback it
  hears (and drops, as the firewall would) what the device sends it. The
  observation point that closes that gap is a tap on the MN's own link: an
  ``AF_PACKET`` socket on ``eth0`` in the MN's namespace hands every datagram
  the device sends to the i-HA's address and port from a source outside the
  internal network to the played i-HA, noted as seen on the MN's link
  (the i-HA's socket ignores such sources, so nothing is counted twice). The
  played i-HA never answers those (it drops requests from outside, as on
  loopback), so judging stays what it is on loopback. Everything the tap saw
  is also written as ``pcaps/mn-eth0.pcap``.
* Moves are real: :meth:`mipcheck.lab.mnhost.MobileNodeHost.go` moves the
  MN's veth between the switch's bridges and readdresses it (inside: the
  internal bridge, 10.1.0.50; outside: its own network, 198.51.100.10), then
  ``mn ctl move``; ``down`` takes the switch's end of the veth down and
  removes the address.
* :class:`LabMobileNode` stops the lab's reference i-HA and x-HA and the
  gateway's charon (their ports are the played parties') and restarts them
  exactly as they were afterwards (the same command lines; the VPN clients of
  the lab reconnected), also after a failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mipcheck.engine.runner import Progress, RunResult
from mipcheck.engine.verdicts import TesterError
from mipcheck.errors import MipcheckError
from mipcheck.lab import control, netns, vpn
from mipcheck.lab.capture import ETH_P_ALL, ETH_P_IP, LINKTYPE_IPV4, SNAPLEN
from mipcheck.lab.mnhost import I_FA_LINK, INSIDE, MN_IFACE, X_FA_LINK, MobileNodeHost, Place
from mipcheck.lab.topology import (
    CN_ADDRESS,
    IHA_ADDRESS,
    INNER_HOME_ADDRESS,
    INTERNAL_NETWORK,
    MIP_PORT,
    OUTER_HOME_ADDRESS,
    VPN_GATEWAY_ADDRESS,
    XHA_ADDRESS,
)
from mipcheck.mn.control import ask
from mipcheck.mn.faults import check_faults
from mipcheck.mn.profile import DOWN, MobileNodeProfile, load_mobile_node_profile

from .cases import MnCase
from .env import Address, LoopbackEnv, MoveFunction
from .runner import run_mn_suite

PROFILE_NAME = "mn-suite.toml"
SOCKET_NAME = "mn-suite.sock"
MN_PORT = 49434
NATT_PORT = 4500
T_MONITOR = 2.0  # as the loopback default: the suite runs in about a minute
DETECTION_PERIOD = 1.0
VPN_TIA = "10.8.0.250"  # in the gateway's pool 10.8.0.0/24, trusted by the i-HA (4.3)
START_TIMEOUT = 15.0
PREFLIGHT_TIMEOUT = 10.0
TAP_NOTE = "seen on the MN's link (eth0); the lab's firewall drops it before the i-HA (RFC 5265 3.1)"
REVERSE_TUNNEL_NOTE = "the foreign agent's IP-in-IP reverse tunnel (RFC 3024), handed over by the tester as Tunnel Data"
DEFAULT_OUT = "out/lab-mn"
#: What the played parties cannot see when the device is attached through the lab's foreign agents.
UNOBSERVABLE_THROUGH_AGENTS = {
    "MN-STATUS-CHANGE-STOP": (
        "through foreign agents the probe after the move reaches the device only via the new link's agent, which "
        "delivers nothing for a binding the device has not registered there (RFC 5944 3.7), so plaintext the "
        "device might still accept or answer after the move cannot be provoked in this setup"
    ),
}
#: The MN's second interface (MN-PER-INTERFACE, RFC 5265 3.2.1): a veth of the suite's own on the same switch.
SECOND_IFACE = "eth1"
SECOND_PORT = "mn2-ext"  # its end in the switch
SECOND_TABLE = "102"  # what eth1's care-of address sends leaves by eth1 (policy routing)
SECOND_SYSCTLS = {"rp_filter": "0", "arp_ignore": "1", "arp_announce": "2"}  # two links in one namespace
INSIDE_2 = Place("int", "10.1.0.51/24", "10.1.0.254")
OUTSIDE_2 = Place("ext", "198.51.100.11/24", "198.51.100.254")


# ---------------------------------------------------------------- the profile


def lab_profile_text(
    lab: control.Lab, socket_path: str, outside: str, keys: tuple[str, str], *, via_agents: bool = False
) -> str:
    """The reference MN's profile for the suite in ``lab`` (both the node and the suite read it).

    Secrets by file, relative to the profile (the state directory): the lab's MN-HA keys. The static ESP keys
    (``keys``: encryption, integrity, hexadecimal) are random per run; nothing but the played gateway uses them.
    ``via_agents``: inside is the i-FA's link, outside the x-FA's; the care-of addresses are the agents' and the
    MN has one interface.
    """
    move = f"mipcheck mn ctl --socket {socket_path} move {{interface}} {{network}} {{care_of_address}}"
    interfaces = f'["{MN_IFACE}"]' if via_agents else f'["{MN_IFACE}", "{SECOND_IFACE}"]'
    if via_agents:
        networks = f'inside = "{I_FA_LINK.gateway}"\noutside = "{X_FA_LINK.gateway}"'
    else:
        networks = (
            f'inside = "{INSIDE.address}"\noutside = "{outside}"\n'
            f'inside_2 = "{INSIDE_2.address}"\noutside_2 = "{OUTSIDE_2.address}"'
        )
    return f"""\
# The MN suite's reference mobile node in lab {lab.name!r} (mipcheck lab suite-mn; docs/lab.md).
[dut]
role = "mn"
home_address = "{INNER_HOME_ADDRESS}"
interfaces = {interfaces}
t_monitor = {T_MONITOR}
detection_period = {DETECTION_PERIOD}
port = {MN_PORT}
correspondent = "{CN_ADDRESS}"
when_gated = "queue"

[i_ha]                                  # played by the suite in the i-HA's namespace
address = "{IHA_ADDRESS}"
port = {MIP_PORT}
spi = {control.INNER_SPI}
secret_file = "secrets/mn1-inner.key"

[x_ha]                                  # played by the suite in the x-HA's namespace
address = "{XHA_ADDRESS}"
port = {MIP_PORT}
home_address = "{OUTER_HOME_ADDRESS}"
spi = {control.OUTER_SPI}
secret_file = "secrets/mn1-outer.key"

[vpn]                                   # played by the suite (static SAs, ESP inside x-MIP to the x-HA)
gateway = "{VPN_GATEWAY_ADDRESS}"
port = {NATT_PORT}
inner_address = "{VPN_TIA}"
spi_in = 4097
spi_out = 4098
encryption = "AES-CBC"
encryption_key_hex = "{keys[0]}"
integrity = "HMAC-SHA1-96"
integrity_key_hex = "{keys[1]}"

[networks]
{networks}

[commands]                              # the suite moves the veth itself, then runs the equivalent of this
move = "{move}"
timeout = 15
"""


# ---------------------------------------------------------------- the environment


class LabEnv(LoopbackEnv):
    """:class:`LoopbackEnv` with the played parties' sockets in the lab's namespaces and a tap on the MN's link."""

    min_tolerance = 1.0
    crossing = 0.2

    def __init__(
        self,
        profile: MobileNodeProfile,
        move: MoveFunction,
        namespaces: dict[Address, str],
        taps: Sequence[tuple[str, str]] = (),
        internal: str = str(INTERNAL_NETWORK),
        agents: dict[str, str] | None = None,
    ) -> None:
        """``agents`` (the MN registers through foreign agents): agent address -> "inside" or "outside"; the
        played home agents then also read the agents' reverse tunnels (IP-in-IP) in their namespaces."""
        super().__init__(profile, move)
        self.agents = dict(agents or {})
        if self.agents:
            self.unobservable = dict(UNOBSERVABLE_THROUGH_AGENTS)
        self.namespaces = namespaces  # played place -> namespace
        self.taps = tuple(taps)  # (namespace, interface) of each of the device's links
        self.internal = ipaddress.ip_network(internal)
        self.tapped: dict[str, list[tuple[float, bytes]]] = {}  # interface -> every IPv4 packet on it (pcaps)
        self.ignored_outside = 0  # datagrams from outside that reached the i-HA's socket anyway (left to the tap)
        self._tap_sockets: list[socket.socket] = []
        self._tap_threads: list[threading.Thread] = []
        self._thread_notes: dict[threading.Thread, str] = {}  # what a watcher thread's frames are noted with

    def start(self) -> None:
        if self._thread is not None:
            return
        sections = {self.played.iha_place: "i_ha", self.played.xha_place: "x_ha", self.played.gw_place: "vpn"}
        for place, section in sections.items():
            if place in self._sockets:
                continue
            ns = self.namespaces[place]
            try:
                sock = netns.socket_in(ns)
            except OSError as exc:
                self.close()
                raise TesterError(f"cannot open a socket in {ns}: {exc.strerror or exc}") from None
            try:
                sock.bind(place)
            except OSError as exc:
                sock.close()
                self.close()
                why = exc.strerror.lower() if exc.strerror else str(exc)
                raise TesterError(f"cannot bind {place[0]}:{place[1]} ([{section}]) in {ns}: {why}") from None
            sock.setblocking(False)
            self._sockets[place] = sock
        for ns, interface in self.taps:
            self._start_tap(ns, interface)
        if self.agents:
            for place in (self.played.iha_place, self.played.xha_place):
                self._start_reverse_tunnels(self.namespaces[place], place)
        self._thread = threading.Thread(target=self._pump, name="mipcheck-mn-played-lab", daemon=True)
        self._thread.start()

    def _start_tap(self, ns: str, interface: str) -> None:
        def open_socket() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            try:
                s.bind((interface, ETH_P_ALL))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            except OSError:
                s.close()
                raise
            return s

        try:
            sock = netns.call_in(ns, open_socket)
        except OSError as exc:
            self.close()
            raise TesterError(f"cannot tap {interface} in {ns}: {exc.strerror or exc}") from None
        self._watch(sock, self._read_tap, interface, f"mipcheck-mn-tap-{interface}", TAP_NOTE)

    def _start_reverse_tunnels(self, ns: str, place: Address) -> None:
        """RFC 3024: a foreign agent reverse-tunnels the MN's packets IP-in-IP to the home agent's address; a raw
        socket in the played home agent's namespace hands each inner packet to it, as tunnelled data from the
        agent (the played parties speak Tunnel Data; the translation is the tester's, noted on the frame)."""
        try:
            sock = netns.call_in(ns, socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
        except OSError as exc:
            self.close()
            raise TesterError(f"cannot read IP-in-IP in {ns}: {exc.strerror or exc}") from None
        self._watch(sock, self._read_reverse_tunnel, place, f"mipcheck-mn-ipip-{place[0]}", REVERSE_TUNNEL_NOTE)

    def _watch(self, sock: socket.socket, reader: Callable[..., None], arg: object, name: str, note: str) -> None:
        """A thread reading ``sock`` with ``reader(sock, arg)``; what it hands the played parties is noted ``note``."""
        self._tap_sockets.append(sock)
        thread = threading.Thread(target=reader, args=(sock, arg), name=name, daemon=True)
        self._tap_threads.append(thread)
        self._thread_notes[thread] = note
        thread.start()

    def _read_reverse_tunnel(self, sock: socket.socket, place: Address) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            try:
                packet = sock.recv(65535)
            except OSError:
                continue
            ihl = (packet[0] & 0x0F) * 4 if packet else 0
            if len(packet) < ihl + 20 or socket.inet_ntoa(packet[16:20]) != place[0]:
                continue
            agent = socket.inet_ntoa(packet[12:16])
            if agent not in self.agents:
                continue
            td = bytes((4, 4, 0, 0)) + packet[ihl:]  # Tunnel Data, next header IP-in-IP (RFC 3519 3.3)
            self.played.receive_datagram(td, (agent, MIP_PORT), place, self.now())
            self._flush()

    def close(self) -> None:
        super().close()
        for thread in self._tap_threads:
            thread.join(timeout=5)
        self._tap_threads = []
        self._thread_notes.clear()
        for sock in self._tap_sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._tap_sockets = []

    def _record(self, src: Address, dst: Address, data: bytes, direction: str, note: str) -> int:
        note = self._thread_notes.get(threading.current_thread(), note)
        return super()._record(src, dst, data, direction, note)

    def _outside(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address) not in self.internal
        except ValueError:
            return True

    def _read(self, sock: socket.socket, place: Address) -> None:
        for _ in range(256):
            try:
                data, src = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                continue
            if place == self.played.iha_place and self._outside(src[0]):
                self.ignored_outside += 1  # the tap has handed it over already (a firewall that let it through)
                continue
            self.played.receive_datagram(data, (src[0], src[1]), place, self.now())

    def _read_tap(self, sock: socket.socket, interface: str) -> None:
        tapped = self.tapped.setdefault(interface, [])
        iha = self.played.iha_place
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            try:
                packet, addr = sock.recvfrom(SNAPLEN)
            except OSError:
                continue
            if addr[1] != ETH_P_IP or len(packet) < 20 or packet[0] >> 4 != 4:
                continue
            tapped.append((time.time(), packet))
            if addr[2] != socket.PACKET_OUTGOING:
                continue
            ihl = (packet[0] & 0x0F) * 4
            frag = struct.unpack("!H", packet[6:8])[0]
            if packet[9] != socket.IPPROTO_UDP or frag & 0x3FFF or len(packet) < ihl + 8:
                continue
            src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
            sport, dport, length = struct.unpack("!HHH", packet[ihl : ihl + 6])
            payload = packet[ihl + 8 : ihl + max(8, length)]
            if self.agents.get(dst) == "outside" and dport == MIP_PORT and payload[:1] == b"\x01":
                # through the x-FA: its relay to the i-HA is what the firewall drops; hand it over as from the agent
                if len(payload) >= 12 and socket.inet_ntoa(payload[8:12]) == iha[0]:
                    self.played.receive_datagram(payload, (dst, MIP_PORT), iha, self.now())
                    self._flush()
                continue
            if (dst, dport) != iha or not self._outside(src):
                continue
            self.played.receive_datagram(payload, (src, sport), iha, self.now())
            self._flush()


# ---------------------------------------------------------------- the lab's agents, stopped and restarted


@dataclass
class _Stopped:
    record: control.Process
    offset: int  # the log's size when stopped (a restarted agent appends)
    index: int  # its place in lab.processes (status finds the gateway's charon as the first "charon")


class LabAgents:
    """Stop the lab's i-HA, x-HA and gateway charon for the suite; :meth:`restore` starts them exactly as they were."""

    def __init__(self, lab: control.Lab) -> None:
        self.lab = lab
        self.stopped: list[_Stopped] = []
        self.clients: dict[str, str] = {}  # node -> VPN-TIA it had (VPN clients to reconnect)

    def stop(self) -> None:
        lab = self.lab
        gateway = [p for p in lab.processes if p.node == "vpn-gateway" and p.name == "charon"]
        if gateway:
            for p in lab.processes:
                if p.name == "charon" and p.node != "vpn-gateway":
                    tia = control.vpn_tunnel_address(lab, p.node)
                    if tia:
                        self.clients[p.node] = tia
        chosen = [p for p in lab.processes if p.name in ("i-ha", "x-ha")] + gateway
        # an agent that was not running stays so: "as they were" (status reports it, as before the suite)
        chosen = [p for p in chosen if netns.pid_alive_in(p.pid, lab.topology.namespace(p.node))]
        chosen.sort(key=lab.processes.index)
        indices = {id(p): lab.processes.index(p) for p in chosen}
        for p in chosen:
            log = Path(p.log)
            self.stopped.append(_Stopped(p, log.stat().st_size if log.exists() else 0, indices[id(p)]))
            netns.kill_all([p.pid], grace=3.0)
            lab.processes.remove(p)
        control.save(lab)

    def restore(self) -> list[str]:
        """Start what :meth:`stop` stopped (same command lines); returns what could not be restored."""
        problems: list[str] = []
        lab = self.lab
        waits = []
        for item in self.stopped:
            p = item.record
            try:
                if p.name == "charon":
                    directory = lab.state_dir / "vpn-gateway"
                    proc = vpn.start(lab.topology.namespace(p.node), directory)
                    started = control.Process(p.node, p.name, proc.pid, list(proc.args), p.log)
                    lab.processes.insert(item.index, started)
                    waits.append((proc, item))
                else:
                    proc = control.spawn(list(p.argv), p.log, lab.state_dir)  # the command line, as it was
                    lab.processes.insert(item.index, control.Process(p.node, p.name, proc.pid, list(p.argv), p.log))
                    waits.append((proc, item))
            except (OSError, MipcheckError) as exc:
                problems.append(f"{p.node}: cannot restart {p.name}: {exc}")
        control.save(lab)
        deadline = time.monotonic() + control.HA_START_TIMEOUT
        for proc, item in waits:
            p = item.record
            try:
                if p.name == "charon":
                    vpn.wait_ready(proc, lab.state_dir / "vpn-gateway")
                else:
                    control._wait_listening(proc, Path(p.log), p.node, deadline, item.offset)
            except MipcheckError as exc:
                problems.append(f"{p.node}: {p.name} restarted but not ready: {exc}")
        if any(i.record.name == "charon" for i in self.stopped):
            problems += self._reconnect()
        self.stopped = []
        return problems

    def _reconnect(self) -> list[str]:
        """The lab's VPN clients lost their SAs with the gateway: connect them again (and check their VPN-TIA)."""
        problems: list[str] = []
        lab = self.lab
        changed = False
        for node, tia in self.clients.items():
            directory = lab.state_dir / f"vpn-{node}"
            with contextlib.suppress(MipcheckError):
                vpn.swanctl(directory, "--terminate", "--ike", vpn.CLIENT_CONNECTION, "--timeout", "5")
            try:
                vpn.initiate(directory)
            except MipcheckError as exc:
                problems.append(f"{node}: VPN client did not reconnect: {exc}")
                continue
            now = control.vpn_tunnel_address(lab, node)
            changed |= now != tia
            if now is None:
                problems.append(f"{node}: VPN client reconnected without a VPN-TIA")
        if changed and lab.vpn_host_not_started is None:
            control.write_ha_profiles(lab)  # the audit's VPN profile names its VPN-TIA
            control.save(lab)
        self.clients = {}
        return problems


# ---------------------------------------------------------------- the reference MN in the lab


class LabMobileNode:
    """Context manager: the reference MN in lab ``lab``'s ``mn`` namespace and the :class:`LabEnv` to test it.

    On enter: the lab's i-HA, x-HA and gateway charon are stopped (:class:`LabAgents`), the profile is written to
    the state directory (:data:`PROFILE_NAME`), ``mipcheck mn run`` starts in the MN's namespace (echo-only data
    plane, no TUN). On exit, whatever happened: the node stopped, the MN's veth back on its own network with its
    address, the agents restarted as they were (:attr:`problems` says what could not be undone).
    """

    def __init__(
        self, lab: control.Lab, faults: Iterable[str] = (), directory: Path | None = None, *, via_agents: bool = False
    ) -> None:
        """``via_agents``: inside is the i-FA's link and outside the x-FA's: the MN registers through the lab's
        reference foreign agents (started if they are not running), one interface."""
        if lab.topology.nat:
            raise MipcheckError(f"lab {lab.name!r} was built with --nat: suite-mn needs the MN on the external network")
        self.lab = lab
        self.faults = check_faults(faults)
        self.directory = directory or lab.state_dir / "suite-mn"
        self.socket = str(lab.state_dir / SOCKET_NAME)
        self.profile_path = lab.state_dir / PROFILE_NAME
        self.ns = lab.topology.namespace("mn")
        self.host: MobileNodeHost | None = None
        self.agents = LabAgents(lab)
        self.proc: subprocess.Popen | None = None
        self.record: control.Process | None = None
        self.profile: MobileNodeProfile | None = None
        self.env: LabEnv | None = None
        self.problems: list[str] = []
        self.log = self.directory / "mn.log"
        self._down = False
        self._second = False
        self.via_agents = via_agents

    def __enter__(self) -> LabMobileNode:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        lab = self.lab
        missing = [
            ns for ns in (self.ns, lab.topology.switch_namespace) if ns not in netns.namespaces(lab.topology.prefix)
        ]
        if missing:
            raise MipcheckError(f"lab {lab.name!r}: namespace {missing[0]} is gone (`mipcheck lab status`)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = MobileNodeHost(lab, self.directory)
        if self.via_agents:
            from mipcheck.lab.run import foreign_agent

            for node in ("i-fa", "x-fa"):
                foreign_agent(lab, node)
        else:
            self._add_second_link()
        keys = (os.urandom(16).hex(), os.urandom(20).hex())
        text = lab_profile_text(lab, self.socket, self.host.home.address, keys, via_agents=self.via_agents)
        fd = os.open(self.profile_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        self.profile = load_mobile_node_profile(self.profile_path)
        self.agents.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        fault_args = [arg for fault in self.faults for arg in ("--fault", fault)]
        argv = control.mipcheck_argv(
            "mn", "run", "--profile", str(self.profile_path), "--socket", self.socket, "--quiet", *fault_args
        )
        full = netns.in_ns(self.ns, argv)
        self.proc = control.spawn(full, self.log, lab.state_dir)
        self.record = control.Process("mn", "mn-suite", self.proc.pid, full, str(self.log))
        lab.processes.append(self.record)
        control.save(lab)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if os.path.exists(self.socket):
                with contextlib.suppress(MipcheckError):
                    ask(self.socket, {"command": "status"}, timeout=1.0)
                    break
            if self.proc.poll() is not None:
                raise MipcheckError(f"the reference MN did not start in {self.ns}: {_last_line(self.log)}")
            if time.monotonic() > deadline:
                raise MipcheckError(f"the reference MN did not answer on {self.socket} in {START_TIMEOUT:g} s")
            time.sleep(0.02)
        topo = lab.topology
        p = self.profile
        namespaces = {
            p.i_ha.place: topo.namespace("i-ha"),
            p.x_ha.place: topo.namespace("x-ha"),
            p.vpn.place: topo.namespace("vpn-gateway"),
        }
        if self.via_agents:
            agents = {I_FA_LINK.gateway: "inside", X_FA_LINK.gateway: "outside"}
            self.env = LabEnv(p, self.move, namespaces, taps=[(self.ns, MN_IFACE)], agents=agents)
        else:
            self.env = LabEnv(p, self.move, namespaces, taps=[(self.ns, MN_IFACE), (self.ns, SECOND_IFACE)])

    # ---- the second interface: a veth of the suite's own, policy-routed by its care-of address
    def _add_second_link(self) -> None:
        host = self.host
        assert host is not None
        netns.ip("link", "del", SECOND_PORT, ns=host.switch, check=False)  # left over by a killed run
        netns.veth(host.switch, SECOND_PORT, self.ns, SECOND_IFACE)
        self._second = True
        netns.ip("link", "set", SECOND_PORT, "master", OUTSIDE_2.bridge, "down", ns=host.switch)
        netns.sysctl(self.ns, {f"net.ipv4.conf.{SECOND_IFACE}.{k}": v for k, v in SECOND_SYSCTLS.items()})
        netns.ip("link", "set", SECOND_IFACE, "up", ns=self.ns)

    def _second_to(self, place: Place | None) -> None:
        """eth1 onto ``place``'s bridge with its address and table (None: down)."""
        host = self.host
        assert host is not None
        netns.ip("rule", "del", "lookup", SECOND_TABLE, ns=self.ns, check=False)
        netns.ip("route", "flush", "table", SECOND_TABLE, ns=self.ns, check=False)
        netns.ip("address", "flush", "dev", SECOND_IFACE, ns=self.ns)
        if place is None:
            netns.ip("link", "set", SECOND_PORT, "down", ns=host.switch)
            return
        netns.ip("link", "set", SECOND_PORT, "nomaster", ns=host.switch)
        netns.ip("link", "set", SECOND_PORT, "master", place.bridge, "up", ns=host.switch)
        netns.ip("address", "add", place.cidr, "dev", SECOND_IFACE, ns=self.ns)
        netns.ip("rule", "add", "from", place.address, "lookup", SECOND_TABLE, "priority", SECOND_TABLE, ns=self.ns)
        netns.ip(
            "route", "replace", "default", "via", place.gateway, "dev", SECOND_IFACE, "table", SECOND_TABLE, ns=self.ns
        )

    def _remove_second_link(self) -> None:
        if not self._second or self.host is None:
            return
        netns.ip("rule", "del", "lookup", SECOND_TABLE, ns=self.ns, check=False)
        netns.ip("route", "flush", "table", SECOND_TABLE, ns=self.ns, check=False)
        netns.ip("link", "del", SECOND_PORT, ns=self.host.switch)
        self._second = False

    # ---- the move: the veth between the switch's bridges, then the node told
    def move(self, interface: str, network: str, care_of_address: str | None) -> None:
        host = self.host
        assert host is not None
        if interface not in (MN_IFACE, SECOND_IFACE):
            raise TesterError(f"the lab's MN has the interfaces {MN_IFACE} and {SECOND_IFACE}, not {interface}")
        if self.via_agents and network != DOWN:
            return self._move_to_agent(interface, network)
        try:
            if interface == SECOND_IFACE:
                second = None if network == DOWN else (INSIDE_2 if network == "inside" else OUTSIDE_2)
                if second is not None and care_of_address and care_of_address != second.address:
                    second = Place(second.bridge, f"{care_of_address}/24", second.gateway)
                self._second_to(second)
            elif network == DOWN:
                self._link_down()
            else:
                place = INSIDE if network == "inside" else host.home
                if care_of_address and care_of_address != place.address:
                    place = Place(place.bridge, f"{care_of_address}/24", place.gateway)
                self._link_to(place)
        except netns.LabError as exc:
            raise TesterError(f"moving the MN's veth ({network}): {exc}") from None
        request = {"command": "move", "interface": interface, "network": network, "care_of_address": care_of_address}
        try:
            answer = ask(self.socket, request, timeout=10.0)
        except MipcheckError as exc:
            raise TesterError(f"mn ctl move {interface} {network}: {exc}") from None
        if not answer.get("ok"):
            raise TesterError(f"mn ctl move {interface} {network}: {answer.get('error')}")

    def _move_to_agent(self, interface: str, network: str) -> None:
        """Onto the i-FA's (inside) or the x-FA's (outside) link; the node registers through the agent it hears."""
        place = I_FA_LINK if network.startswith("inside") else X_FA_LINK
        try:
            self._link_to(place)
        except netns.LabError as exc:
            raise TesterError(f"moving the MN's veth onto the {network} agent's link: {exc}") from None
        request = {
            "command": "move",
            "interface": interface,
            "network": network,
            "care_of_address": place.home,
            "foreign_agent": "advertised",
        }
        try:
            answer = ask(self.socket, request, timeout=10.0)
        except MipcheckError as exc:
            raise TesterError(f"mn ctl move {interface} {network} --foreign-agent: {exc}") from None
        if not answer.get("ok"):
            raise TesterError(f"mn ctl move {interface} {network} --foreign-agent: {answer.get('error')}")

    def _link_down(self) -> None:
        host = self.host
        assert host is not None
        netns.ip("link", "set", host.port, "down", ns=host.switch)
        netns.ip("address", "flush", "dev", MN_IFACE, ns=host.ns)
        self._down = True

    def _link_to(self, place: Place) -> None:
        host = self.host
        assert host is not None
        if self._down:
            host.place = Place("", "", "")  # go() must redo everything: address, route, the port up
            self._down = False
        host.go(place)

    # ---- undo
    def __exit__(self, *exc: object) -> None:
        problems: list[str] = []
        if self.env is not None:
            self.env.close()
        if self.record is not None:
            netns.kill_all([self.record.pid], grace=2.0)
            if self.proc is not None:
                with contextlib.suppress(Exception):
                    self.proc.wait(1.0)
            if self.record in self.lab.processes:
                self.lab.processes.remove(self.record)
            self.record = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        if self.host is not None:
            try:
                self._link_to(self.host.home)
                netns.ip("link", "set", self.host.port, "up", ns=self.host.switch)
            except netns.LabError as err:
                problems.append(f"mn: veth not back on its network: {err}")
        try:
            self._remove_second_link()
        except netns.LabError as err:
            problems.append(f"mn: {SECOND_IFACE} ({SECOND_PORT} in the switch) not removed: {err}")
        problems += self.agents.restore()
        with contextlib.suppress(OSError):
            control.save(self.lab)
        self.problems = problems


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return lines[-1].strip() if lines else "no output"


def write_tap_pcaps(env: LabEnv, directory: Path) -> list[Path]:
    """Everything the taps saw on the MN's links, ``mn-<interface>.pcap`` each, as raw IPv4 (link type 228)."""
    from mipcheck.capture.writer import PcapWriter

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for interface, packets in sorted(env.tapped.items()):
        path = directory / f"mn-{interface}.pcap"
        with open(path, "wb") as handle:
            writer = PcapWriter(handle, LINKTYPE_IPV4)
            for at, data in list(packets):
                writer.write(data, at)
        written.append(path)
    return written


def run_lab_mn_suite(
    lab: control.Lab,
    cases: Sequence[MnCase],
    *,
    faults: Iterable[str] = (),
    evidence_dir: str | Path | None = None,
    progress: Progress | None = None,
    via_agents: bool = False,
) -> tuple[RunResult, list[str]]:
    """The MN suite against the reference MN in ``lab``; returns the run and what could not be undone.

    ``via_agents``: through the lab's foreign agents (access modes f inside, fvc outside)."""
    out = Path(evidence_dir) if evidence_dir is not None else None
    node = LabMobileNode(lab, faults, via_agents=via_agents)
    with node:
        assert node.env is not None
        result = run_mn_suite(
            cases, node.env, evidence_dir=out, progress=progress, builtin=True, preflight_timeout=PREFLIGHT_TIMEOUT
        )
        if out is not None:
            write_tap_pcaps(node.env, out / "pcaps")
    return result, node.problems


__all__ = ["LabAgents", "LabEnv", "LabMobileNode", "lab_profile_text", "run_lab_mn_suite", "write_tap_pcaps"]
