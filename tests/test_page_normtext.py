"""The page's norm-text-v1 and SHA-256 in Chromium agree with Python's.

The JavaScript (provenance/registry/static/normtext.js, digest.js) runs in Debian's Chromium via
pip Playwright; Python's answer is provenance.normtext. Every code point, singly and in batches
(one shot and streamed in random pieces), seeded random strings built to hit the hard cases
(combining sequences, Hangul, BOMs, invalid UTF-8, White_Space runs), and hypothesis examples.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance._pagetables import _assigned
from provenance._unicode14 import CN_ENDS, CN_STARTS
from provenance.normtext import norm_text_sha256, normalize_batch
from tests.page_support import chromium, empty_registry

pytestmark = pytest.mark.timeout(600)

SETUP = """async () => {
  const nt = await import(new URL("static/normtext.js", location.href));
  const dg = await import(new URL("static/digest.js", location.href));
  const lm = await import(new URL("static/limits.js", location.href));
  const fromBase64 = (text) => {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  };
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // The texts back to back, and their lengths as little-endian uint32 (both base64): large
  // arrays of numbers are slow to pass through Playwright, one string is not.
  const pieces = (data, lengths) => {
    const all = fromBase64(data);
    const sizes = new Uint32Array(fromBase64(lengths).buffer);
    const out = [];
    let offset = 0;
    for (const size of sizes) {
      out.push(all.subarray(offset, offset + size));
      offset += size;
    }
    return out;
  };
  // A small deterministic generator for chunk sizes (the same on every run).
  const lcg = (seed) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const stream = (bytes, next, largest) => {
    const out = [];
    const normalizer = new nt.NormTextV1((piece) => out.push(utf8.decode(piece, { stream: true })));
    for (let i = 0; i < bytes.length; ) {
      const size = next() % (largest + 1);
      if (!normalizer.update(bytes.subarray(i, i + size))) return null;
      i += size;
    }
    if (!normalizer.finish()) return null;
    return out.join("") + utf8.decode();
  };
  window.__page = {
    unicodeVersion: nt.UNICODE_VERSION,
    // Each returns its results as one JSON string.
    normalize(data, lengths) {
      return JSON.stringify(pieces(data, lengths).map((bytes) => {
        const result = nt.normalize(bytes);
        return result === null ? null : utf8.decode(result);
      }));
    },
    stream(data, lengths, seed, largest) {
      const next = lcg(seed);
      return JSON.stringify(pieces(data, lengths).map((bytes) => stream(bytes, next, largest)));
    },
    async textDigests(data, lengths, options) {
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        out.push((await dg.textDigestFile(new Blob([bytes]), options)).digest);
      }
      return JSON.stringify(out);
    },
    async both(data, lengths, options) {
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        const result = await dg.bothDigestsFile(new Blob([bytes]), options);
        const { sha256, text } = result ?? {};
        out.push(result === null ? null : [sha256.digest, sha256.method, text.digest]);
      }
      return JSON.stringify(out);
    },
    // Memory refused: reads of more than `largest` bytes, and (if asked) WebCrypto, fail as they
    // do when an allocation fails.
    refuseMemory(largest, webCrypto) {
      const read = Blob.prototype.arrayBuffer;
      const fail = () => Promise.reject(new RangeError("Array buffer allocation failed"));
      Blob.prototype.arrayBuffer = function () {
        return this.size > largest ? fail() : read.call(this);
      };
      if (webCrypto) crypto.subtle.digest = fail;
      return () => {
        Blob.prototype.arrayBuffer = read;
        delete crypto.subtle.digest;
      };
    },
    // Both digests with the text normalized in two halves (the second by textTailFile, as the
    // other worker does for app.js); `tail` "fails" makes the second half throw instead.
    async halves(data, lengths, options, tail) {
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        const blob = new Blob([bytes]);
        const split = (mid) =>
          tail === "fails"
            ? Promise.reject(new Error("the other worker failed"))
            : dg.textTailFile(blob, { mid, chunkSize: options.chunkSize });
        const r = await dg.bothDigestsFile(blob, { ...options, split });
        out.push(
          r === null ? null : [r.sha256.digest, r.text.digest, r.text.reason, !!r.text.halves],
        );
      }
      return JSON.stringify(out);
    },
    // Both digests with the raw bytes hashed by `hashElsewhere` (sha256Buffer, as the other
    // worker does for app.js); `mode` "fails" makes it fail, "none" answer null; `spare` gives
    // the buffer to copy into (spareBuffer's): "ok", "short" (one byte short), "fails", or none.
    async elsewhere(data, lengths, options, mode, spare) {
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        let handed = 0;
        let spares = 0;
        const hashElsewhere = (buffer) => {
          handed += buffer.byteLength;
          if (mode === "fails") return Promise.reject(new Error("the other worker failed"));
          return mode === "none" ? Promise.resolve(null) : dg.sha256Buffer(buffer);
        };
        const spareOf = {
          ok: (size) => dg.spareBuffer(size).buffer,
          short: (size) => dg.spareBuffer(Math.max(0, size - 1)).buffer,
          fails: () => Promise.reject(new RangeError("Array buffer allocation failed")),
        }[spare];
        const spareBuffer = spareOf && ((size) => (spares++, spareOf(size)));
        const r = await dg.bothDigestsFile(new Blob([bytes]), {
          ...options,
          hashElsewhere,
          spareBuffer,
        });
        const got = [r.sha256.digest, r.sha256.method, r.text.digest, handed, spares];
        out.push(r === null ? null : got);
      }
      return JSON.stringify(out);
    },
    // What happens first for a text split in two: the other part asked for, or progress here.
    async splitOrder(data, lengths) {
      const [bytes] = pieces(data, lengths);
      const blob = new Blob([bytes]);
      const events = [];
      const split = (mid) => (events.push("split"), dg.textTailFile(blob, { mid }));
      const onProgress = () => events.push("progress");
      // Split at 4 MiB (the default is off: digest.js SPLIT_MIN).
      const r = await dg.bothDigestsFile(blob, { split, onProgress, splitMin: 4 * 1024 * 1024 });
      return JSON.stringify([r.text.digest, r.text.halves, events[0], events.length > 1]);
    },
    // Each text normalized with the WebAssembly fast path for runs of ASCII and without it (the
    // plain path), whole and streamed in random pieces (fast): SHA-256 (hex) of each, or null.
    async fastAndPlain(data, lengths, seed, largest) {
      const next = lcg(seed);
      const hex = async (bytes) =>
        bytes === null
          ? null
          : Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) =>
              b.toString(16).padStart(2, "0"),
            ).join("");
      const streamed = (bytes) => {
        const out = [];
        const normalizer = new nt.NormTextV1((piece) => out.push(piece.slice()));
        for (let i = 0; i < bytes.length; ) {
          const size = next() % (largest + 1);
          if (!normalizer.update(bytes.subarray(i, i + size))) return null;
          i += size;
        }
        return normalizer.finish() ? new Uint8Array(out.flatMap((piece) => [...piece])) : null;
      };
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        out.push([
          await hex(nt.normalize(bytes, { fast: true })),
          await hex(nt.normalize(bytes, { fast: false })),
          await hex(streamed(bytes)),
        ]);
      }
      return JSON.stringify({ fastPath: nt.FAST_PATH, out });
    },
    memoryLimits: (deviceMemory) => lm.memoryLimits(deviceMemory),
    async textReasons(data, lengths, options) {
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        out.push((await dg.textDigestFile(new Blob([bytes]), options)).reason);
      }
      return JSON.stringify(out);
    },
    async sha256s(data, lengths, options) {
      const out = [];
      for (const bytes of pieces(data, lengths)) {
        const result = await dg.sha256File(new Blob([bytes]), options);
        out.push([result.digest, result.method]);
      }
      return JSON.stringify(out);
    },
  };
  return nt.UNICODE_VERSION;
}"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    registry = empty_registry(tmp_path_factory.mktemp("registry"))
    with registry, chromium() as browser:
        page = browser.new_page()
        page.goto(registry.url)
        page.wait_for_selector("body[data-ready=true]", state="attached")
        assert page.evaluate(SETUP) == "14.0.0"
        yield page
        page.close()


def _pack(inputs: Sequence[bytes]) -> tuple[str, str]:
    lengths = struct.pack(f"<{len(inputs)}I", *map(len, inputs))
    return (
        base64.b64encode(b"".join(inputs)).decode("ascii"),
        base64.b64encode(lengths).decode("ascii"),
    )


def _python(inputs: Sequence[bytes]) -> list[str | None]:
    batch = normalize_batch(inputs)
    texts = (batch.text(k) for k in range(len(inputs)))
    return [None if text is None else text.decode("utf-8") for text in texts]


def _browser(page: Any, method: str, inputs: Sequence[bytes], *extra: Any) -> list[Any]:
    data, lengths = _pack(inputs)
    result: list[Any] = json.loads(
        page.evaluate(
            f"([data, lengths, extra]) => window.__page.{method}(data, lengths, ...extra)",
            [data, lengths, list(extra)],
        )
    )
    return result


def _assert_same(inputs: Sequence[bytes], got: list[Any], expected: list[Any]) -> None:
    assert len(got) == len(expected) == len(inputs)
    wrong = [(data, e, g) for data, e, g in zip(inputs, expected, got, strict=True) if e != g]
    assert not wrong, f"{len(wrong)} differ, first: {wrong[:3]}"


# -------------------------------------------------------------------------------------------
# Every code point


def test_every_code_point_singly(page: Any) -> None:
    """All 1,112,064 scalar values, each its own text (unassigned: no digest on both sides)."""
    scalars = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    inputs = [chr(cp).encode("utf-8") for cp in scalars]
    # Python's answer: normalize_batch for the assigned code points; for the others, None, which
    # is what its pinned table (_unicode14) gives, checked here on a sample (one by one, Python
    # takes minutes for all 829,834 of them).
    unassigned = _unassigned()
    assigned = [data for cp, data in zip(scalars, inputs, strict=True) if cp not in unassigned]
    assert len(assigned) == 282_230  # assigned in Unicode 14.0
    normalized = iter(_python(assigned))
    expected = [None if cp in unassigned else next(normalized) for cp in scalars]
    sample = random.Random(5).sample(sorted(unassigned), 5_000)
    assert set(_python([chr(cp).encode() for cp in sample])) == {None}
    step = 1 << 18
    for start in range(0, len(inputs), step):
        chunk = inputs[start : start + step]
        _assert_same(chunk, _browser(page, "normalize", chunk), expected[start : start + step])


def test_surrogates_and_other_invalid_sequences_have_no_digest(page: Any) -> None:
    inputs = [chr(cp).encode("utf-8", "surrogatepass") for cp in range(0xD800, 0xE000)]
    inputs += [b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80"]
    inputs += [b"\xf5\x80\x80\x80", b"\x80", b"\xbf", b"a\xc3", b"\xe2\x82", b"\xff", b"\xfe"]
    inputs += [b"\xef\xbb\xbf\xff", b"ok \xed\xbf\xbf ok"]
    assert set(_python(inputs)) == {None}
    assert set(_browser(page, "normalize", inputs)) == {None}
    assert set(_browser(page, "stream", inputs, 7, 2)) == {None}


def _unassigned() -> set[int]:
    points: set[int] = set()
    for first, last in zip(CN_STARTS, CN_ENDS, strict=True):
        points.update(range(first, last + 1))
    return points


def _runs(points: Sequence[int], size: int) -> list[bytes]:
    return ["".join(map(chr, points[k : k + size])).encode() for k in range(0, len(points), size)]


def test_every_assigned_code_point_batched(page: Any) -> None:
    """Texts of consecutive assigned code points, then of shuffled ones: neighbours interact."""
    assigned = list(_assigned())
    assert len(assigned) == 282_230  # assigned in Unicode 14.0 (surrogates are not scalars)
    shuffled = assigned[:]
    random.Random(14).shuffle(shuffled)
    for points, size in ((assigned, 64), (shuffled, 16), (shuffled, 3)):
        inputs = _runs(points, size)
        expected = _python(inputs)
        assert None not in expected
        _assert_same(inputs, _browser(page, "normalize", inputs), expected)


def test_every_assigned_code_point_in_one_streamed_text(page: Any) -> None:
    """One text of all of them (1.1 MB) streamed in random pieces of up to 5 bytes and of up to
    64 KiB: holding back across pieces gives what one piece gives."""
    assigned = list(_assigned())
    shuffled = assigned[:]
    random.Random(2022).shuffle(shuffled)
    inputs = ["".join(map(chr, assigned)).encode(), "".join(map(chr, shuffled)).encode()]
    expected = _python(inputs)
    _assert_same(inputs, _browser(page, "stream", inputs, 1, 5), expected)
    _assert_same(inputs, _browser(page, "stream", inputs, 2, 65_536), expected)


# -------------------------------------------------------------------------------------------
# Fuzzed strings


def _pools() -> list[list[int]]:
    assigned = list(_assigned())
    marks = [cp for cp in assigned if unicodedata.combining(chr(cp))]
    hangul = [*range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A7, 0x11C3)]
    hangul += [0xAC00, 0xAC01, 0xAC1C, 0xB098, 0xD7A3, 0x3131, 0x3200, 0x320E, 0xFFA0]
    white = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B)]
    white += [0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x1C, 0x1D, 0x1E, 0x1F, 0x200B, 0xFEFF]
    compat = [cp for cp in assigned if unicodedata.decomposition(chr(cp))]
    special = [0x130, 0x131, 0x3A3, 0x3C2, 0x345, 0xDF, 0x1E9E, 0xFB03, 0xFDFA, 0x390, 0x13F8]
    special += [0x212A, 0x212B, 0x2126, 0xB5, 0x17F, 0x1C4, 0x1C5, 0x2460, 0xFF21, 0x216B, 0x3392]
    special += [0x0CCB, 0x0CC6, 0x0CC2, 0x0CD5, 0x0B47, 0x0B3E, 0x0B57, 0x1025, 0x102E, 0x0344]
    unassigned = [0x378, 0x9FFF + 0x40000, 0xFFFE, 0x10FFFF, 0x1FAF7, 0xE0080]
    ascii_ = list(range(0x20, 0x7F))
    return [assigned, marks, hangul, white, compat, special, ascii_, ascii_, unassigned]


def _fuzz(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pools = _pools()
    weights = [4, 4, 3, 3, 3, 3, 4, 4, 0.05]
    out = []
    for _ in range(count):
        length = rng.choice([0, 1, 2, 3, rng.randrange(1, 40), rng.randrange(1, 300)])
        text = "".join(chr(rng.choice(rng.choices(pools, weights)[0])) for _ in range(length))
        data = text.encode()
        roll = rng.random()
        if roll < 0.15:
            data = b"\xef\xbb\xbf" * rng.choice([1, 1, 2]) + data
        elif roll < 0.2 and data:
            spot = rng.randrange(len(data))
            data = data[:spot] + bytes([rng.randrange(256)]) + data[spot + 1 :]
        elif roll < 0.23:
            data = data[: rng.randrange(len(data) + 1)]  # may cut a code point
        elif roll < 0.25:
            bad = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe0\x9f\xbf"]
            spot = rng.randrange(len(data) + 1)
            data = data[:spot] + rng.choice(bad) + data[spot:]
        out.append(data)
    return out


def test_fuzzed_strings_one_shot_and_streamed(page: Any) -> None:
    inputs = _fuzz(30_000, seed=1)
    expected = _python(inputs)
    undefined = sum(text is None for text in expected)
    assert 1_000 < undefined < 10_000  # invalid UTF-8 and unassigned cases are well represented
    _assert_same(inputs, _browser(page, "normalize", inputs), expected)
    _assert_same(inputs, _browser(page, "stream", inputs, 3, 4), expected)
    _assert_same(inputs, _browser(page, "stream", inputs, 4, 64), expected)


def test_fuzzed_strings_digests(page: Any) -> None:
    """The digest the page shows: textDigestFile over a Blob, the normalized text hashed by
    WebCrypto or hash-wasm. Text with NUL has none, as in provenance.fingerprints (not text)."""
    inputs = [b"", b"\xef\xbb\xbf", b"a\x00b", b"  \t\r\n  "] + _fuzz(3_000, seed=2)
    expected = [None if b"\0" in data else norm_text_sha256(data) for data in inputs]
    _assert_same(inputs, _browser(page, "textDigests", inputs, {}), expected)
    # Streamed (above 16 bytes), the normalized text hashed by hash-wasm from its 17th byte on.
    spill = {"textWebCryptoMax": 16}
    _assert_same(inputs, _browser(page, "textDigests", inputs, spill), expected)
    # Chunks of 5 bytes: each is a separate read of the Blob, so fewer inputs.
    small = {"chunkSize": 5, "textWebCryptoMax": 16}
    _assert_same(inputs[:400], _browser(page, "textDigests", inputs[:400], small), expected[:400])


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=64),
        st.text(
            st.characters(
                codec="utf-8",
                categories=("Lu", "Ll", "Lt", "Lo", "Mn", "Mc", "Zs", "Zl", "Zp", "Cc", "So", "Cn"),
            ),
            max_size=40,
        ).map(str.encode),
        st.lists(
            st.sampled_from(
                [
                    "\ufeff",
                    "e",
                    "\u0301",
                    "\u0323",
                    "\u1100",
                    "\u1161",
                    "\u11a8",
                    "\uac00",
                    " ",
                    "\t",
                    "\u3000",
                    "ß",
                    "İ",
                    "Σ",
                    "\u0345",
                    "ﬃ",
                    "\u2028",
                    "A",
                ]
            ),
            max_size=30,
        ).map(lambda parts: "".join(parts).encode()),
    )
)
def test_hypothesis_examples(page: Any, data: bytes) -> None:
    expected = _python([data])
    assert _browser(page, "normalize", [data]) == expected
    assert _browser(page, "stream", [data], 5, 3) == expected


# -------------------------------------------------------------------------------------------
# SHA-256 of files


def test_sha256_webcrypto_and_hash_wasm_equal_hashlib(page: Any) -> None:
    rng = random.Random(3)
    sizes = [0, 1, 55, 56, 63, 64, 65, 1000, (1 << 20) + 3, 3 * (1 << 20) - 1]
    inputs = [rng.randbytes(size) for size in sizes]
    expected = [hashlib.sha256(data).hexdigest() for data in inputs]
    webcrypto = _browser(page, "sha256s", inputs, {})
    assert webcrypto == [[digest, "webcrypto"] for digest in expected]
    for chunk, count in ((7, 8), (65_536, len(inputs)), (1 << 20, len(inputs))):
        options = {"webCryptoMax": -1, "chunkSize": chunk}
        streamed = _browser(page, "sha256s", inputs[:count], options)
        assert streamed == [[digest, "hash-wasm"] for digest in expected[:count]]


def test_without_webcrypto_everything_goes_through_hash_wasm(page: Any) -> None:
    """WebCrypto exists only in secure contexts; on plain HTTP the page uses hash-wasm alone."""
    inputs = [b"", b"Stra\xc3\x9fe  ", random.Random(4).randbytes(100_000)]
    page.evaluate(
        "() => Object.defineProperty(crypto, 'subtle', { value: undefined, configurable: true })"
    )
    try:
        digests = _browser(page, "sha256s", inputs, {})
        texts = _browser(page, "textDigests", inputs[:2], {})
    finally:
        page.evaluate("() => delete crypto.subtle")
    assert digests == [[hashlib.sha256(data).hexdigest(), "hash-wasm"] for data in inputs]
    assert texts == [norm_text_sha256(data) for data in inputs[:2]]
    assert page.evaluate("() => typeof crypto.subtle.digest") == "function"


# -------------------------------------------------------------------------------------------
# The in-memory paths (limits.js, digest.js): their thresholds, and falling back to streaming

MIB = 1 << 20


def test_memory_limits_follow_the_device_memory(page: Any) -> None:
    """1/8 of the device's memory for the file, 1/16 for its normalized text, never below the
    256 MiB the page always allowed (also when the browser does not say)."""
    limits = {
        str(memory): page.evaluate("(m) => window.__page.memoryLimits(m)", memory)
        for memory in (None, 0, 0.25, 2, 4, 8)
    }
    floor = {"webCryptoMax": 256 * MIB, "textWebCryptoMax": 256 * MIB}
    assert limits["None"] == limits["0"] == limits["0.25"] == limits["2"] == floor
    assert limits["4"] == {"webCryptoMax": 512 * MIB, "textWebCryptoMax": 256 * MIB}
    assert limits["8"] == {"webCryptoMax": 1024 * MIB, "textWebCryptoMax": 512 * MIB}
    # What the page uses here: Chromium reports 8 (the most it reports) on this 8+ GiB machine.
    assert page.evaluate("() => navigator.deviceMemory") >= 2


def _texts_across_chunks(chunk: int) -> list[bytes]:
    """Texts with multi-byte characters, combining sequences, White_Space runs and a BOM cut by
    the chunk boundaries, and text that NFKC lengthens (more output than input)."""
    rng = random.Random(5)
    parts = ["é", "e\u0301", "\uac00", "\u1100\u1161\u11a8", "𝔘", "ß", "İ", "  \t\n ", "A", "z"]
    out = [b"", b"\xef\xbb\xbf" + b"x" * (chunk - 1) + "é".encode()]
    for _ in range(60):
        text = "".join(rng.choice(parts) for _ in range(rng.randrange(1, 4 * chunk)))
        out.append(text.encode())
    # U+FDFA is 3 bytes, its NFKC 33: the normalized text overtakes the bytes it is written over.
    out.append(("ab " + "\ufdfa" * 50 + " cd").encode())
    out.append(b"a" * (chunk + 2) + "\ufdfa".encode() * 40)
    out += [b"text\x00nul", b"\xff" + b"a" * (3 * chunk), b"a" * (2 * chunk) + b"\x00", b"\x80"]
    return out


@pytest.mark.parametrize("chunk", [5, 7, 64])
def test_both_digests_from_one_read_equal_python(page: Any, chunk: int) -> None:
    inputs = _texts_across_chunks(chunk) + _fuzz(300, seed=chunk)
    expected = [
        [
            hashlib.sha256(data).hexdigest(),
            "webcrypto",
            None if b"\0" in data else norm_text_sha256(data),
        ]
        for data in inputs
    ]
    options = {"chunkSize": chunk, "webCryptoMax": 1 << 20, "textWebCryptoMax": 1 << 20}
    _assert_same(inputs, _browser(page, "both", inputs, options), expected)
    texts = _browser(page, "textDigests", inputs, options)
    _assert_same(inputs, texts, [text for _, _, text in expected])


def test_both_digests_thresholds(page: Any) -> None:
    """A file of at most both limits takes the one-read path, one byte more does not (null: the
    page then runs the two jobs); each job's own limit is checked the same way."""
    limit = 1000
    inputs = [(b"Ab \t\ncd  " * 200)[:size] for size in (limit - 1, limit, limit + 1)]
    both = _browser(
        page, "both", inputs, {"webCryptoMax": limit, "textWebCryptoMax": limit, "chunkSize": 64}
    )
    assert [result is None for result in both] == [False, False, True]
    for data, result in zip(inputs[:2], both[:2], strict=True):
        assert result == [hashlib.sha256(data).hexdigest(), "webcrypto", norm_text_sha256(data)]
    for lower in (
        {"webCryptoMax": limit - 1},
        {"textWebCryptoMax": limit - 1},
    ):  # the lower decides
        options = {"webCryptoMax": limit, "textWebCryptoMax": limit, **lower}
        assert _browser(page, "both", inputs[1:2], options) == [None]
    sha = _browser(page, "sha256s", inputs, {"webCryptoMax": limit})
    assert [method for _, method in sha] == ["webcrypto", "webcrypto", "hash-wasm"]
    assert [digest for digest, _ in sha] == [hashlib.sha256(data).hexdigest() for data in inputs]
    for text_limit in (limit - 1, limit, limit + 1):  # streamed or in memory: the same digests
        options = {"textWebCryptoMax": text_limit, "chunkSize": 64}
        texts = _browser(page, "textDigests", inputs, options)
        assert texts == [norm_text_sha256(data) for data in inputs]


@pytest.mark.parametrize("refused", ["reads", "webcrypto"])
def test_memory_refused_falls_back_to_streaming(page: Any, refused: str) -> None:
    """When a whole-file read or WebCrypto's copy fails for want of memory, the digests are
    streamed through hash-wasm instead: the same digests, never an error."""
    inputs = [b"", b"Stra\xc3\x9fe  ", random.Random(8).randbytes(5000)] + _texts_across_chunks(64)
    inputs = [data * (1 + 300 // max(len(data), 1)) for data in inputs]  # most above 64 bytes
    expected_sha = [hashlib.sha256(data).hexdigest() for data in inputs]
    expected_text = [None if b"\0" in data else norm_text_sha256(data) for data in inputs]
    options = {"chunkSize": 64, "webCryptoMax": 1 << 20, "textWebCryptoMax": 1 << 20}
    largest, web_crypto = (64, False) if refused == "reads" else (1 << 30, True)
    page.evaluate(
        "([largest, w]) => { window.__restore = window.__page.refuseMemory(largest, w); }",
        [largest, web_crypto],
    )
    try:
        sha = _browser(page, "sha256s", inputs, options)
        texts = _browser(page, "textDigests", inputs, options)
        both = _browser(page, "both", inputs, options)
    finally:
        page.evaluate("() => window.__restore()")
    methods = ["webcrypto" if len(data) <= largest else "hash-wasm" for data in inputs]
    if web_crypto:
        methods = ["hash-wasm"] * len(inputs)
    assert sha == [list(pair) for pair in zip(expected_sha, methods, strict=True)]
    assert texts == expected_text
    full = [[d, m, t] for d, m, t in zip(expected_sha, methods, expected_text, strict=True)]
    if web_crypto:  # the whole file was had, WebCrypto failed: the raw digest streamed again
        assert both == full
    else:  # null when the whole text cannot be had (the page then runs the two jobs)
        assert all(got in (None, want) for got, want in zip(both, full, strict=True)), both
        assert None in both and any(got is not None for got in both)


@pytest.mark.parametrize("path", ["in memory", "streamed"])
def test_why_there_is_no_text_digest(page: Any, path: str) -> None:
    """NUL is looked for by the normalizer as it goes (no pass of its own), with the answer of a
    search of each piece before it is normalized: a NUL anywhere in the piece where the text
    first fails wins over invalid UTF-8 there, not over a failure in an earlier piece."""
    nul, invalid = "contains NUL", "invalid UTF-8"
    words = b"Hello  world, " * 10
    cases = [  # text, why with pieces of 4 bytes, why with pieces of 64
        (b"a\xff\x00b", nul, nul),  # invalid then NUL, one piece
        (b"\xff" + b"a" * 7 + b"\x00", invalid, nul),  # the NUL in a later piece of 4
        (b"a\x00", nul, nul),  # shorter than 3 bytes: held back by the normalizer
        (b"\xff\x00", nul, nul),
        (b"abcd\x00", nul, nul),  # in a last piece of 1 byte
        (b"ab  Cd\t\x00xyzw", nul, nul),
        (words + b"ab\x00d" + words, nul, nul),  # in a 4-byte word of a long ASCII run
        (words + "é\x00".encode() + words, nul, nul),
        (b"abc\xc3", invalid, invalid),  # a code point cut by the end
        ("ab\u0378".encode(), "unassigned code point U+0378", "unassigned code point U+0378"),
        ("Straße  ok".encode() + words, None, None),
    ]
    inputs = [data for data, _, _ in cases]
    limit = 1 << 20 if path == "in memory" else -1
    for chunk, column in ((4, 1), (64, 2)):
        options = {"chunkSize": chunk, "textWebCryptoMax": limit}
        got = _browser(page, "textReasons", inputs, options)
        assert got == [case[column] for case in cases], chunk


# -------------------------------------------------------------------------------------------
# A text normalized in two halves at once (bothDigestsFile's split, textTailFile in the other
# worker): cut after the middle between two printable ASCII bytes, else in one piece


def _cut(data: bytes) -> int | None:
    """Where digest.js cuts `data` at splitAt 0.5 (its window, 1 MiB, exceeds these texts)."""
    mid = len(data) // 2
    printable = range(0x21, 0x7F)
    for cut in range(max(mid, 1), len(data)):
        if data[cut] in printable and data[cut - 1] in printable:
            return cut
    return None


def _around(middle: bytes, tail: bytes = b"") -> list[bytes]:
    """Texts with `middle` where the text is cut (and shifted by up to 7 bytes), `tail` late in
    the second half."""
    left = b"It was a Dark and stormy Night;\tthe rain fell in torrents. " * 3
    right = b"Except at occasional intervals, when it was checked. " * 3
    return [
        left + middle + right[: len(right) // 2] + tail + right[len(right) // 2 :] + b"x" * shift
        for shift in range(8)
    ]


HALVES_MIDDLES = [
    b"ab\r\ncd",  # CRLF at the middle: White_Space is never cut
    b"a \r\n\r\n \t b",
    b" \t\n\x0b\x0c\r  ",  # a run of ASCII White_Space only
    "e\u0301\u0327x\u0301yz\u0308".encode(),  # combining marks on both sides of ASCII
    "ab\u0301cd\u0323\u0307".encode(),
    "\u00e9\u4e2d\U0001d518\u00df".encode(),  # 2-, 3- and 4-byte UTF-8 at the cut
    "x\u1100\u1161\u11a8y\uac00\u11a8z".encode(),  # Hangul
    "A\ufeffB\ufeffC".encode(),  # U+FEFF past the start: kept
    "ab\u3000cd \u00a0 \u2028ef".encode(),  # White_Space beyond ASCII
    "\u0130X\u00dfY\ufb01Z\u1e9e".encode(),  # case folding that lengthens
    "\u2460\u2461\u00bd".encode(),  # compatibility forms
    "\u4e2d\u6587".encode() * 60,  # no cut in the middle: on to the first after it
]
HALVES_TAILS = [
    b"",
    b"\xff",  # invalid UTF-8 in the second half
    b"\xed\xa0\x80",  # a surrogate
    b"\x00",  # NUL late in the file
    "\u0378".encode(),  # unassigned in Unicode 14.0
    "\ufdfa".encode() * 40,  # NFKC lengthens it past the bytes it is written over
]


def _halves_inputs() -> list[bytes]:
    inputs = [data for m in HALVES_MIDDLES for t in HALVES_TAILS for data in _around(m, t)]
    inputs += [b"\xff" + data for data in _around(b"ab", b"\x00")]  # invalid, then NUL
    inputs += [b"\x00" + data for data in _around(b"ab", b"\xff")]  # NUL, then invalid
    inputs += ["\ufdfa".encode() * 40 + data for data in _around(b"ab")]  # first half
    inputs += [("\u4e2d\u6587" * 200).encode(), b"ab", b"a", b"", b"abc\xc3", "\ufeffab".encode()]
    inputs += [b"   ab   ", b"\n\nab\n\n", b"Ab" * 3 + b" " * 4 + b"cD" * 3]
    # Not text in the first half, NUL past the cut: which is reported depends on the pieces.
    inputs += [b"a\xffbcdefgh\x00", b"\xffabcdefgh\x00zz", b"abcd\xffefghijk\x00"]
    return inputs + _texts_across_chunks(64) + _fuzz(2_000, seed=11)


@pytest.mark.parametrize("chunk", [4, 64])
def test_text_in_two_halves_equals_python(page: Any, chunk: int) -> None:
    """Both digests with the text normalized in two halves equal Python's, across every kind of
    boundary near the cut; a text that either half shows is not text, or that does not fit in
    place, is done again in one piece: the same digest and the same reason as the one-piece path."""
    inputs = _halves_inputs()
    options = {"chunkSize": chunk, "splitMin": 2, "splitAt": 0.5}
    got = _browser(page, "halves", inputs, options)
    reasons = _browser(page, "textReasons", inputs, {"chunkSize": chunk})
    expected = [
        [
            hashlib.sha256(data).hexdigest(),
            None if b"\0" in data else norm_text_sha256(data),
            reason,
        ]
        for data, reason in zip(inputs, reasons, strict=True)
    ]
    _assert_same(inputs, [result[:3] for result in got], expected)
    halves = [result[3] for result in got]
    for data, (_, text, _), split in zip(inputs, expected, halves, strict=True):
        if split:  # only where a cut exists, and only for text
            assert _cut(data) is not None and text is not None, data
    # Prose, and each middle without a bad tail, is cut; each bad tail falls back to one piece.
    for middle in HALVES_MIDDLES:
        for tail in HALVES_TAILS:
            for data in _around(middle, tail):
                split = halves[inputs.index(data)]
                assert split is (tail == b""), (middle, tail)
    unsplit = [("\u4e2d\u6587" * 200).encode(), b"a"]  # no cut; too short
    unsplit += ["\ufdfa".encode() * 40 + data for data in _around(b"ab")]  # too long in place
    assert not any(halves[inputs.index(data)] for data in unsplit)
    fuzzed = halves[-2_000:]  # fuzzed strings with a cut: many, but not all, are split
    assert 100 < sum(fuzzed) < sum(_cut(data) is not None for data in inputs[-2_000:])


@pytest.mark.parametrize(
    ("mode", "spare"),
    [("ok", None), ("ok", "ok"), ("ok", "short"), ("ok", "fails"), ("fails", "ok"), ("none", None)],
)
def test_raw_bytes_hashed_elsewhere(page: Any, mode: str, spare: str | None) -> None:
    """With `hashElsewhere` a copy of the file's bytes (made in the spare buffer when it has
    their length, else in new memory) is handed over and its digest used; when that fails or
    gives none, the file is read again and hashed here (hash-wasm). A file whose first bytes are
    not text is hashed here at once, and no spare buffer is asked for it (one is for every other
    file). The digests equal Python's in every case."""
    binary_late = b"The Red-Headed League. " * 3000 + b"\xff"  # not text after the first 64 KiB
    inputs = [b"The Red-Headed League. " * 500, b"", b"x", b"\xff\xfe binary", b"nul\0"]
    inputs += [binary_late, b"\xff" + b"text" * 20_000]
    got = _browser(page, "elsewhere", inputs, {"chunkSize": 64}, mode, spare)
    expected = []
    for data in inputs:
        text = None if b"\0" in data or b"\xff" in data else norm_text_sha256(data)
        handed = data[:1] != b"\xff" and b"\0" not in data
        method = "webcrypto" if mode == "ok" or not handed else "hash-wasm"
        spares = int(spare is not None and handed)
        digest = hashlib.sha256(data).hexdigest()
        expected.append([digest, method, text, len(data) * handed, spares])
    assert got == expected


def test_text_in_two_halves_thresholds_and_a_failed_tail(page: Any) -> None:
    """A text shorter than splitMin is not split, one of splitMin bytes is; when the other half
    fails (the other worker could not read the file), the text is done again in one piece."""
    text = b"The Adventure of the Beryl Coronet. " * 30
    for split_min, split in ((len(text) + 1, False), (len(text), True)):
        got = _browser(page, "halves", [text], {"splitMin": split_min, "chunkSize": 64})
        assert got == [[hashlib.sha256(text).hexdigest(), norm_text_sha256(text), None, split]]
    got = _browser(page, "halves", [text], {"splitMin": 2, "chunkSize": 64}, "fails")
    assert got == [[hashlib.sha256(text).hexdigest(), norm_text_sha256(text), None, False]]


def test_the_other_part_is_asked_for_before_this_one_is_normalized(page: Any) -> None:
    """The second part is asked for when the file is read, not once the first is normalized (a
    worker's messages go out only when its task ends): the split comes before any progress."""
    text = b"Whereas recognition of the inherent dignity; " * (9 * MIB // 46)
    got = _browser(page, "splitOrder", [text])
    assert got == [norm_text_sha256(text), True, "split", True]


# -------------------------------------------------------------------------------------------
# The WebAssembly fast path for runs of ASCII (normtext.js, asciifold.js)

ASCII_WS = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\r\n", "  ", " \t\n\x0b\x0c\r "]
OTHER_WS = ["\u0085", "\u00a0", "\u1680", "\u2000", "\u200a", "\u2028", "\u2029", "\u202f"]
OTHER_WS += ["\u205f", "\u3000"]
NON_ASCII = ["é", "É", "ß", "ﬁ", "e\u0301", "\u0301", "Ω", "한", "\U0001f600", "\ufeff", "Ⅻ"]
WORDS = ["Holmes", "WATSON", "baker", "Street", "AZ", "az", "@[`{", "~", "0123456789", "x"]


def _long_ascii(rng: random.Random, length: int) -> str:
    """ASCII prose of about `length` characters: words (upper case too) and White_Space runs."""
    parts: list[str] = []
    size = 0
    while size < length:
        part = rng.choice(WORDS) if rng.random() < 0.6 else rng.choice(ASCII_WS) * rng.randint(1, 3)
        parts.append(part)
        size += len(part)
    return "".join(parts)[:length]


def _fast_path_inputs() -> list[bytes]:
    """Texts whose long runs of ASCII (at least 320 bytes: the fast path takes a run after 64,
    in blocks of 256 and more) hit every branch: upper case, every ASCII White_Space and runs of
    them across the 16-byte blocks, leading and trailing White_Space, other White_Space,
    non-ASCII, a NUL, invalid UTF-8 or an unassigned code point right after ASCII at each
    offset of a block, and runs longer than the largest block (1 MiB)."""
    rng = random.Random(16)
    texts: list[str] = []
    for offset in range(48):  # something right after a run, at every offset of a block
        run = "A" * (320 + offset)
        texts += [run + rng.choice(NON_ASCII) + run, run + rng.choice(OTHER_WS) + run.lower()]
        texts += [run + " " * (1 + offset % 20) + run, run + "\x00" + run]
    for width in range(1, 40):  # White_Space runs of every width, across block boundaries
        for ws in ("\t", "\r\n", " \x0b", "\x0c"):
            texts.append("Sherlock" * 45 + (ws * width)[:width] + "Mycroft" * 50)
    for _ in range(300):  # long runs of prose between other characters
        pieces = [_long_ascii(rng, rng.randrange(0, 3000))]
        for _ in range(rng.randrange(0, 4)):
            other = rng.choice([*NON_ASCII, *OTHER_WS, "\x00"])
            pieces += [other, _long_ascii(rng, rng.randrange(0, 3000))]
        text = "".join(pieces)
        if rng.random() < 0.3:
            text = rng.choice(ASCII_WS) * rng.randint(1, 40) + text  # leading White_Space
        if rng.random() < 0.3:
            text += rng.choice([*ASCII_WS, *OTHER_WS]) * rng.randint(1, 40)  # trailing
        texts.append(text)
    big = _long_ascii(rng, 2_300_000)  # past the largest block, once and twice
    texts += [big, big[:1_200_000] + "Ω" + big[1_200_000:]]
    inputs = [text.encode() for text in texts]
    run = b"q" * 400
    for offset in range(16):  # no digest: invalid UTF-8, an unassigned code point after ASCII
        inputs += [run[: 330 + offset] + b"\xff" + run, run[: 330 + offset] + "\U000e0080".encode()]
    return inputs


def test_ascii_fast_path_equals_the_plain_path_and_python(page: Any) -> None:
    """The WebAssembly fast path for runs of ASCII is there in Chromium, and with it the page's
    normalizer gives the bytes it gives without it (and Python's), whole and streamed in random
    pieces, on texts that hit each of its branches."""
    inputs = _fast_path_inputs()
    data, lengths = _pack(inputs)
    answer = json.loads(
        page.evaluate(
            "([data, lengths]) => window.__page.fastAndPlain(data, lengths, 9, 5000)",
            [data, lengths],
        )
    )
    assert answer["fastPath"] is True
    expected = [[norm_text_sha256(data)] * 3 for data in inputs]
    _assert_same(inputs, answer["out"], expected)
    assert sum(e[0] is None for e in expected) == 32  # the invalid and the unassigned only


def test_in_place_parts_keep_digests_and_reasons(page: Any) -> None:
    """A text normalized in place is fed to the normalizer in parts of 256 KiB within each 8 MiB
    piece: NFKC lengthening the text near and across the parts (the text then leaves its buffer),
    and a NUL parts after an invalid byte (still "contains NUL": the piece is what is searched),
    give what the one-piece normalizer and Python give."""
    part = 256 * 1024
    prose = b"The Speckled Band. " * (3 * part // 19)
    inputs = [
        prose[: part - 3] + "\ufdfa".encode() * 5 + prose,  # lengthens across a part boundary
        "\ufdfa".encode() * (part // 2),  # lengthens everywhere: leaves its buffer at once
        prose + "\ufdfa".encode() * 3000 + prose,
        prose[: 2 * part - 1] + "ﬁ Ω\u3000".encode() + prose,
    ]
    got = _browser(page, "both", inputs, {})
    expected = [[hashlib.sha256(d).hexdigest(), "webcrypto", norm_text_sha256(d)] for d in inputs]
    assert got == expected
    assert all(e[2] is not None for e in expected)
    not_text = [b"a" * 100 + b"\xff" + b"b" * (part + 5) + b"\0" + b"c" * 10]
    assert _browser(page, "textReasons", not_text, {}) == ["contains NUL"]
