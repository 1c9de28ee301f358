"""Signed notes and checkpoints: the C2SP examples, Go's note vectors, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from provenance.errors import InputError, KeyFormatError, SignatureError
from provenance.keys import PrivateKey
from provenance.signednote import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    UnverifiedNote,
    key_id,
    sign_note,
    valid_key_name,
    verify_checkpoint,
    verify_note,
)
from tests.conftest import VECTORS

C2SP = VECTORS / "c2sp"
GO: dict[str, Any] = json.loads((C2SP / "go-note-vectors.json").read_text("utf-8"))
ORIGIN = "example.com/log"


def _go_peter_key() -> PrivateKey:
    """The Go tests' PeterNeumann signing key (the seed follows the type byte)."""
    encoded = GO["peter_skey"].split("+", 4)[4]  # the base64 part may hold "+" itself
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01
    pem = ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:]).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return PrivateKey.from_pem(pem, passphrase=None, what="go key")


def _verifier(name: str = ORIGIN) -> tuple[NoteSigner, NoteVerifier]:
    signer = NoteSigner.ed25519(name, PrivateKey.generate())
    return signer, signer.verifier


# --- the specification's examples ---------------------------------------------------------------


def test_spec_example_verifies() -> None:
    vkey = (C2SP / "signed-note-example.vkey").read_text("utf-8").strip()
    note = (C2SP / "signed-note-example.note").read_bytes()
    verifier = NoteVerifier.from_vkey(vkey, what="vkey")
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    assert verifier.vkey() == vkey
    verified = verify_note(note, [verifier], what="note")
    assert verified.text == "This is an example message.\n"
    assert verified.signers == ("example.com/foo",)


def test_spec_example_fails_after_a_one_word_edit() -> None:
    verifier = NoteVerifier.from_vkey(
        (C2SP / "signed-note-example.vkey").read_text("utf-8").strip(), what="vkey"
    )
    note = (C2SP / "signed-note-example.note").read_bytes()
    with pytest.raises(SignatureError, match="does not verify"):
        verify_note(note.replace(b"example message", b"exemplary message"), [verifier], what="n")


def test_spec_note_text_is_split_at_the_last_blank_line() -> None:
    note = UnverifiedNote.parse((C2SP / "signed-note-quasimodo.note").read_bytes(), what="q")
    assert note.text.decode() == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n"
    )
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    # No key is published for it: a verifier that does not know the key refuses the note.
    _, stranger = _verifier("quasimodo.example/salvatore")
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        verify_note((C2SP / "signed-note-quasimodo.note").read_bytes(), [stranger], what="q")


def test_spec_checkpoint_text_parses() -> None:
    note = UnverifiedNote.parse((C2SP / "checkpoint-example.note").read_bytes(), what="c")
    checkpoint = Checkpoint.from_text(note.text.decode(), what="c")
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert base64.b64encode(checkpoint.root) == b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert checkpoint.text() == note.text.decode()
    assert note.signatures[0].name == "example.com/behind-the-sofa"


# --- Go's note vectors --------------------------------------------------------------------------


def test_go_signing_is_byte_for_byte() -> None:
    signer = NoteSigner.ed25519("PeterNeumann", _go_peter_key())
    assert signer.verifier.vkey() == GO["peter_vkey"]
    assert sign_note(GO["text"], [signer]) == GO["signed_by_peter"].encode()


def test_go_verifier_keys() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="vkey")
    assert peter.key_id == bytes.fromhex("c74f20a3")
    for bad in GO["bad_vkeys"]:
        with pytest.raises(
            KeyFormatError,
            match=(
                r"the key part of the verifier key is not valid"
                r"|signature type 0x65 is not supported"
            ),
        ):
            NoteVerifier.from_vkey(bad, what="vkey")
    text = GO["peter_vkey"]
    for cut in range(1, len(text)):  # every truncation, as Go's test does
        with pytest.raises(
            KeyFormatError,
            match=(
                r"the key part of the verifier key is not valid"
                r"|not a verifier key name\+keyid\+base64"
            ),
        ):
            NoteVerifier.from_vkey(text[:cut], what="vkey")
    for position in range(len(text)):  # every one-character change
        changed = text[:position] + chr(ord(text[position]) + 1) + text[position + 1 :]
        with pytest.raises(
            (KeyFormatError, InputError),
            match=(
                r"^vkey: (key ID [0-9a-f]{8} does not match the key|not a verifier key"
                r"|the key part of the verifier key is not valid"
                r"|signature type 0x[0-9a-f]{2} is not supported)"
            ),
        ):
            NoteVerifier.from_vkey(changed, what="vkey")


def test_go_open_one_of_two_signatures_known() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="p")
    enoch = NoteVerifier.from_vkey(GO["enoch_vkey"], what="e")
    both = (GO["text"] + "\n" + GO["peter_signature_line"] + GO["enoch_signature_line"]).encode()
    assert verify_note(both, [peter], what="n").signers == ("PeterNeumann",)
    assert verify_note(both, [peter, enoch], what="n").signers == ("PeterNeumann", "EnochRoot")
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        verify_note(both, [_verifier("Someone")[1]], what="n")


def test_go_duplicates_and_bad_unknown_signatures_are_tolerated() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="p")
    verified = verify_note(GO["duplicates_and_unknown"].encode(), [peter], what="n")
    assert verified.signers == ("PeterNeumann",)


def test_go_invalid_signature_of_a_known_key_rejects_the_note() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="p")
    with pytest.raises(SignatureError, match="PeterNeumann"):
        verify_note(GO["invalid_peter_signature"].encode(), [peter], what="n")


@pytest.mark.parametrize("index", range(len(GO["malformed_notes_signed_by_peter"])))
def test_go_malformed_notes(index: int) -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="p")
    with pytest.raises(
        NoteError,
        match=(
            r"no signature lines, or no final newline|no blank line before signatures"
            r"|holds a control character|signature line \d+ is malformed"
        ),
    ):
        verify_note(GO["malformed_notes_signed_by_peter"][index].encode(), [peter], what="n")


def test_go_invalid_utf8_is_malformed() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="p")
    with pytest.raises(NoteError, match="UTF-8"):
        verify_note(bytes.fromhex(GO["malformed_note_invalid_utf8_hex"]), [peter], what="n")


def test_go_too_many_signatures() -> None:
    peter = NoteVerifier.from_vkey(GO["peter_vkey"], what="p")
    note = GO["text"] + "\n" + GO["peter_signature_line"] * 101
    with pytest.raises(NoteError, match="more than 100"):
        verify_note(note.encode(), [peter], what="n")
    # ... while 16 (the spec's minimum) are accepted.
    verify_note((GO["text"] + "\n" + GO["peter_signature_line"] * 16).encode(), [peter], what="n")


# --- our own rules ------------------------------------------------------------------------------


def test_key_id_formula() -> None:
    signer, verifier = _verifier("a.example/log")
    public = signer.key.public.ed25519_bytes()
    assert verifier.key_id == hashlib.sha256(b"a.example/log\n\x01" + public).digest()[:4]
    assert key_id("a.example/log", 1, public) == verifier.key_id


def test_several_signers_round_trip() -> None:
    log, log_verifier = _verifier(ORIGIN)
    witness, witness_verifier = _verifier("witness.example/w1")
    note = sign_note("hello\n", [log, witness])
    assert verify_note(note, [log_verifier, witness_verifier], what="n").signers == (
        ORIGIN,
        "witness.example/w1",
    )
    assert verify_note(note, [witness_verifier], what="n").signers == ("witness.example/w1",)


def test_wrong_key_same_name_is_ignored_then_refused() -> None:
    signer, _ = _verifier(ORIGIN)
    _, other = _verifier(ORIGIN)  # same name, another key: another key ID
    note = sign_note("hello\n", [signer])
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        verify_note(note, [other], what="n")


def test_same_key_other_name_is_not_trusted() -> None:
    key = PrivateKey.generate()
    note = sign_note("hello\n", [NoteSigner.ed25519("a.example/one", key)])
    other_name = NoteVerifier.ed25519("a.example/two", key.public)
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        verify_note(note, [other_name], what="n")


def test_known_key_with_a_bad_signature_rejects_even_if_another_verifies() -> None:
    good, good_verifier = _verifier("a.example/good")
    bad, bad_verifier = _verifier("a.example/bad")
    note = sign_note("hello\n", [good, bad])
    line_start = note.rindex("— a.example/bad ".encode())
    tampered = bytearray(note)
    position = line_start + len("— a.example/bad ".encode()) + 10
    tampered[position] = ord("A") if tampered[position] != ord("A") else ord("B")
    assert verify_note(bytes(tampered), [good_verifier], what="n").signers == ("a.example/good",)
    with pytest.raises(SignatureError, match="a.example/bad"):
        verify_note(bytes(tampered), [good_verifier, bad_verifier], what="n")


def test_tampered_text_fails() -> None:
    signer, verifier = _verifier()
    note = sign_note("size 10\n", [signer])
    with pytest.raises(
        SignatureError,
        match=r"the signature by trusted key 'example\.com/log' \([0-9a-f]{8}\) does not verify",
    ):
        verify_note(note.replace(b"size 10", b"size 11"), [verifier], what="n")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n[:-1],  # no final newline
        lambda n: n[: n.index(b"\n\n")],  # truncated before the signatures
        lambda n: n[: n.index(b"\n\n") + 2],  # a blank line and no signature
        lambda n: n.replace(b"\n\n", b"\n"),  # no blank line
        lambda n: n.replace("—".encode(), b"-"),  # not an em dash
        lambda n: n.replace("— ".encode(), b""),  # no dash at all: "name base64" alone
        lambda n: n.replace(b"hello", b"hel\rlo"),  # a control character
        lambda n: n.replace(b"hello", b"hel\x00lo"),
        lambda n: n + b"trailing line\n",
        lambda n: n[:-3] + b"\n",  # base64 without its padding
    ],
)
def test_malformed_notes_are_refused(mangle: Any) -> None:
    signer, verifier = _verifier()
    with pytest.raises(
        NoteError,
        match=(
            r"signature line \d+ is malformed|no signature lines, or no final newline"
            r"|no blank line before signatures|holds a control character"
        ),
    ):
        verify_note(mangle(sign_note("hello\n", [signer])), [verifier], what="n")


def test_truncated_signature_is_refused() -> None:
    signer, verifier = _verifier()
    note = sign_note("hello\n", [signer])
    encoded = note.rsplit(b" ", 1)[1].strip()
    short = base64.b64encode(base64.b64decode(encoded)[:4])
    with pytest.raises(NoteError, match="signature line 1 is malformed"):
        verify_note(note.replace(encoded, short), [verifier], what="n")


def test_oversized_note_is_refused_unread() -> None:
    signer, verifier = _verifier()
    big = "x" * (1024 * 1024) + "\n"
    with pytest.raises(NoteError, match="larger than"):
        verify_note(sign_note(big, [signer]), [verifier], what="n")


def test_no_verifiers_is_refused() -> None:
    signer, _ = _verifier()
    with pytest.raises(InputError, match="no trusted key"):
        verify_note(sign_note("a\n", [signer]), [], what="n")


def test_ambiguous_verifiers_are_refused() -> None:
    _, one = _verifier(ORIGIN)
    _, two = _verifier(ORIGIN)
    clash = NoteVerifier(ORIGIN, one.key_id, two.key)
    signer, _ = _verifier()
    with pytest.raises(InputError, match="share the note key name"):
        verify_note(sign_note("a\n", [signer]), [one, clash], what="n")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\nb"])
def test_invalid_key_names(name: str) -> None:
    assert not valid_key_name(name)
    with pytest.raises(InputError, match="cannot name a note key"):
        NoteSigner.ed25519(name, PrivateKey.generate())


def test_ecdsa_keys_cannot_sign_notes() -> None:
    with pytest.raises(KeyFormatError, match="not Ed25519"):
        NoteSigner.ed25519(ORIGIN, PrivateKey.generate("ecdsa-p256"))


def test_sign_refuses_bad_text() -> None:
    signer, _ = _verifier()
    for text in ("no newline", "a\rb\n", "tab\there\n"):
        with pytest.raises(
            ValueError, match="a note text ends in a newline and holds no other control character"
        ):
            sign_note(text, [signer])
    with pytest.raises(ValueError, match="a note needs at least one signer"):
        sign_note("a\n", [])


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_with_extensions() -> None:
    signer, verifier = _verifier(ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 12, bytes(range(32)), ("ext one",))
    note = checkpoint.sign([signer])
    verified = verify_checkpoint(note, [verifier], what="c")
    assert verified.checkpoint == checkpoint
    assert verified.note == note


def test_checkpoint_origin_must_be_the_signing_keys_name() -> None:
    signer, verifier = _verifier(ORIGIN)
    note = Checkpoint("other.example/log", 1, bytes(32)).sign([signer])
    with pytest.raises(SignatureError, match="origin is 'other.example/log'"):
        verify_checkpoint(note, [verifier], what="c")


def test_checkpoint_by_an_untrusted_key_is_refused() -> None:
    signer, _ = _verifier(ORIGIN)
    _, trusted = _verifier(ORIGIN)
    with pytest.raises(SignatureError, match="not signed by a trusted key"):
        verify_checkpoint(Checkpoint(ORIGIN, 1, bytes(32)).sign([signer]), [trusted], what="c")


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n1\n",  # two lines
        f"{ORIGIN}\n01\n{base64.b64encode(bytes(32)).decode()}\n",  # leading zero
        f"{ORIGIN}\n-1\n{base64.b64encode(bytes(32)).decode()}\n",
        f"{ORIGIN}\n1 \n{base64.b64encode(bytes(32)).decode()}\n",
        f"{ORIGIN}\n{2**63}\n{base64.b64encode(bytes(32)).decode()}\n",  # beyond int64
        f"{ORIGIN}\n1\n{base64.b64encode(bytes(31)).decode()}\n",  # short root
        f"{ORIGIN}\n1\n{base64.b64encode(bytes(32)).decode().rstrip('=')}\n",  # no padding
        f"{ORIGIN}\n1\n{base64.urlsafe_b64encode(bytes([255]) * 32).decode()}\n",  # URL alphabet
        f"{ORIGIN}\n1\n{base64.b64encode(bytes(32)).decode()}\n\nextension\n",  # empty line
        f"\n1\n{base64.b64encode(bytes(32)).decode()}\n",  # empty origin
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    signer, verifier = _verifier(ORIGIN)
    note = text.encode() + b"\n" + signer.signature_line(text.encode()).encode()
    with pytest.raises(
        NoteError,
        match=(
            r"a checkpoint has at least three non-empty lines|is not a decimal number"
            r"|is not the base64 of 32 bytes"
        ),
    ):
        verify_checkpoint(note, [verifier], what="c")


def _non_canonical(encoded: str) -> str:
    """The same bytes in base64 whose unused low bits before the padding are not zero."""
    assert encoded.endswith("=") and not encoded.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(encoded[-2])
    changed = encoded[:-2] + alphabet[last | 0b01] + "="
    assert changed != encoded and base64.b64decode(changed) == base64.b64decode(encoded)
    return changed


def test_non_canonical_base64_signature_is_refused() -> None:
    signer, verifier = _verifier()
    note = sign_note("hello\n", [signer]).decode()
    encoded = note.rsplit(" ", 1)[1].strip()  # 4 + 64 bytes: one padding character
    with pytest.raises(NoteError, match="signature line 1 is malformed"):
        verify_note(note.replace(encoded, _non_canonical(encoded)).encode(), [verifier], what="n")


def test_non_canonical_base64_root_is_refused() -> None:
    signer, verifier = _verifier(ORIGIN)
    root = base64.b64encode(bytes(range(32))).decode()
    text = f"{ORIGIN}\n1\n{_non_canonical(root)}\n".encode()
    note = text + b"\n" + signer.signature_line(text).encode()
    with pytest.raises(NoteError, match="root hash"):
        verify_checkpoint(note, [verifier], what="c")
