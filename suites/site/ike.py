"""Just enough IKEv2 (RFC 7296) to ask a VPN gateway whether it offers NAT traversal.

The site suite sends one IKE_SA_INIT request, as any initiator would, with
the NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP notifications
(RFC 7296 2.23, RFC 3947's NAT-D in IKEv2 form), to UDP 500 and, behind the
four-octet non-ESP marker of RFC 3948 2.2, to UDP 4500; and reads what comes
back: the responder's own NAT-D notifications, a chosen proposal, or an error
notification (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD with the group it wants,
COOKIE). It never completes the exchange (no IKE_AUTH, no keys derived): the
gateway drops the half-open SA after its timeout.

Pure functions from parameters to octets and back; the socket work is in
:mod:`.probes`. Key exchange values are real (X25519, P-256, P-384 from
``cryptography``, MODP 2048 by arithmetic), so a strict responder that checks
them still answers.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from dataclasses import dataclass, field

IKE_PORT = 500
NAT_T_PORT = 4500
NON_ESP_MARKER = b"\0\0\0\0"  # RFC 3948 2.2: IKE on port 4500 starts with four zero octets

IKE_SA_INIT = 34
FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20

# payload types (RFC 7296 3.2)
PL_NONE = 0
PL_SA = 33
PL_KE = 34
PL_NONCE = 40
PL_NOTIFY = 41
PAYLOAD_NAMES = {33: "SA", 34: "KE", 35: "IDi", 36: "IDr", 37: "CERT", 38: "CERTREQ", 39: "AUTH", 40: "Ni/Nr",
                 41: "N", 42: "D", 43: "V", 46: "SK"}  # fmt: skip

# notify message types
NO_PROPOSAL_CHOSEN = 14
INVALID_KE_PAYLOAD = 17
NAT_DETECTION_SOURCE_IP = 16388
NAT_DETECTION_DESTINATION_IP = 16389
COOKIE = 16390
NOTIFY_NAMES = {
    14: "NO_PROPOSAL_CHOSEN",
    17: "INVALID_KE_PAYLOAD",
    16388: "NAT_DETECTION_SOURCE_IP",
    16389: "NAT_DETECTION_DESTINATION_IP",
    16390: "COOKIE",
    16430: "IKEV2_FRAGMENTATION_SUPPORTED",
    16431: "SIGNATURE_HASH_ALGORITHMS",
}

# transform types and ids (IANA IKEv2 registry)
ENCR, PRF, INTEG, DH = 1, 2, 3, 4
ENCR_AES_CBC, ENCR_AES_GCM_16 = 12, 20
PRF_HMAC_SHA1, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384 = 2, 5, 6
AUTH_HMAC_SHA1_96, AUTH_HMAC_SHA2_256_128, AUTH_HMAC_SHA2_384_192 = 2, 12, 13
KEY_LENGTH_ATTRIBUTE = 0x800E  # AF bit set, type 14

#: Diffie-Hellman groups this module can make a public value for, in the order offered.
GROUPS = (31, 19, 20, 14)

_MODP_2048 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)


def public_value(group: int) -> bytes:
    """A fresh public Diffie-Hellman value for ``group`` (the private half is thrown away)."""
    if group == 31:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if group in (19, 20):
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        curve = ec.SECP256R1() if group == 19 else ec.SECP384R1()
        point = ec.generate_private_key(curve).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return point[1:]  # RFC 5903 7: x | y, without the 0x04 prefix
    if group == 14:
        private = int.from_bytes(os.urandom(32), "big")
        return pow(2, private, _MODP_2048).to_bytes(256, "big")
    raise ValueError(f"no public value for Diffie-Hellman group {group}")


def _transform(kind: int, ident: int, key_length: int | None = None, last: bool = False) -> bytes:
    attrs = struct.pack("!HH", KEY_LENGTH_ATTRIBUTE, key_length) if key_length else b""
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attrs), kind, 0, ident) + attrs


def _proposal(number: int, transforms: list[tuple[int, int, int | None]], last: bool) -> bytes:
    body = b"".join(_transform(k, i, kl, last=(n == len(transforms) - 1)) for n, (k, i, kl) in enumerate(transforms))
    return struct.pack("!BBHBBBB", 0 if last else 2, 0, 8 + len(body), number, 1, 0, len(transforms)) + body


def sa_payload_body() -> bytes:
    """Two IKE proposals covering what gateways commonly accept: AES-CBC + HMAC, and AES-GCM."""
    dh = [(DH, g, None) for g in GROUPS]
    cbc = [
        (ENCR, ENCR_AES_CBC, 128),
        (ENCR, ENCR_AES_CBC, 256),
        (PRF, PRF_HMAC_SHA2_256, None),
        (PRF, PRF_HMAC_SHA2_384, None),
        (PRF, PRF_HMAC_SHA1, None),
        (INTEG, AUTH_HMAC_SHA2_256_128, None),
        (INTEG, AUTH_HMAC_SHA2_384_192, None),
        (INTEG, AUTH_HMAC_SHA1_96, None),
        *dh,
    ]
    gcm = [
        (ENCR, ENCR_AES_GCM_16, 128),
        (ENCR, ENCR_AES_GCM_16, 256),
        (PRF, PRF_HMAC_SHA2_256, None),
        (PRF, PRF_HMAC_SHA2_384, None),
        *dh,
    ]
    return _proposal(1, cbc, last=False) + _proposal(2, gcm, last=True)


def nat_detection_hash(spi_i: bytes, spi_r: bytes, address: str, port: int) -> bytes:
    """RFC 7296 2.23: SHA-1(SPIi | SPIr | IP | Port)."""
    return hashlib.sha1(spi_i + spi_r + socket.inet_aton(address) + struct.pack("!H", port)).digest()  # noqa: S324


def _payload(next_type: int, body: bytes) -> bytes:
    return struct.pack("!BBH", next_type, 0, 4 + len(body)) + body


def _notify_body(kind: int, data: bytes) -> bytes:
    return struct.pack("!BBH", 0, 0, kind) + data


@dataclass(frozen=True)
class InitRequest:
    data: bytes  # the IKE message (without the non-ESP marker)
    spi_i: bytes
    group: int


def sa_init_request(
    source: tuple[str, int], destination: tuple[str, int], *, group: int = GROUPS[0], cookie: bytes | None = None
) -> InitRequest:
    """IKE_SA_INIT: [N(COOKIE)], SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)."""
    spi_i = os.urandom(8)
    zero = bytes(8)
    parts: list[tuple[int, bytes]] = []
    if cookie is not None:
        parts.append((PL_NOTIFY, _notify_body(COOKIE, cookie)))
    parts += [
        (PL_SA, sa_payload_body()),
        (PL_KE, struct.pack("!HH", group, 0) + public_value(group)),
        (PL_NONCE, os.urandom(32)),
        (PL_NOTIFY, _notify_body(NAT_DETECTION_SOURCE_IP, nat_detection_hash(spi_i, zero, *source))),
        (PL_NOTIFY, _notify_body(NAT_DETECTION_DESTINATION_IP, nat_detection_hash(spi_i, zero, *destination))),
    ]
    body = b""
    for n, (_kind, payload) in enumerate(parts):
        following = parts[n + 1][0] if n + 1 < len(parts) else PL_NONE
        body += _payload(following, payload)
    header = spi_i + zero + struct.pack("!BBBBII", parts[0][0], 0x20, IKE_SA_INIT, FLAG_INITIATOR, 0, 28 + len(body))
    return InitRequest(header + body, spi_i, group)


@dataclass(frozen=True)
class InitResponse:
    """What a responder's IKE_SA_INIT answer says (or why it is not one)."""

    spi_r: bytes
    payloads: tuple[int, ...]
    notifies: dict[int, bytes] = field(default_factory=dict)
    problem: str | None = None  # not an IKE_SA_INIT response to our request

    @property
    def nat_detection(self) -> bool:
        return NAT_DETECTION_SOURCE_IP in self.notifies and NAT_DETECTION_DESTINATION_IP in self.notifies

    @property
    def accepted(self) -> bool:
        """A proposal was chosen (SA and KE came back)."""
        return PL_SA in self.payloads and PL_KE in self.payloads

    @property
    def wanted_group(self) -> int | None:
        data = self.notifies.get(INVALID_KE_PAYLOAD)
        return struct.unpack("!H", data[:2])[0] if data and len(data) >= 2 else None

    def describe(self) -> str:
        if self.problem:
            return self.problem
        names = [PAYLOAD_NAMES.get(p, str(p)) for p in self.payloads if p != PL_NOTIFY]
        names += [f"N({NOTIFY_NAMES.get(k, k)})" for k in self.notifies]
        return "IKE_SA_INIT response with " + (", ".join(names) or "no payloads")


def parse_response(data: bytes, request: InitRequest) -> InitResponse:
    """Read an IKE_SA_INIT response to ``request`` (without the non-ESP marker)."""
    if len(data) < 28:
        return InitResponse(b"", (), problem=f"{len(data)} octets: too short for an IKE header")
    spi_i, spi_r = data[:8], data[8:16]
    first, version, exchange, flags, _mid, length = struct.unpack("!BBBBII", data[16:28])
    if spi_i != request.spi_i:
        return InitResponse(spi_r, (), problem="an IKE message for another initiator SPI")
    if version >> 4 != 2 or exchange != IKE_SA_INIT or not flags & FLAG_RESPONSE:
        return InitResponse(
            spi_r, (), problem=f"IKE version {version >> 4}.{version & 15}, exchange {exchange}, flags {flags:#04x}"
        )
    payloads: list[int] = []
    notifies: dict[int, bytes] = {}
    kind, offset, end = first, 28, min(length, len(data))
    while kind != PL_NONE and offset + 4 <= end:
        following, _crit, plen = struct.unpack("!BBH", data[offset : offset + 4])
        if plen < 4 or offset + plen > end:
            return InitResponse(spi_r, tuple(payloads), notifies, problem="a malformed IKE payload chain")
        body = data[offset + 4 : offset + plen]
        payloads.append(kind)
        if kind == PL_NOTIFY and len(body) >= 4:
            spi_size = body[1]
            (ntype,) = struct.unpack("!H", body[2:4])
            notifies[ntype] = body[4 + spi_size :]
        kind, offset = following, offset + plen
    return InitResponse(spi_r, tuple(payloads), notifies)
