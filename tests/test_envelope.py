"""DSSE: PAE known answers, the spec's vector and its mutations, thresholds over unique keys."""

from __future__ import annotations

import json

import pytest

from provenance import _json
from provenance.envelope import (
    Envelope,
    Signature,
    add_signature,
    pae,
    sign_envelope,
    verify_envelope,
)
from provenance.errors import FormatError, SignatureError
from provenance.keys import PrivateKey, PublicKey
from tests.conftest import VECTORS

DSSE = json.loads((VECTORS / "dsse" / "dsse_vectors.json").read_text())
SPEC_KEY = PublicKey.from_pem(DSSE["key"]["public_pem"].encode(), what="spec key")
SPEC_TYPE = "http://example.com/HelloWorld"


def test_pae_known_answer_from_style_guide() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("case", DSSE["pae_examples"], ids=lambda c: c["pae_utf8"][:30])
def test_pae_vectors(case: dict[str, str]) -> None:
    assert pae(case["payloadType"], case["payload_utf8"].encode()) == case["pae_utf8"].encode()


def _outcome(case: dict[str, object], threshold: int = 1) -> str:
    try:
        envelope = Envelope.from_dict(case["envelope"], what="vector")
        verify_envelope(
            envelope, {SPEC_KEY.keyid: SPEC_KEY}, payload_type=SPEC_TYPE, threshold=threshold
        )
    except (FormatError, SignatureError):
        return "invalid"
    return "valid"


@pytest.mark.parametrize("case", DSSE["cases"], ids=lambda c: c["name"])
def test_dsse_spec_vector_and_mutations(case: dict[str, object]) -> None:
    expect = str(case["expect"])
    outcome = _outcome(case)
    if expect.startswith("valid"):
        assert outcome == "valid"
    else:
        assert outcome == "invalid"
    if "threshold 2" in str(case["name"]) or "malleated" in str(case["name"]):
        # One key signing twice (or a malleated copy of its signature) is still one key.
        envelope = Envelope.from_dict(case["envelope"], what="vector")
        with pytest.raises(SignatureError, match="signed by 1 of the 2"):
            verify_envelope(
                envelope, {SPEC_KEY.keyid: SPEC_KEY}, payload_type=SPEC_TYPE, threshold=2
            )


@pytest.fixture(params=["ed25519", "ecdsa-p256"])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return PrivateKey.generate(request.param)


def test_sign_verify_round_trip(key: PrivateKey) -> None:
    envelope = sign_envelope("application/x-test", b"payload", [key])
    parsed = Envelope.from_json(envelope.to_json(), what="e")
    verified = verify_envelope(parsed, {key.keyid: key.public}, payload_type="application/x-test")
    assert verified.payload == b"payload"
    assert verified.signers == (key.keyid,)


def test_every_single_byte_change_of_payload_or_signature_fails(key: PrivateKey) -> None:
    envelope = sign_envelope("application/x-test", b"a signed payload", [key])
    keys = {key.keyid: key.public}
    for index in range(len(envelope.payload)):
        payload = bytearray(envelope.payload)
        payload[index] ^= 0x01
        with pytest.raises(SignatureError, match="signed by 0 of the 1 trusted key"):
            verify_envelope(
                Envelope(envelope.payload_type, bytes(payload), envelope.signatures),
                keys,
                payload_type="application/x-test",
            )
    sig = envelope.signatures[0].sig
    for index in range(len(sig)):
        mutated = bytearray(sig)
        mutated[index] ^= 0x80
        with pytest.raises(SignatureError, match="signed by 0 of the 1 trusted key"):
            verify_envelope(
                Envelope(
                    envelope.payload_type, envelope.payload, (Signature(key.keyid, bytes(mutated)),)
                ),
                keys,
                payload_type="application/x-test",
            )


def test_payload_type_is_covered_by_the_signature(key: PrivateKey) -> None:
    envelope = sign_envelope("application/x-a", b"x", [key])
    swapped = Envelope("application/x-b", envelope.payload, envelope.signatures)
    with pytest.raises(SignatureError, match="signed by 0 of the 1 trusted key"):
        verify_envelope(swapped, {key.keyid: key.public}, payload_type="application/x-b")


def test_wrong_payload_type_is_refused_even_when_signed(key: PrivateKey) -> None:
    envelope = sign_envelope("application/x-a", b"x", [key])
    with pytest.raises(SignatureError, match="payload type"):
        verify_envelope(envelope, {key.keyid: key.public}, payload_type="application/x-b")


def test_untrusted_key_fails(key: PrivateKey) -> None:
    other = PrivateKey.generate()
    envelope = sign_envelope("t", b"x", [key])
    with pytest.raises(SignatureError, match="signed by 0 of the 1"):
        verify_envelope(envelope, {other.keyid: other.public}, payload_type="t")


def test_keyid_is_only_a_hint(key: PrivateKey) -> None:
    envelope = sign_envelope("t", b"x", [key])
    lying = Envelope("t", b"x", (Signature("someone-else", envelope.signatures[0].sig),))
    assert verify_envelope(lying, {key.keyid: key.public}, payload_type="t").signers == (key.keyid,)
    # And a signature claiming a trusted keyid but made by another key does not count.
    other = PrivateKey.generate()
    forged = sign_envelope("t", b"x", [other])
    claimed = Envelope("t", b"x", (Signature(key.keyid, forged.signatures[0].sig),))
    with pytest.raises(SignatureError, match="signed by 0 of the 1 trusted key"):
        verify_envelope(claimed, {key.keyid: key.public}, payload_type="t")


def test_threshold_counts_unique_keys() -> None:
    first, second = PrivateKey.generate(), PrivateKey.generate("ecdsa-p256")
    keys = {first.keyid: first.public, second.keyid: second.public}
    single = sign_envelope("t", b"x", [first])
    duplicated = Envelope("t", b"x", single.signatures * 3)
    with pytest.raises(SignatureError, match="signed by 1 of the 2"):
        verify_envelope(duplicated, keys, payload_type="t", threshold=2)
    both = add_signature(single, second)
    assert verify_envelope(both, keys, payload_type="t", threshold=2).signers == tuple(
        sorted([first.keyid, second.keyid])
    )


def test_co_signing_the_same_key_twice_replaces_its_signature(key: PrivateKey) -> None:
    envelope = add_signature(sign_envelope("t", b"x", [key]), key)
    assert len(envelope.signatures) == 1


def test_vacuous_trust_is_refused(key: PrivateKey) -> None:
    envelope = sign_envelope("t", b"x", [key])
    with pytest.raises(ValueError, match="empty set of keys"):
        verify_envelope(envelope, {}, payload_type="t")
    with pytest.raises(ValueError, match="threshold"):
        verify_envelope(envelope, {key.keyid: key.public}, payload_type="t", threshold=0)
    with pytest.raises(SignatureError, match="no signatures"):
        verify_envelope(Envelope("t", b"x", ()), {key.keyid: key.public}, payload_type="t")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"payload": "", "signatures": []}, "payloadType"),
        ({"payloadType": "t", "signatures": []}, "payload"),
        ({"payloadType": "t", "payload": ""}, "signatures"),
        ({"payloadType": "t", "payload": "", "signatures": [{}]}, "sig"),
        ({"payloadType": "t", "payload": "", "signatures": [{"sig": "", "keyid": 5}]}, "keyid"),
        ({"payloadType": "t", "payload": "!!", "signatures": []}, "base64"),
        ([], "object"),
    ],
)
def test_malformed_envelopes(document: object, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Envelope.from_dict(document, what="e")


def test_envelope_json_is_strict() -> None:
    data = b'{"payloadType": "t", "payloadType": "u", "payload": "", "signatures": []}'
    with pytest.raises(FormatError, match="duplicate key"):
        Envelope.from_json(data, what="e")


def test_envelope_output_uses_standard_base64_with_padding(key: PrivateKey) -> None:
    document = json.loads(sign_envelope("t", b"\xfb\xff", [key]).to_json())
    assert document["payload"] == "+/8="
    assert _json.b64decode(document["signatures"][0]["sig"], what="s")
