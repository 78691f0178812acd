"""Keys the dissector may be given: Mobile IP SPIs and ESP security associations.

Parsed here from ``--key``, ``--esp-sa`` and ``--keys FILE`` so that every
command reads them the same way. Secrets are held in objects whose repr hides
them, and no error message quotes a secret: a bad value is named by its SPI
and what is wrong with it. On the command line a secret is best named, not
written: ``env:NAME`` or ``file:PATH``; one typed inline (it shows in ``ps``
and shell history) is accepted for published test keys and recorded in
``KeyRing.typed_inline`` so that the command warns. A keys file may hold them
inline.

Formats (also in ``mipcheck dissect --help``)::

    --key SPI=[ALGORITHM:]SOURCE          SOURCE: env:NAME or file:PATH (the key's octets);
                                          hex:00ff... or text:... typed inline (with a warning)
                                          ALGORITHM: hmac-md5 (default), prefix-suffix-md5
    --esp-sa SPI,ENC,ENC-KEY,AUTH,AUTH-KEY
                                          ENC: null, des-cbc, 3des-cbc, aes-cbc, aes-ctr, aes-gcm
                                          AUTH: null, hmac-sha1-96, hmac-md5-96, hmac-sha2-256-128, ...
                                          keys: env:NAME or file:PATH holding hex, or inline hex
                                          (with a warning); empty for null
    --keys FILE                           TOML: [[mip]] spi/algorithm/secret and
                                          [[esp]] spi/encryption/encryption_key/authentication/authentication_key;
                                          secret: hex:00ff..., text:..., env:NAME, file:PATH
                                          (relative to FILE) or plain text; ESP keys in hex

SPIs are decimal or 0x-hex.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mipcheck import keysource
from mipcheck.errors import ConfigError, InputError
from mipcheck.proto.codec import ALGORITHMS as MIP_ALGORITHMS
from mipcheck.proto.security import AnalysisSA
from mipcheck.tomlfile import read_toml

# our names -> scapy.layers.ipsec names
ESP_CIPHERS = {
    "null": "NULL",
    "des-cbc": "DES",
    "3des-cbc": "3DES",
    "aes-cbc": "AES-CBC",
    "aes-ctr": "AES-CTR",
    "aes-gcm": "AES-GCM",
}
ESP_INTEGRITY = {
    "null": "NULL",
    "hmac-sha1-96": "HMAC-SHA1-96",
    "hmac-md5-96": "HMAC-MD5-96",
    "hmac-sha2-256-128": "SHA2-256-128",
    "hmac-sha2-384-192": "SHA2-384-192",
    "hmac-sha2-512-256": "SHA2-512-256",
}


# A capture may carry a reserved SPI (0-255) and its authenticator is still checked: AnalysisSA allows one.
MipKey = AnalysisSA


@dataclass(frozen=True)
class EspSA:
    """One ESP security association, matched to packets by SPI (RFC 4303 2.1)."""

    spi: int
    encryption: str  # our name, key of ESP_CIPHERS
    encryption_key: bytes = field(repr=False)
    authentication: str
    authentication_key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"EspSA(spi={self.spi:#x}, encryption={self.encryption!r}, authentication={self.authentication!r}, "
            "keys=<hidden>)"
        )


@dataclass
class KeyRing:
    """All keys given to one command."""

    mip: dict[int, MipKey] = field(default_factory=dict)
    esp: dict[int, EspSA] = field(default_factory=dict)
    # options whose secret was typed on the command line (for a warning, never the value)
    typed_inline: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.mip or self.esp)


def parse_spi(text: str, what: str) -> int:
    try:
        value = int(text.strip(), 0)
    except ValueError:
        raise InputError(f"{what}: SPI {text.strip()!r} is not a number (decimal or 0x-hex)") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise InputError(f"{what}: SPI {value} does not fit in 32 bits")
    return value


def _hex(text: str, what: str) -> bytes:
    try:
        return keysource.from_hex(text)
    except keysource.SourceError:
        raise InputError(f"{what}: key is not valid hex") from None


def parse_secret(text: str, what: str, base_dir: Path | None = None) -> bytes:
    """A secret as a keys file writes it: hex:, text:, env:, file: or plain text."""
    kind, colon, rest = text.partition(":")
    try:
        if colon and kind == "hex":
            return keysource.from_hex(rest)
        if colon and kind == "text":
            return rest.encode()
        if colon and kind == "env":
            return keysource.from_env(rest)
        if colon and kind == "file":
            return keysource.from_file(rest, base_dir)[0]
    except keysource.SourceError as exc:
        raise InputError(f"{what}: {exc}") from None
    return text.encode()


def parse_key_option(value: str, typed_inline: list[str] | None = None) -> MipKey:
    """``SPI=[ALGORITHM:]SECRET`` as given to ``--key``."""
    spi_text, sep, rest = value.partition("=")
    if not sep:
        raise InputError("--key: expected SPI=[ALGORITHM:]SOURCE, e.g. 256=env:MN_HA_KEY or 0x100=hmac-md5:file:mn.key")
    spi = parse_spi(spi_text, "--key")
    what = f"--key for SPI {spi}"
    algorithm = "hmac-md5"
    head, colon, tail = rest.partition(":")
    if colon and head in MIP_ALGORITHMS:
        algorithm, rest = head, tail
    secret, inline = keysource.from_option(rest, what)
    if inline and typed_inline is not None:
        typed_inline.append(what)
    try:
        return MipKey(spi, secret, algorithm)
    except ConfigError as exc:
        raise InputError(f"{what}: {exc.key} {exc.problem}") from None


def parse_esp_sa_option(value: str, typed_inline: list[str] | None = None) -> EspSA:
    """``SPI,ENC,ENC-KEY,AUTH,AUTH-KEY`` as given to ``--esp-sa``."""
    parts = value.split(",")
    if len(parts) != 5:
        raise InputError("--esp-sa: expected SPI,ENC,ENC-KEY,AUTH,AUTH-KEY, e.g. 0x1001,aes-cbc,HEX,hmac-sha1-96,HEX")
    spi = parse_spi(parts[0], "--esp-sa")
    what = f"--esp-sa for SPI {spi:#x}"
    keys = []
    for text in (parts[2].strip(), parts[4].strip()):
        if not text:  # null algorithms have no key
            keys.append("")
            continue
        raw, inline = keysource.from_option(text, what, decode_hex=True)
        if inline and typed_inline is not None and what not in typed_inline:
            typed_inline.append(what)
        keys.append(raw.hex())
    return _esp_sa(spi, parts[1].strip().lower(), keys[0], parts[3].strip().lower(), keys[1], what)


def _esp_sa(spi: int, enc: str, enc_key: str, auth: str, auth_key: str, what: str) -> EspSA:
    if enc not in ESP_CIPHERS:
        raise InputError(f"{what}: unknown encryption {enc!r}; use one of {', '.join(ESP_CIPHERS)}")
    if auth not in ESP_INTEGRITY:
        raise InputError(f"{what}: unknown authentication {auth!r}; use one of {', '.join(ESP_INTEGRITY)}")
    sa = EspSA(spi, enc, _hex(enc_key, what), auth, _hex(auth_key, what))
    _check_esp_key_sizes(sa, what)
    return sa


def _check_esp_key_sizes(sa: EspSA, what: str) -> None:
    """Key sizes of the ciphers (RFC 2405 DES 8, RFC 2451 3DES 24, RFC 3602 AES 16/24/32; +4 salt for CTR/GCM)."""
    sizes = {
        "null": (0,),
        "des-cbc": (8,),
        "3des-cbc": (24,),
        "aes-cbc": (16, 24, 32),
        "aes-ctr": (20, 28, 36),
        "aes-gcm": (20, 28, 36),
    }[sa.encryption]
    if len(sa.encryption_key) not in sizes:
        raise InputError(
            f"{what}: {sa.encryption} needs a key of {' or '.join(map(str, sizes))} octets, got "
            f"{len(sa.encryption_key)}"
        )
    if sa.authentication != "null" and not sa.authentication_key:
        raise InputError(f"{what}: {sa.authentication} needs a key")


def load_keys_file(path: str) -> KeyRing:
    """Read a TOML keys file (see the module docstring)."""
    doc = read_toml(path, "keys file")
    ring = KeyRing()
    unknown = sorted(set(doc) - {"mip", "esp"})
    if unknown:
        raise ConfigError(unknown[0], "unknown table (only [[mip]] and [[esp]])", source=path)
    for i, entry in enumerate(doc.get("mip", []), start=1):
        where = f"mip[{i}]"
        spi = _toml_spi(entry, where, path)
        secret = entry.get("secret")
        if not isinstance(secret, str) or not secret:
            raise ConfigError(f"{where}.secret", "missing or not a string", source=path)
        try:
            raw = parse_secret(secret, f"{where}.secret", Path(path).resolve().parent)
        except InputError as exc:
            raise ConfigError(f"{where}.secret", str(exc).split(": ", 1)[-1], source=path) from None
        algorithm = entry.get("algorithm", "hmac-md5")
        ring.mip[spi] = MipKey.checked(spi, raw, algorithm, where=where, source=path)
    for i, entry in enumerate(doc.get("esp", []), start=1):
        where = f"esp[{i}]"
        spi = _toml_spi(entry, where, path)
        values = []
        for key in ("encryption", "encryption_key", "authentication", "authentication_key"):
            value = entry.get(key, "" if key.endswith("_key") else None)
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key}", "missing or not a string", source=path)
            values.append(value)
        try:
            ring.esp[spi] = _esp_sa(spi, values[0].lower(), values[1], values[2].lower(), values[3], where)
        except InputError as exc:
            raise ConfigError(where, str(exc).split(": ", 1)[-1], source=path) from None
    return ring


def _toml_spi(entry: object, where: str, path: str) -> int:
    if not isinstance(entry, dict):
        raise ConfigError(where, "expected a table", source=path)
    spi = entry.get("spi")
    if isinstance(spi, str):
        try:
            spi = int(spi, 0)
        except ValueError:
            spi = None
    if not isinstance(spi, int) or isinstance(spi, bool) or not 0 <= spi <= 0xFFFFFFFF:
        raise ConfigError(f"{where}.spi", "expected a 32-bit number", source=path)
    return spi


def build_keyring(keys: tuple[str, ...] = (), esp_sas: tuple[str, ...] = (), keys_file: str | None = None) -> KeyRing:
    ring = load_keys_file(keys_file) if keys_file else KeyRing()
    for value in keys:
        key = parse_key_option(value, ring.typed_inline)
        ring.mip[key.spi] = key
    for value in esp_sas:
        sa = parse_esp_sa_option(value, ring.typed_inline)
        ring.esp[sa.spi] = sa
    return ring
