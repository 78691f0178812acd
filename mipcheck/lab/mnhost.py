"""The mobile node's namespace during ``lab run``: where its veth is, its TUN and routes, its runner process.

Why apart from the run: every mode moves the same host the same few ways (its
veth between the switch's bridges, its addresses, the policy rules that send
what the home addresses send into the reference MN's TUN), and every step must
be undone whatever happens; :class:`MobileNodeHost` holds what it changed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any, NamedTuple

from mipcheck.errors import MipcheckError
from mipcheck.mn.control import ask

from . import control, netns
from .topology import INNER_HOME_ADDRESS, MN_NAT_ADDRESS, OUTER_HOME_ADDRESS

MODE_C_COA = "10.1.0.50"  # the MN's co-located care-of address on the internal network
INTERNAL_GATEWAY = "10.1.0.254"
NAT_GATEWAY = "192.168.100.1"  # the NAT's inside leg
I_FA_ADDRESS = "10.2.0.1"  # the i-FA on its link (address, care-of address)
X_FA_ADDRESS = "203.0.113.1"  # the x-FA on its link
MN_TUN = "tun0"
MN_IFACE = "eth0"
MN_TABLE = "100"  # the MN's policy-routing table: what the home address sends goes into tun0
MN_NFT_TABLE = "mipcheck_mn"  # on a foreign agent's link: what the agent delivers goes to the node, not the host
MN_PORT = 49434  # the reference MN's UDP port in the lab
HOME_ADDRESSES = (INNER_HOME_ADDRESS, OUTER_HOME_ADDRESS)


class RunError(MipcheckError):
    """A step of ``lab run`` failed; one line, exit 2."""


class Place(NamedTuple):
    """Where the MN's veth can be: the bridge in the switch, its address there, its default route.

    ``home``: a foreign agent's link, where the MN has no address of its own but a home address (``cidr`` is
    it, /32; the default route goes on-link to the agent): what that home address sends goes by the main
    table, straight to the agent, not into the node's TUN (the agent is the tunnel's end, RFC 5944 3.7).
    """

    bridge: str
    cidr: str
    gateway: str
    home: str | None = None

    @property
    def address(self) -> str:
        return self.cidr.split("/")[0]


INSIDE = Place("int", f"{MODE_C_COA}/24", INTERNAL_GATEWAY)  # mode c: on the internal network
BEHIND_NAT = Place("nat", f"{MN_NAT_ADDRESS}/24", NAT_GATEWAY)  # outside, behind the NAT (``--nat``)
I_FA_LINK = Place("ifa", f"{INNER_HOME_ADDRESS}/32", I_FA_ADDRESS, INNER_HOME_ADDRESS)  # mode f
X_FA_LINK = Place("xfa", f"{OUTER_HOME_ADDRESS}/32", X_FA_ADDRESS, OUTER_HOME_ADDRESS)  # mode fvc


class MobileNodeHost:
    """The MN's namespace during a run: its veth in the switch, tun0, the policy route, the runner process."""

    def __init__(self, lab: control.Lab, directory: Path, *, nat: bool = False) -> None:
        self.lab = lab
        topo = lab.topology
        self.ns = topo.namespace("mn")
        self.switch = topo.switch_namespace
        leg = topo.node("mn").interfaces[0]
        self.port = leg.port
        gateway = next(g for d, g in topo.node("mn").routes if d == "default")
        self.home = Place(str(topo.network(leg.network).bridge), leg.address, gateway)
        self.place = self.home
        #: outside: where the MN is when it is not inside (its own network; ``nat``: behind the NAT)
        self.outside = BEHIND_NAT if nat else self.home
        self.directory = directory
        self.socket = str(lab.state_dir / "mn.sock")  # short (sun_path), and named on the runner's command line
        self.events = directory / "mn-events.jsonl"
        self.log = directory / "mn.log"
        self.proc: subprocess.Popen | None = None
        self.record: control.Process | None = None
        self.charon: control.Process | None = None
        self.homes: tuple[str, ...] = (INNER_HOME_ADDRESS,)
        self.care_of_addresses: tuple[str, ...] = ()

    # ---- the stack
    def prepare(self, *, x_home: bool = False) -> None:
        """tun0 with the i-HoA (and with ``x_home`` the x-HoA, mode cvc), and what they send routed into it."""
        ns = self.ns
        self.homes = (INNER_HOME_ADDRESS, OUTER_HOME_ADDRESS) if x_home else (INNER_HOME_ADDRESS,)
        self.care_of_addresses = (INSIDE.address, self.outside.address) if x_home else ()
        netns.sysctl(
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
        for home in self.homes:
            netns.ip("address", "replace", f"{home}/32", "dev", MN_TUN, ns=ns)
        netns.ip("link", "set", MN_TUN, "up", ns=ns)
        netns.ip("route", "replace", "default", "dev", MN_TUN, "table", MN_TABLE, ns=ns)
        for home in self.homes:
            # before strongSwan's table 220 (priority 220): the home addresses' packets never skip the node
            netns.ip("rule", "del", "from", home, "lookup", MN_TABLE, ns=ns, check=False)
            netns.ip("rule", "add", "from", home, "lookup", MN_TABLE, "priority", "100", ns=ns)
        for coa in self.care_of_addresses:
            # 3.2.3, 3.3: what the node sends from a care-of address goes directly, never into the VPN's routes
            # (table 220 sends all of 10.0.0.0/8 into ipsec0 while the VPN is up: a request to the i-HA from
            # inside would be swallowed there and detection would wrongly end outside)
            netns.ip("rule", "del", "from", coa, "lookup", "main", ns=ns, check=False)
            netns.ip("rule", "add", "from", coa, "lookup", "main", "priority", "110", ns=ns)

    def start_vpn_client(self) -> Path:
        """Mode cvc: charon in the MN's namespace, IKE from the x-HoA, not connected (the node asks for it)."""
        self.charon = control.start_vpn_client(self.lab, "mn", local_address=OUTER_HOME_ADDRESS, connect=False)
        return self.lab.state_dir / "vpn-mn"

    def start(self, profile: Path, extra: tuple[str, ...] = ()) -> None:
        argv = control.mipcheck_argv(
            "mn", "run", "--profile", str(profile), "--socket", self.socket, "--tun", MN_TUN, "--quiet", *extra
        )
        argv += ["--log-json", str(self.events)]
        full = netns.in_ns(self.ns, argv)
        self.proc = control.spawn(full, self.log, self.lab.state_dir)
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
    def go(self, place: Place) -> None:
        """The veth's switch end onto ``place``'s bridge; the MN's address and default route with it."""
        if place == self.place:
            return
        left = self.place
        netns.ip("link", "set", self.port, "nomaster", ns=self.switch)
        self.place = place
        netns.ip("link", "set", self.port, "master", place.bridge, "up", ns=self.switch)
        netns.ip("address", "flush", "dev", MN_IFACE, ns=self.ns)
        netns.ip("address", "add", place.cidr, "dev", MN_IFACE, ns=self.ns)
        if place.home:  # the agent delivers to either home address on its link: answer its ARP for both
            for other in sorted(set(HOME_ADDRESSES) - {place.home}):
                netns.ip("address", "add", f"{other}/32", "dev", MN_IFACE, ns=self.ns)
        onlink = ("dev", MN_IFACE, "onlink") if place.home else ()
        netns.ip("route", "replace", "default", "via", place.gateway, *onlink, ns=self.ns)
        if bool(left.home) != bool(place.home):
            self._direct(bool(place.home))

    def _direct(self, on: bool) -> None:
        """On a foreign agent's link: the agent delivers to the home addresses there; the host must not take it.

        What the agent delivers to a home address goes to the reference MN (its AF_PACKET socket, then, for the
        i-HoA's user data, its data gate, 3.2.4, then ``tun0``), so the host drops it on ``eth0`` (an nftables
        input rule), except the registration replies to the node's own UDP socket. What the home addresses send
        still goes into ``tun0`` (rule 100): the node puts it on the link as it is.
        """
        netns.run(netns.in_ns(self.ns, ["nft", "delete", "table", "inet", MN_NFT_TABLE]), check=False)
        if not on:
            return
        homes = ", ".join(HOME_ADDRESSES)
        ruleset = f"""\
table inet {MN_NFT_TABLE} {{
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{MN_IFACE}" ip daddr {{ {homes} }} udp dport {MN_PORT} accept comment "registration replies"
        iifname "{MN_IFACE}" ip daddr {{ {homes} }} drop comment "the foreign agent's deliveries: the node's"
    }}
}}
"""
        netns.run(netns.in_ns(self.ns, ["nft", "-f", "-"]), input=ruleset)

    def move_inside(self) -> None:
        self.go(INSIDE)

    def move_outside(self) -> None:
        self.go(self.outside)

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
        for proc, record in ((self.proc, self.record), (None, self.charon)):
            if record is None:
                continue
            netns.kill_all([record.pid], grace=2.0)
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.wait(1.0)
            if record in self.lab.processes:
                self.lab.processes.remove(record)
        with contextlib.suppress(OSError):
            control.save(self.lab)
        try:
            self.go(self.home)  # first: leaving a foreign agent's link puts its home address's rule back
        except netns.LabError as exc:
            problems.append(str(exc))
        steps: list[tuple[str, ...]] = [("rule", "del", "from", home, "lookup", MN_TABLE) for home in self.homes]
        steps += [("rule", "del", "from", coa, "lookup", "main") for coa in self.care_of_addresses]
        steps.append(("link", "del", MN_TUN))
        for step in steps:
            try:
                netns.ip(*step, ns=self.ns)
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
