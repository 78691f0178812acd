"""The Scapy layers agree with ``mipcheck.proto``, the one description of the wire format.

The layers keep their own field layouts (they are the independent reference
the codec is checked against, tests/test_ha_core.py and
tests/test_dissect_fastpath.py); what they must share with the codec is the
table of extension sizes, the fixed message sizes, the flag letters and the
numbers. These tests fail when either side changes alone.
"""

from __future__ import annotations

import pytest

import mipcheck.layers.identification as layer_identification
import mipcheck.layers.numbers as layer_numbers
import mipcheck.layers.secret as layer_secret
from mipcheck.layers import EXTENSION_CLASSES, MESSAGE_CLASSES, RegistrationRequest
from mipcheck.layers.auth import AUTH_EXTENSION_TYPES
from mipcheck.layers.extensions import AUTH_CLASSES, MIPExtension, MIPExtUnknown
from mipcheck.proto import codec, extensions, identification, numbers, secret
from mipcheck.proto.extensions import EXTENSIONS, ExtensionSpec

SPECS = sorted(EXTENSIONS.values())


def _ids(spec: ExtensionSpec) -> str:
    return f"{spec.type}-{spec.name}"


def test_spec_table_and_layer_classes_cover_the_same_types() -> None:
    assert set(EXTENSIONS) == set(EXTENSION_CLASSES)
    assert all(t in numbers.EXTENSION_TYPES for t in EXTENSIONS)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_layer_class_has_the_spec_sizes(spec: ExtensionSpec) -> None:
    cls = EXTENSION_CLASSES[spec.type]
    assert cls.header_size == spec.header_size
    assert cls.long_length == spec.long_length
    assert cls.min_body == spec.min_body
    assert spec.header_size == (4 if spec.long_length else 2)
    assert extensions.header_size(spec.type) == spec.header_size
    assert (spec.type in extensions.LONG_FORMAT_TYPES) == spec.long_length


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_layer_class_and_spec_agree_on_skippable(spec: ExtensionSpec) -> None:
    """RFC 5944 1.9: types 128-255 are skippable."""
    ext = EXTENSION_CLASSES[spec.type]()
    assert ext.type == spec.type
    assert ext.skippable == spec.skippable == (spec.type >= 128) == numbers.is_skippable(spec.type)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_layer_class_and_spec_agree_on_authenticators(spec: ExtensionSpec) -> None:
    cls = EXTENSION_CLASSES[spec.type]
    assert issubclass(cls, AUTH_CLASSES) == spec.authenticator == (spec.type in AUTH_EXTENSION_TYPES)
    if spec.authorization_enabling:
        assert spec.authenticator  # RFC 5944 3.5: authorization comes from an authenticator


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_layers_dissect_and_codec_walk_with_the_same_header(spec: ExtensionSpec) -> None:
    """A default extension built by the layers walks with the spec's header size in the codec."""
    octets = bytes(EXTENSION_CLASSES[spec.type]())
    exts, error = codec.walk_extensions(octets, 0)
    assert error is None
    (ext,) = exts
    assert (ext.type, ext.header, ext.header + ext.length) == (spec.type, spec.header_size, len(octets))
    assert ext.length >= spec.min_body


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_min_body_decides_modelled_in_both(spec: ExtensionSpec) -> None:
    """Below its minimum body the layers fall back to an unrecognised extension, and the codec says "not modelled"."""
    for body in sorted({max(0, spec.min_body - 1), spec.min_body, spec.min_body + 3}):
        if spec.long_length:
            octets = bytes((spec.type, 0)) + body.to_bytes(2, "big") + bytes(body)
        else:
            octets = bytes((spec.type, body)) + bytes(body)
        parsed = MIPExtension(octets)
        modelled = codec.modelled_extensions(octets, 0, len(octets))
        assert bytes(parsed) == octets
        if body < spec.min_body:
            assert isinstance(parsed, MIPExtUnknown) and parsed.malformed
            assert modelled is None
        else:
            assert type(parsed) is EXTENSION_CLASSES[spec.type]
            assert modelled is not None and [e.type for e in modelled] == [spec.type]


def test_derived_sets() -> None:
    assert extensions.LONG_FORMAT_TYPES == {numbers.EXT_GEN_AUTH, numbers.EXT_CVSE}
    assert extensions.AUTHENTICATOR_TYPES == {
        numbers.EXT_MN_HA_AUTH,
        numbers.EXT_MN_FA_AUTH,
        numbers.EXT_FA_HA_AUTH,
        numbers.EXT_GEN_AUTH,
    }
    assert extensions.AUTHORIZATION_ENABLING_TYPES == {numbers.EXT_MN_HA_AUTH, numbers.EXT_GEN_AUTH}
    assert extensions.RECOGNISED_BY_HA == set(EXTENSION_CLASSES)
    # RFC 5944 1.9 only asks about the non-skippable ones: these are what the mobile node understands in a reply.
    assert {t for t in extensions.RECOGNISED_BY_MN if t < 128} == {
        numbers.EXT_MN_HA_AUTH,
        numbers.EXT_MN_FA_AUTH,
        numbers.EXT_FA_HA_AUTH,
        numbers.EXT_GEN_AUTH,
        numbers.EXT_CVSE,
        numbers.EXT_UDP_TUNNEL_REPLY,
    }
    assert bytes(EXTENSION_CLASSES[numbers.EXT_TNC]()) == extensions.TNC_EXTENSION


def test_message_fixed_sizes_match_the_layers() -> None:
    assert set(codec.FIXED_SIZES) == set(MESSAGE_CLASSES)
    for t, size in codec.FIXED_SIZES.items():
        assert MESSAGE_CLASSES[t].fixed_size == size, numbers.MESSAGE_TYPES[t]


def test_flag_letters_and_bits_match_the_request_layer() -> None:
    """RFC 5944 3.3: S B D M G r T x, most significant bit first."""
    flag_fields = [f.name for f in RegistrationRequest.fields_desc[1:9]]
    assert list(numbers.RRQ_FLAG_LETTERS) == flag_fields
    bits = (
        numbers.FLAG_S,
        numbers.FLAG_B,
        numbers.FLAG_D,
        numbers.FLAG_M,
        numbers.FLAG_G,
        numbers.FLAG_R,
        numbers.FLAG_T,
        numbers.FLAG_X,
    )
    for letter, bit in zip(numbers.RRQ_FLAG_LETTERS, bits, strict=True):
        assert bytes(RegistrationRequest(**{letter: 1}))[1] == bit


def test_layer_modules_re_export_proto() -> None:
    assert layer_numbers.REPLY_CODES is numbers.REPLY_CODES
    assert layer_numbers.EXTENSION_TYPES is numbers.EXTENSION_TYPES
    assert layer_numbers.INFINITE_LIFETIME == numbers.INFINITE_LIFETIME == 0xFFFF
    assert layer_secret.Secret is secret.Secret
    assert layer_identification.timestamp_identification is identification.timestamp_identification
    assert layer_identification.low32 is identification.low32
