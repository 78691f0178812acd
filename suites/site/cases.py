"""The site audit's cases: what a deployment's firewall, VPN gateway and home agents let through, seen by probes.

Each function probes from the profile's vantage points and returns checks;
the case table in ``suites/site/__init__.py`` gives each its id, level and
lab break. Controls come first: a probe path that must work (the same request
from inside, IP-in-IP from inside seen at the i-HA, IKE on UDP 500) is shown
to work before silence elsewhere is taken as evidence; when it does not, the
case ends inconclusive with what failed. Nothing is judged from configuration
files, only from what arrives, what answers and what leaves an interface.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from mipcheck.engine.verdicts import Check, Inconclusive, NotApplicable
from mipcheck.outcomes import Party

from . import probes
from .probes import LinkCapture, Observer, Registration, ask, send_ipip, send_registration, wait
from .profile import Vantage
from .runner import SiteContext

# Catalogue requirements, for checks of cases that test more than one (Check.rule_id).
FW_BLOCKS_IHA = "5265-3.1-FW-BLOCKS-IHA"
NO_PLAINTEXT_EXCHANGE = "5265-3.1-NO-PLAINTEXT-EXCHANGE-OUTSIDE"
IPSEC_NAT_TRAVERSAL_25 = "5265-2.5-IPSEC-NAT-TRAVERSAL"
IPSEC_NAT_TRAVERSAL_42 = "5265-4.2-VPN-IPSEC-NAT-TRAVERSAL"
DROP_UNTRUSTED = "5265-4.3-DROP-UNTRUSTED"
TNC_IN_REPLY = "5265-4.3-TNC-IN-REPLY"

#: Source ports SITE-VPN-UDP434-ANY-PORT registers from: 434 itself, low (privileged) and high ones.
VPN_SOURCE_PORTS = (434, 700, 1023, 10434, 49152, 65000)


def _frames(*regs: Registration | None) -> tuple[int, ...]:
    out: list[int] = []
    for r in regs:
        if r is None:
            continue
        out.append(r.sent.frame)
        if r.reply is not None:
            out.append(r.reply.frame)
    return tuple(out)


def _control_registration(ctx: SiteContext, v, identity, home_agent: str, what: str) -> tuple[Registration, Check]:
    """A valid registration that must be answered (the probe path works); inconclusive otherwise."""
    reg = send_registration(ctx, v, identity, home_agent, note=f"{v.name}: control")
    if reg is None:  # port 0 is never taken
        raise AssertionError("no socket for a control registration")
    ask(ctx, [reg])
    if not reg.answered:
        raise Inconclusive(
            f"control: {what} from {v.name} got no reply within {ctx.profile.reply_timeout:g} s: "
            "the probe path does not work, so silence elsewhere proves nothing"
        )
    what = f"control: {what} from {v.name} is answered"
    return reg, Check(what, "a Registration Reply", reg.describe(), True, _frames(reg))


def _ipip_control(ctx: SiteContext, inside, observer: Observer, iha: str) -> tuple[Check, bytes]:
    """IP-in-IP from inside seen at the i-HA (the observer works); returns the check and the packet's marker."""
    mark = probes.marker("control")
    send_ipip(ctx, inside, iha, inner_src=None, inner_dst=iha, mark=mark)
    wait(ctx, watchers=[observer], duration=ctx.profile.reply_timeout, done=lambda: observer.saw(mark))
    if not observer.saw(mark):
        raise Inconclusive(
            f"control: IP-in-IP from {inside.name} to the i-HA {iha} was not seen at vantage point "
            f"{observer.vantage.name}: what it does not see from outside proves nothing"
        )
    check = Check(
        f"control: IP-in-IP from {inside.name} arrives at the i-HA (seen at {observer.vantage.name})",
        "it arrives",
        "it arrived",
        True,
    )
    return check, mark


def _keep(ctx: SiteContext, name: str, observer: Observer | None, marks: list[bytes]) -> None:
    if observer is not None:
        ctx.keep_raw(name, [(t, d) for t, d in observer.packets if any(m in d for m in marks)])


# ------------------------------------------------------------------ 3.1: nothing from outside reaches the i-HA


def fw_iha_unreachable(ctx: SiteContext) -> list[Check]:
    """From outside, a valid registration to the i-HA gets nothing back and neither it nor IP-in-IP arrives.

    Controls: the same registration from inside is answered; with a vantage
    point at the i-HA, IP-in-IP from inside is seen arriving there. Without
    one, whether the outside probes arrived cannot be seen (the i-HA drops
    untrusted requests itself, RFC 5265 4.3, so its silence does not show the
    firewall's): those checks stay open and the case is inconclusive.
    """
    outside = ctx.vantages("outside", needed="3.1 is about traffic from external networks")
    inside = ctx.vantage("inside", needed="the control: the same request from inside must be answered")
    identity = ctx.identity("internal", needed="a valid registration to the i-HA")
    at_iha = ctx.observer(needed="seeing what arrives at the i-HA")
    checks: list[Check] = []
    for iha in ctx.profile.internal_home_agents:
        control, check = _control_registration(ctx, inside, identity, iha, f"a valid registration to the i-HA {iha}")
        checks.append(check)
        udp_seen = ipip_seen = None
        try:
            if at_iha is not None:
                udp_seen = Observer(at_iha, socket.IPPROTO_UDP, "UDP arriving at the i-HA")
                ipip_seen = Observer(at_iha, probes.IPPROTO_IPIP, "IP-in-IP arriving at the i-HA")
                check, control_mark = _ipip_control(ctx, inside, ipip_seen, iha)
                checks.append(check)
                marks = {"control": control_mark}
            else:
                ctx.note("no vantage point with role 'i-ha': arrivals at the i-HA cannot be seen")
                marks = {}
            regs: list[tuple[Vantage, Registration]] = []
            for v in outside:
                reg = send_registration(ctx, v, identity, iha, note=f"{v.name}: valid registration from outside")
                assert reg is not None
                regs.append((v, reg))
                if ipip_seen is not None:
                    marks[v.name] = probes.marker(v.name)
                    send_ipip(ctx, v, iha, inner_src=None, inner_dst=iha, mark=marks[v.name])
            watchers = [w for w in (udp_seen, ipip_seen) if w is not None]
            wait(ctx, registrations=[r for _v, r in regs], watchers=watchers, duration=ctx.profile.silence)
            for v, reg in regs:
                reg.close()
                checks.append(
                    Check(
                        f"{v.name}: a valid registration to the i-HA {iha} from outside gets no reply",
                        "no reply (3.1: no RRQ/RRP exchange with the i-HA without IPsec from outside)",
                        reg.describe(),
                        not reg.answered,
                        _frames(reg),
                        rule_id=NO_PLAINTEXT_EXCHANGE,
                        party=Party.FIREWALL,
                    )
                )
                if udp_seen is None:
                    checks.append(
                        Check(
                            f"{v.name}: the registration does not reach the i-HA {iha}",
                            "blocked by the firewall",
                            "cannot be seen: the profile has no vantage point with role 'i-ha', and the i-HA's own "
                            "silence may be its 4.3 drop of an untrusted source",
                            None,
                            rule_id=FW_BLOCKS_IHA,
                            party=Party.FIREWALL,
                        )
                    )
                    continue
                arrived = udp_seen.saw(reg.sent.payload)
                checks.append(
                    Check(
                        f"{v.name}: the registration (UDP 434) does not reach the i-HA {iha}",
                        "blocked by the firewall (3.1)",
                        f"it arrived at the i-HA (seen at vantage point {at_iha.name})"
                        if arrived
                        else f"not seen at the i-HA within {ctx.profile.silence:g} s",
                        not arrived,
                        (reg.sent.frame,),
                        rule_id=FW_BLOCKS_IHA,
                        party=Party.FIREWALL,
                    )
                )
                assert ipip_seen is not None
                arrived = ipip_seen.saw(marks[v.name])
                checks.append(
                    Check(
                        f"{v.name}: IP-in-IP to the i-HA {iha} does not reach it",
                        "blocked by the firewall (3.1)",
                        f"it arrived at the i-HA (seen at vantage point {at_iha.name})"
                        if arrived
                        else f"not seen at the i-HA within {ctx.profile.silence:g} s",
                        not arrived,
                        rule_id=FW_BLOCKS_IHA,
                        party=Party.FIREWALL,
                    )
                )
            _keep(ctx, "at-i-ha", udp_seen, [r.sent.payload for _v, r in regs] + [control.sent.payload])
            _keep(ctx, "ipip-at-i-ha", ipip_seen, list(marks.values()))
        finally:
            for w in (udp_seen, ipip_seen):
                if w is not None:
                    w.close()
    return checks


# ------------------------------------------------------------------ 4.2: the VPN policy


def vpn_udp434_any_port(ctx: SiteContext) -> list[Check]:
    """From the VPN, valid registrations to the i-HA from source ports 434, low and high ones are all answered.

    Control: the same registration from inside is answered (without an inside
    vantage point: at least one source port through the VPN is).
    """
    vpn = ctx.vantage("vpn", needed="4.2 is about what the VPN lets through")
    identity = ctx.identity("internal", needed="a registration the i-HA answers")
    iha = ctx.profile.internal_home_agents[0]
    checks: list[Check] = []
    if ctx.profile.vantages_of("inside"):
        inside = ctx.vantage("inside", needed="the control")
        _reg, check = _control_registration(ctx, inside, identity, iha, f"a valid registration to the i-HA {iha}")
        checks.append(check)
    else:
        ctx.note("no inside vantage point: the control is that some source port through the VPN is answered")
    at_iha = ctx.observer(needed="telling a blocked request from an unanswered one")
    seen = Observer(at_iha, socket.IPPROTO_UDP, "UDP arriving at the i-HA") if at_iha is not None else None
    try:
        regs: list[tuple[int, Registration]] = []
        unprobed: list[int] = []
        for port in VPN_SOURCE_PORTS:
            reg = send_registration(ctx, vpn, identity, iha, port=port, note=f"{vpn.name}: from source port {port}")
            if reg is None:
                unprobed.append(port)
                continue
            regs.append((port, reg))
        if not regs:
            raise Inconclusive(f"every probe source port is in use (or privileged) at vantage point {vpn.name}")
        wait(
            ctx,
            registrations=[r for _p, r in regs],
            watchers=[seen] if seen else [],
            duration=ctx.profile.reply_timeout,
            done=lambda: all(r.answered for _p, r in regs),
        )
        for _p, r in regs:
            r.close()
        if not checks and not any(r.answered for _p, r in regs):
            raise Inconclusive(
                f"no reply from the i-HA {iha} to any source port through the VPN, and no inside vantage point to "
                "show that it answers at all"
            )
        for port, reg in regs:
            observed = reg.describe()
            if not reg.answered and seen is not None:
                reached = seen.saw(reg.sent.payload)
                observed += "; the request " + (
                    "reached the i-HA (its reply did not come back)" if reached else "never reached the i-HA"
                )
            checks.append(
                Check(
                    f"{vpn.name}: a registration from source port {port} through the VPN is answered",
                    "a Registration Reply (4.2: UDP to the i-HA port 434 from any remote port)",
                    observed,
                    reg.answered,
                    _frames(reg),
                    party=Party.VPN_GATEWAY,
                )
            )
        for port in unprobed:  # "any remote port" is not shown for a port that could not be tried
            checks.append(
                Check(
                    f"{vpn.name}: a registration from source port {port} through the VPN is answered",
                    "a Registration Reply",
                    "not probed: the port is in use at the vantage point, or privileged and mipcheck is not root",
                    None,
                    party=Party.VPN_GATEWAY,
                )
            )
        _keep(ctx, "at-i-ha", seen, [r.sent.payload for _p, r in regs])
    finally:
        if seen is not None:
            seen.close()
    return checks


def vpn_ipip(ctx: SiteContext) -> list[Check]:
    """IP-in-IP from the VPN host to the i-HA passes the VPN policy: seen arriving at the i-HA.

    IP-in-IP is never answered, so only a vantage point at the i-HA (role
    ``i-ha``: its namespace in the lab, the i-HA host itself with ``local``)
    can judge it; without one the case is inconclusive. Control: IP-in-IP
    from inside is seen there.
    """
    vpn = ctx.vantage("vpn", needed="4.2 is about what the VPN lets through")
    at_iha = ctx.observer(needed="IP-in-IP is not answered")
    if at_iha is None:
        raise Inconclusive(
            "IP-in-IP gets no answer: only a vantage point at the i-HA (role 'i-ha') can see it arrive, and the "
            "profile has none"
        )
    iha = ctx.profile.internal_home_agents[0]
    identity = ctx.profile.identity("internal")
    inner_src = identity.home_address if identity else None  # a reverse-tunnelled packet from the home address
    inner_dst = (ctx.profile.enterprise_hosts or ctx.profile.internal_home_agents)[0]
    seen = Observer(at_iha, probes.IPPROTO_IPIP, "IP-in-IP arriving at the i-HA")
    checks: list[Check] = []
    try:
        marks = []
        if ctx.profile.vantages_of("inside"):
            check, control_mark = _ipip_control(ctx, ctx.vantage("inside", needed="the control"), seen, iha)
            checks.append(check)
            marks.append(control_mark)
        else:
            ctx.note("no inside vantage point: no control that the i-HA vantage point sees IP-in-IP at all")
        mark = probes.marker("vpn")
        send_ipip(ctx, vpn, iha, inner_src=inner_src, inner_dst=inner_dst, mark=mark)
        wait(ctx, watchers=[seen], duration=ctx.profile.reply_timeout, done=lambda: seen.saw(mark))
        arrived = seen.saw(mark)
        checks.append(
            Check(
                f"{vpn.name}: IP-in-IP to the i-HA {iha} through the VPN arrives",
                "it arrives (4.2: the VPN policy SHOULD allow IP-IP to the i-HA)",
                f"it arrived (seen at vantage point {at_iha.name})"
                if arrived
                else f"not seen at the i-HA within {ctx.profile.reply_timeout:g} s",
                arrived,
                party=Party.VPN_GATEWAY,
            )
        )
        _keep(ctx, "ipip-at-i-ha", seen, [*marks, mark])
    finally:
        seen.close()
    return checks


def vpn_natt(ctx: SiteContext) -> list[Check]:
    """The VPN gateway offers IPsec NAT traversal: NAT-D in its IKE_SA_INIT answer, and IKE on UDP 4500.

    Control: an IKEv2 IKE_SA_INIT to UDP 500 is answered at all (else the
    gateway speaks no IKEv2 the probe can reach, and nothing is judged).
    """
    outside = ctx.vantage("outside", needed="NAT traversal is offered to clients outside")
    if not ctx.profile.vpn_gateways:
        raise Inconclusive("the profile names no VPN gateway (site.vpn_gateways)")
    checks: list[Check] = []
    for gw in ctx.profile.vpn_gateways:
        first = probes.ike_sa_init(ctx, outside, gw, probes.ike.IKE_PORT)
        if first.response is None:
            raise Inconclusive(
                f"control: no IKEv2 answer from {gw} on UDP 500 to {outside.name}'s IKE_SA_INIT within "
                f"{ctx.profile.reply_timeout:g} s: the gateway cannot be judged"
            )
        answer = first.response
        checks.append(
            Check(f"control: IKE_SA_INIT to {gw}:500 is answered", "an IKEv2 response", answer.describe(), True)
        )
        if not answer.nat_detection and not answer.accepted:
            checks.append(
                Check(
                    f"{gw}: the IKE_SA_INIT response carries NAT detection (NAT-D) notifications",
                    "NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP",
                    f"{answer.describe()}: the gateway chose none of the probe's proposals, so it had no reason "
                    "to send NAT-D",
                    None,
                    rule_id=IPSEC_NAT_TRAVERSAL_42,
                    party=Party.VPN_GATEWAY,
                )
            )
        else:
            checks.append(
                Check(
                    f"{gw}: the IKE_SA_INIT response carries NAT detection (NAT-D) notifications",
                    "NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP (RFC 3947, RFC 7296 2.23)",
                    answer.describe(),
                    answer.nat_detection,
                    rule_id=IPSEC_NAT_TRAVERSAL_42,
                    party=Party.VPN_GATEWAY,
                )
            )
        natt = probes.ike_sa_init(ctx, outside, gw, probes.ike.NAT_T_PORT)
        checks.append(
            Check(
                f"{gw}: IKE on UDP 4500 (behind the non-ESP marker) is answered",
                "an IKEv2 response on the NAT-T port (RFC 3948)",
                natt.response.describe()
                if natt.response
                else f"nothing within {ctx.profile.reply_timeout:g} s ({natt.tries} tries)",
                natt.response is not None,
                rule_id=IPSEC_NAT_TRAVERSAL_25,
                party=Party.VPN_GATEWAY,
            )
        )
    return checks


def _ipv4(packet: bytes) -> tuple[int, str, str, bytes] | None:
    """(protocol, source, destination, payload) of an IPv4 packet."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    return packet[9], socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20]), packet[ihl:]


def _destinations(ctx: SiteContext) -> list[str]:
    out: list[str] = []
    for address in (
        *ctx.profile.internal_home_agents,
        *ctx.profile.enterprise_hosts,
        *(str(next(net.hosts())) for net in ctx.profile.internal_networks if net.num_addresses > 2),
    ):
        if address not in out:
            out.append(address)
    return out


def vpn_encrypt_all(ctx: SiteContext) -> list[Check]:
    """Traffic from the VPN host to the enterprise leaves its outer interface in ESP only.

    UDP datagrams with a marker go from the VPN host to the i-HA, the
    profile's enterprise hosts and one address of each internal network; a
    capture on the host's outer interface (``interface`` of the vpn vantage
    point) must show none of them, nor any packet addressed into the
    enterprise, in the clear. Control: something left the interface toward the
    VPN gateway (ESP, or ESP in UDP 4500), so the capture and the probes work.
    """
    vpn = ctx.vantage("vpn", needed="4.1 is about traffic from a host on the VPN")
    if not vpn.interface:
        raise Inconclusive(f'vantage point {vpn.name} names no interface to capture on (interface = "...")')
    gateways = set(ctx.profile.vpn_gateways)
    destinations = _destinations(ctx)
    capture = LinkCapture(vpn, vpn.interface)
    marks: dict[str, bytes] = {}
    try:
        for dst in destinations:
            marks[dst] = probes.marker(dst)
            probes.send_udp(vpn, dst, probes.DISCARD_PORT, marks[dst])
        wait(ctx, watchers=[capture], duration=min(ctx.profile.silence, 0.5))
    finally:
        capture.close()
    outgoing = [(t, data) for t, out, data in capture.packets if out]
    ctx.keep_raw("outer", outgoing)
    plain: dict[str, list[str]] = {dst: [] for dst in destinations}
    protected = 0
    for _t, data in outgoing:
        parsed = _ipv4(data)
        if parsed is None:
            continue
        proto, src, dst, payload = parsed
        hits = [target for target, mark in marks.items() if mark in data]
        for target in hits:
            plain[target].append(f"{src} -> {dst} protocol {proto}, the probe readable")
        if (dst in marks or ctx.profile.in_enterprise(dst)) and dst not in hits:
            plain.setdefault(dst, []).append(f"{src} -> {dst} protocol {proto}")
        nat_t = proto == 17 and len(payload) >= 8 and struct.unpack("!H", payload[2:4])[0] == 4500
        if dst in gateways and (proto == 50 or nat_t):
            protected += 1
    leaked = {dst: found for dst, found in plain.items() if found}
    if not leaked and protected == 0:
        raise Inconclusive(
            f"control: nothing left {vpn.name}'s interface {vpn.interface} toward a VPN gateway "
            f"({', '.join(sorted(gateways)) or 'none named'}) while probing: the capture or the VPN does not work"
        )
    checks = [
        Check(
            f"control: the probes left {vpn.interface} toward the VPN gateway",
            "ESP or ESP in UDP 4500 to the gateway",
            f"{protected} packets",
            True if protected else None,
        )
    ]
    for dst in destinations:
        found = plain.get(dst, [])
        checks.append(
            Check(
                f"{vpn.name}: traffic to {dst} leaves {vpn.interface} encrypted only",
                "no plaintext toward the enterprise (4.1: encrypt all traffic to the enterprise network)",
                "; ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
                if found
                else "only ESP seen",
                not found,
                party=Party.MOBILE_NODE,
            )
        )
    for dst, found in leaked.items():
        if dst not in destinations:
            checks.append(
                Check(
                    f"{vpn.name}: nothing else leaves {vpn.interface} in the clear toward the enterprise",
                    "no plaintext toward the enterprise",
                    "; ".join(found[:3]),
                    False,
                    party=Party.MOBILE_NODE,
                )
            )
    return checks


# ------------------------------------------------------------------ 3.5: distinct home agent addresses


def distinct_ha(ctx: SiteContext) -> list[Check]:
    """The i-HA and x-HA addresses differ: in the profile, and where the answers come from.

    The answers are compared when both home agents answer a valid
    registration: the i-HA from inside, the x-HA from outside (each where a
    mobile node would use it).
    """
    ihas, xhas = ctx.profile.internal_home_agents, ctx.profile.external_home_agents
    if not xhas:
        raise NotApplicable("the profile names no x-HA (site.external_home_agents): nothing to compare")
    shared = sorted(set(ihas) & set(xhas))
    checks = [
        Check(
            "the site's i-HA and x-HA addresses differ",
            "no address is both an i-HA and an x-HA (3.5)",
            f"i-HA {', '.join(ihas)}, x-HA {', '.join(xhas)}" + (f": {', '.join(shared)} is both" if shared else ""),
            not shared,
            party=Party.HOME_AGENT,
        )
    ]
    inner, outer = ctx.profile.identity("internal"), ctx.profile.identity("external")
    insides, outsides = ctx.profile.vantages_of("inside"), ctx.profile.vantages_of("outside")
    if not (inner and outer and insides and outsides):
        ctx.note("answers not compared: needs inside and outside vantage points and keys for both home agents")
        return checks
    inside = ctx.vantage("inside", needed="the i-HA answers inside")
    outside = ctx.vantage("outside", needed="the x-HA answers outside")
    to_iha = send_registration(ctx, inside, inner, ihas[0], note=f"{inside.name}: registration to the i-HA")
    to_xha = send_registration(ctx, outside, outer, xhas[0], note=f"{outside.name}: registration to the x-HA")
    regs = [r for r in (to_iha, to_xha) if r is not None]
    ask(ctx, regs)
    if to_iha is None or to_xha is None or not (to_iha.answered and to_xha.answered):
        ctx.note(
            "answers not compared: "
            + "; ".join(
                f"{what}: {r.describe() if r else 'not sent'}"
                for what, r in (("i-HA from inside", to_iha), ("x-HA from outside", to_xha))
            )
        )
        return checks
    assert to_iha.reply is not None and to_xha.reply is not None
    a, b = to_iha.reply.src[0], to_xha.reply.src[0]
    checks.append(
        Check(
            "the i-HA (asked from inside) and the x-HA (asked from outside) answer from different addresses",
            "two addresses (3.5)",
            f"the i-HA answered from {a}, the x-HA from {b}",
            a != b,
            _frames(to_iha, to_xha),
            party=Party.HOME_AGENT,
        )
    )
    return checks


# ------------------------------------------------------------------ 3.1 MAY / 3.7: the x-HA from inside


def xha_inside_drop(ctx: SiteContext) -> list[Check]:
    """Whether registrations from inside reach the x-HA (3.1 MAY block them; 3.7): reported, never failed.

    Control: the x-HA answers the same registration from outside.
    """
    xhas = ctx.profile.external_home_agents
    if not xhas:
        raise NotApplicable("the profile names no x-HA (site.external_home_agents)")
    inside = ctx.vantage("inside", needed="the question is what happens from inside")
    outside = ctx.vantage("outside", needed="the control: the x-HA answers from outside")
    identity = ctx.identity("external", needed="a registration the x-HA answers")
    what = f"a valid registration to the x-HA {xhas[0]}"
    _reg, control = _control_registration(ctx, outside, identity, xhas[0], what)
    reg = send_registration(ctx, inside, identity, xhas[0], note=f"{inside.name}: registration to the x-HA")
    assert reg is not None
    wait(ctx, registrations=[reg], duration=ctx.profile.silence, done=lambda: reg.answered)
    reg.close()
    if reg.answered:
        ctx.note(
            "the x-HA is reachable from inside (permitted by 3.1): mobile nodes inside rely on the i-HA's TNC "
            "(3.3) to tell inside from outside"
        )
    else:
        ctx.note("registrations from inside do not reach the x-HA (3.1 MAY, 3.7): network detection is simpler")
    return [
        control,
        Check(
            f"{inside.name}: a registration from inside to the x-HA {xhas[0]} is dropped",
            "no reply (3.1 MAY: the firewall may block registrations from inside to the x-HA)",
            reg.describe(),
            not reg.answered,
            _frames(reg),
            party=Party.FIREWALL,
        ),
    ]


# ------------------------------------------------------------------ 4.3: the i-HA's trust, from each side


def _in_internal_networks(ctx: SiteContext, source: str | None) -> bool:
    if source is None:
        return False
    return any(ipaddress.IPv4Address(source) in net for net in ctx.profile.internal_networks)


def iha_trust(ctx: SiteContext) -> list[Check]:
    """The i-HA's 4.3 behaviour from every side: accepted with TNC from inside and through the VPN, silence outside.

    The HA suite (``--suite ha``) tests this in depth from one host; here the
    same rules are checked where the site puts the sources. A reply from
    outside counts against the i-HA only when it authenticates with the
    i-HA's key (anything else answering at that address is
    SITE-FW-IHA-UNREACHABLE's finding). Through the VPN the source is the
    VPN-TIA: judged when it lies in the internal networks, as 4.3 expects of a
    deployment that trusts its VPN pool.
    """
    identity = ctx.identity("internal", needed="a registration the i-HA accepts")
    iha = ctx.profile.internal_home_agents[0]
    inside = ctx.vantage("inside", needed="the control: the i-HA accepts from inside")
    reg, _check = _control_registration(ctx, inside, identity, iha, f"a valid registration to the i-HA {iha}")
    if not reg.accepted:
        raise Inconclusive(f"control: the i-HA did not accept a valid registration from inside ({reg.describe()})")
    checks = [
        Check(
            f"{inside.name}: the i-HA accepts from inside, with the TNC extension before its authenticator",
            "accepted, with TNC (4.3)",
            reg.describe(),
            reg.tnc,
            _frames(reg),
            rule_id=TNC_IN_REPLY,
            party=Party.HOME_AGENT,
        )
    ]
    vpns = ctx.profile.vantages_of("vpn")
    if vpns:
        vpn = ctx.vantage("vpn", needed="registrations through the VPN")
        source = probes.source_address(vpn, iha)
        through = None
        if _in_internal_networks(ctx, source):
            through = send_registration(ctx, vpn, identity, iha, note=f"{vpn.name}: registration through the VPN")
            assert through is not None
            ask(ctx, [through])
        if through is not None and not through.answered:
            ctx.note(
                f"{vpn.name}: no reply through the VPN (what the VPN lets through is SITE-VPN-UDP434-ANY-PORT's "
                "finding): the i-HA's answer to the VPN-TIA not judged"
            )
        elif through is not None:
            checks.append(
                Check(
                    f"{vpn.name}: the i-HA accepts from the VPN-TIA {source}, with TNC",
                    "accepted, with TNC (the VPN-TIA is in the internal network: 4.3)",
                    through.describe(),
                    through.accepted and through.tnc,
                    _frames(through),
                    rule_id=TNC_IN_REPLY,
                    party=Party.HOME_AGENT,
                )
            )
        else:
            ctx.note(f"{vpn.name}'s source {source} toward the i-HA is not in the internal networks: not judged")
    else:
        ctx.note("no vantage point on the VPN: registrations through it not judged")
    outside = ctx.profile.vantages_of("outside")
    if outside:
        regs = []
        for v in ctx.vantages("outside", needed="untrusted sources"):
            r = send_registration(ctx, v, identity, iha, note=f"{v.name}: registration from outside")
            assert r is not None
            regs.append(r)
        wait(ctx, registrations=regs, duration=ctx.profile.silence)
        for r in regs:
            r.close()
            from_iha = r.judgement is not None and r.judgement.usable
            observed = r.describe()
            if r.answered and not from_iha:
                observed += " (does not verify with the i-HA's key: not the i-HA's answer)"
            checks.append(
                Check(
                    f"{r.vantage.name}: no answer from the i-HA to an untrusted source outside",
                    "silence (4.3: drop silently)",
                    observed,
                    not from_iha,
                    _frames(r),
                    rule_id=DROP_UNTRUSTED,
                    party=Party.HOME_AGENT,
                )
            )
    else:
        ctx.note("no outside vantage point: untrusted sources not probed")
    return checks
