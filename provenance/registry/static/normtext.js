// norm-text-v1 (docs/design.md §2.9), the same bytes as provenance/normtext.py:
//   1. strict UTF-8 (invalid: no digest)          4. NFKC, full case folding (Unicode 14.0
//   2. drop one leading U+FEFF                        C+F, as Python 3.11's str.casefold), NFKC
//   3. a code point unassigned in Unicode 14.0:   5. every run of White_Space -> one U+0020,
//      no digest                                      stripped at both ends
// and the caller hashes the result with SHA-256.
//
// Nothing here uses the browser's String.prototype.normalize or its case mapping: both follow
// the browser's Unicode version, not 14.0. Normalization and folding use the tables in
// unicode14.js, generated from Python's unicodedata (provenance/_pagetables.py).
//
// Streaming: the text is split before "simple" code points (ASCII, and those listed in SIMPLE:
// starters that are their own NFKC and case folding and never compose with what precedes them).
// Normalizing each piece and concatenating gives the normalization of the whole (the tests check
// the property on the tables), so bounded pieces of any file can be normalized one at a time.
// Runs of simple code points only need A-Z lowered; everything else goes through the general
// path (decode, NFKC, fold, NFKC, encode).

import * as asciifold from "./asciifold.js";
import { CASEFOLD, CCC, COMPOSE, NFKD, SIMPLE, UNASSIGNED, UNICODE_VERSION } from "./unicode14.js";

export { UNICODE_VERSION };
export const NAME = "norm-text-v1";

const F_UNASSIGNED = 1;
const F_SIMPLE = 2;
const F_DECOMPOSES = 4;
const F_FOLDS = 8;
const F_SECOND = 16; // the second code point of a primary composite
const F_WHITE_SPACE = 32;

const FLAGS = new Uint8Array(0x110000);
const CLASS = new Uint8Array(0x110000); // Canonical_Combining_Class
const DECOMPOSITION = new Map(); // code point -> its full NFKD (array of code points)
const FOLDING = new Map(); // code point -> its full case folding (array of code points)
const COMPOSITION = new Map(); // first * 0x110000 + second -> primary composite

const items = (table) => table.split(/\s+/).filter((item) => item !== "");
const hex = (text) => parseInt(text, 16);
const span = (text) => {
  const [first, last] = text.split("-");
  return [hex(first), hex(last ?? first)];
};

for (const item of items(UNASSIGNED)) {
  const [first, last] = span(item);
  FLAGS.fill(F_UNASSIGNED, first, last + 1);
}
for (const item of items(SIMPLE)) {
  const [first, last] = span(item);
  for (let cp = first; cp <= last; cp++) FLAGS[cp] |= F_SIMPLE;
}
for (const item of items(NFKD)) {
  const [cp, to] = item.split(":");
  DECOMPOSITION.set(hex(cp), to.split(".").map(hex));
  FLAGS[hex(cp)] |= F_DECOMPOSES;
}
for (const item of items(CCC)) {
  const [range, value] = item.split(":");
  const [first, last] = span(range);
  CLASS.fill(hex(value), first, last + 1);
}
for (const item of items(COMPOSE)) {
  const [pair, composite] = item.split(":");
  const [first, second] = pair.split(".").map(hex);
  COMPOSITION.set(first * 0x110000 + second, hex(composite));
  FLAGS[second] |= F_SECOND;
}
for (const item of items(CASEFOLD)) {
  const [cp, to] = item.split(":");
  FOLDING.set(hex(cp), to.split(".").map(hex));
  FLAGS[hex(cp)] |= F_FOLDS;
}
// The 25 code points of the White_Space property (PropList.txt, unchanged since Unicode 6.3).
for (const cp of [
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]) {
  FLAGS[cp] |= F_WHITE_SPACE;
}

// Hangul syllables compose and decompose algorithmically (Unicode 14.0 section 3.12).
const S_BASE = 0xac00,
  L_BASE = 0x1100,
  V_BASE = 0x1161,
  T_BASE = 0x11a7;
const L_COUNT = 19,
  V_COUNT = 21,
  T_COUNT = 28,
  N_COUNT = V_COUNT * T_COUNT,
  S_COUNT = L_COUNT * N_COUNT;
for (let cp = V_BASE; cp < V_BASE + V_COUNT; cp++) FLAGS[cp] |= F_SECOND;
for (let cp = T_BASE + 1; cp < T_BASE + T_COUNT; cp++) FLAGS[cp] |= F_SECOND;

function composePair(first, second) {
  if (
    first >= L_BASE &&
    first < L_BASE + L_COUNT &&
    second >= V_BASE &&
    second < V_BASE + V_COUNT
  ) {
    return S_BASE + ((first - L_BASE) * V_COUNT + (second - V_BASE)) * T_COUNT;
  }
  const index = first - S_BASE;
  if (
    index >= 0 &&
    index < S_COUNT &&
    index % T_COUNT === 0 &&
    second > T_BASE &&
    second < T_BASE + T_COUNT
  ) {
    return first + (second - T_BASE);
  }
  const composite = COMPOSITION.get(first * 0x110000 + second);
  return composite === undefined ? -1 : composite;
}

/** NFKC of an array of code points (UAX #15: decompose, reorder, compose). */
function nfkc(source) {
  const d = [];
  for (const cp of source) {
    const index = cp - S_BASE;
    if (index >= 0 && index < S_COUNT) {
      d.push(
        L_BASE + Math.floor(index / N_COUNT),
        V_BASE + Math.floor((index % N_COUNT) / T_COUNT),
      );
      if (index % T_COUNT !== 0) d.push(T_BASE + (index % T_COUNT));
    } else if (FLAGS[cp] & F_DECOMPOSES) {
      for (const part of DECOMPOSITION.get(cp)) d.push(part);
    } else {
      d.push(cp);
    }
  }
  // Canonical ordering: a stable sort by combining class of every run of non-starters.
  for (let k = 1; k < d.length; k++) {
    const ch = d[k];
    const cc = CLASS[ch];
    if (cc === 0) continue;
    let m = k;
    while (m > 0 && CLASS[d[m - 1]] > cc) {
      d[m] = d[m - 1];
      m--;
    }
    d[m] = ch;
  }
  if (d.length < 2) return d;
  // Canonical composition.
  let starterPos = 0;
  let starter = d[0];
  let lastClass = CLASS[starter] === 0 ? 0 : 256; // text starting with a non-starter
  let w = 1;
  for (let k = 1; k < d.length; k++) {
    const ch = d[k];
    const cc = CLASS[ch];
    if ((lastClass < cc || lastClass === 0) && FLAGS[ch] & F_SECOND) {
      const composite = composePair(starter, ch);
      if (composite >= 0) {
        d[starterPos] = composite;
        starter = composite;
        continue;
      }
    }
    if (cc === 0) {
      starterPos = w;
      starter = ch;
    }
    lastClass = cc;
    d[w++] = ch;
  }
  d.length = w;
  return d;
}

function casefold(source) {
  const folded = [];
  for (const cp of source) {
    if (FLAGS[cp] & F_FOLDS) {
      for (const part of FOLDING.get(cp)) folded.push(part);
    } else {
      folded.push(cp);
    }
  }
  return folded;
}

// ASCII bytes for step 5 and folding: White_Space (U+0009..U+000D, U+0020) and what each
// becomes (White_Space a space, A-Z lower case, the rest itself).
const ASCII_WS = new Uint8Array(128);
const ASCII_OUT = new Uint8Array(128);
for (let b = 0; b < 128; b++) {
  ASCII_WS[b] = b === 0x20 || (b >= 0x09 && b <= 0x0d) ? 1 : 0;
  ASCII_OUT[b] = ASCII_WS[b] ? 0x20 : b >= 0x41 && b <= 0x5a ? b + 32 : b;
}

const INVALID = -1; // not UTF-8
const INCOMPLETE = -2; // a code point cut by the end of the input
let decoded = 0; // the code point decodeAt found (a module variable: no object per call)

/**
 * Decode one non-ASCII code point of strict UTF-8 at bytes[i] (Unicode 14.0 Table 3-7, which
 * Python's strict decoder follows: no overlong forms, surrogates or values above U+10FFFF).
 * Returns its length and sets `decoded`, or INVALID, or INCOMPLETE.
 */
function decodeAt(bytes, i, n) {
  const b0 = bytes[i];
  let length,
    cp,
    low = 0x80,
    high = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    cp = b0 & 0x0f;
    if (b0 === 0xe0) low = 0xa0;
    else if (b0 === 0xed) high = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    cp = b0 & 0x07;
    if (b0 === 0xf0) low = 0x90;
    else if (b0 === 0xf4) high = 0x8f;
  } else {
    return INVALID;
  }
  for (let k = 1; k < length; k++) {
    if (i + k >= n) return INCOMPLETE;
    const b = bytes[i + k];
    if (b < low || b > high) return INVALID;
    low = 0x80;
    high = 0xbf;
    cp = (cp << 6) | (b & 0x3f);
  }
  decoded = cp;
  return length;
}

const EMPTY = new Uint8Array(0);

// The fast path for long runs of ASCII: asciifold.js's WebAssembly `fold` (SIMD, 16 bytes at a
// time; provenance/_pagewasm.py says what it does), the same step as asciiRun's own loops, which
// take what it leaves (a block with a byte above 0x7F or a NUL, the last bytes). Null where
// WebAssembly (or its SIMD) is not available: the plain path does everything then.
const KERNEL = (() => {
  try {
    const raw = atob(asciifold.MODULE.replace(/\s/g, ""));
    const code = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    // Compiled synchronously: the module is small (browsers allow that on the page's thread).
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(code), {});
    return { ...exports, bytes: new Uint8Array(exports.memory.buffer) };
  } catch {
    return null;
  }
})();
// Whether the WebAssembly fast path is there (the tests hold it equal to the plain path).
export const FAST_PATH = KERNEL !== null;
// A run is handed to `fold` in blocks of FOLD_FIRST bytes, doubled while it consumes them all
// (up to asciifold's MAX_BLOCK): a run that ends soon costs a small copy, not a large one.
const FOLD_AFTER = 64;
const FOLD_FIRST = 256;

let runEnd = 0; // where asciiRun stopped in the input, and in the output (module variables:
let runOut = 0; // no object per call); and whether it met a NUL since process() cleared it
let runNul = 0;

/**
 * Step 5 and folding over the run of ASCII at input[i] (at least one byte), written to out[o]:
 * White_Space after White_Space (`prevWs` says whether what precedes the run ends in it) is
 * dropped, the rest written as U+0020, A-Z lowered. `inView` and `outView` are DataViews of
 * `input` and `out`; `out` has room for the run's output and 3 bytes more. Sets runEnd, runOut.
 *
 * This is where text spends its time, so it goes 4 bytes at a time (SWAR, with each byte known
 * to be below 0x80 no addition carries into the next byte): a word of ASCII without two
 * White_Space in a row (prose: words and single spaces) is folded and written in one store. A
 * word with a White_Space run or a NUL, and the last bytes, go byte by byte. NUL is noted on
 * the way (runNul), for the caller's "text has no NUL" test at no extra pass.
 */
function asciiRun(input, inView, i, n, out, outView, o, prevWs, fast) {
  // The fast path takes a run once it has gone on for FOLD_AFTER bytes: the short runs between
  // non-ASCII characters cost no copy.
  let foldAt = fast ? i + FOLD_AFTER : n;
  while (i + 4 <= n) {
    if (i >= foldAt) {
      foldAt = n; // once per run
      if (n - i >= FOLD_FIRST) {
        // Copied into the module's memory and back: WebAssembly sees only its own memory.
        const { bytes, fold, written } = KERNEL;
        for (let size = FOLD_FIRST; n - i >= 16; size = Math.min(2 * size, asciifold.MAX_BLOCK)) {
          const length = Math.min(size, n - i) & ~15;
          bytes.set(input.subarray(i, i + length), asciifold.IN);
          const done = fold(asciifold.IN, length, asciifold.OUT, prevWs);
          out.set(bytes.subarray(asciifold.OUT, asciifold.OUT + written.value), o);
          o += written.value;
          i += done;
          prevWs = KERNEL.ws.value;
          if (done < length) break; // a byte above 0x7F or a NUL in the next 16: below
        }
        continue;
      }
    }
    const w = inView.getUint32(i, true);
    if ((w & 0x80808080) !== 0) break; // a byte above ASCII: its bytes before it go one by one
    // Per byte, bit 7 of: b >= 0x41 and not b >= 0x5b (A-Z); b in 0x09..0x0d, or b == 0x20.
    const upper = ((w + 0x3f3f3f3f) | 0) & ~((w + 0x25252525) | 0) & 0x80808080;
    const zero20 = ~(((w ^ 0x20202020) + 0x7f7f7f7f) | 0) & 0x80808080;
    const ws = ((((w + 0x77777777) | 0) & ~((w + 0x72727272) | 0)) | zero20) & 0x80808080;
    const nul = ~((w + 0x7f7f7f7f) | 0) & 0x80808080;
    if (((ws & ((ws << 8) | (prevWs << 7))) | nul) === 0) {
      // No White_Space after White_Space: each becomes U+0020, A-Z gains 0x20.
      const spaces = ((ws >>> 7) * 0xff) | 0;
      outView.setUint32(o, (w & ~spaces) | (ws >>> 2) | (upper >>> 2), true);
      o += 4;
      i += 4;
      prevWs = ws >>> 31;
      continue;
    }
    for (const end = i + 4; i < end; i++) {
      const c = input[i];
      if (c === 0) runNul = 1;
      const ws1 = ASCII_WS[c];
      out[o] = ASCII_OUT[c];
      o += 1 - (ws1 & prevWs);
      prevWs = ws1;
    }
  }
  let c;
  while (i < n && (c = input[i]) < 0x80) {
    if (c === 0) runNul = 1;
    const ws1 = ASCII_WS[c];
    out[o] = ASCII_OUT[c];
    o += 1 - (ws1 & prevWs);
    prevWs = ws1;
    i++;
  }
  runEnd = i;
  runOut = o;
}

/**
 * A streaming norm-text-v1 normalizer.
 *
 *   const n = new NormTextV1((bytes) => hasher.update(bytes));
 *   n.update(chunk); ...; n.finish();   // each returns false once no digest is defined
 *
 * `sink` receives the normalized UTF-8 in pieces; a piece is only valid during the call (the
 * buffer is reused), so copy or consume it at once. After a false return, `failure` says why:
 * "invalid UTF-8" or "unassigned code point U+XXXX", and nothing more is sent to `sink`. Pieces
 * already sent are not taken back: when a digest is undefined, discard what `sink` received.
 */
export class NormTextV1 {
  /** `fast`: use the WebAssembly fast path where there is one (false: the plain path only). */
  constructor(sink, { fast = true } = {}) {
    this.sink = sink;
    this.fast = fast && KERNEL !== null;
    this.failure = null;
    this.finished = false;
    this.started = false; // the leading U+FEFF was looked for
    this.carry = EMPTY; // bytes held back until the next piece is known to start after them
    this.joined = EMPTY; // the carry and the next piece, joined
    this.out = new Uint8Array(256); // grows to the largest piece
    this.outView = new DataView(this.out.buffer);
    this.prevWs = 1; // the output so far ends in White_Space, or is empty
    this.heldSpace = false; // a space (for a White_Space run) is owed before more output
    // A NUL was among the bytes looked at so far (valid text here; digest.js refuses it). Bytes
    // held back are looked at by the next call: the first 2 of a text, a cut code point, and a
    // piece for the general path (never NUL: it has no ASCII); after a failure, those after it.
    this.sawNul = false;
  }

  /** Feed the next bytes of the text. Returns false if no digest is defined. */
  update(chunk) {
    if (this.finished) throw new Error("NormTextV1: update after finish");
    if (this.failure !== null) return false;
    return this.process(chunk, false);
  }

  /** End of the text. Returns false if no digest is defined. */
  finish() {
    if (this.finished) throw new Error("NormTextV1: finish called twice");
    this.finished = true;
    if (this.failure !== null) return false;
    return this.process(EMPTY, true);
  }

  fail(reason) {
    if (runNul) this.sawNul = true;
    this.failure = reason;
    this.carry = EMPTY;
    return false;
  }

  ensure(size) {
    if (this.out.length < size) {
      const grown = new Uint8Array(Math.max(size, this.out.length * 2));
      grown.set(this.out);
      this.out = grown;
      this.outView = new DataView(grown.buffer);
    }
  }

  process(chunk, final) {
    runNul = 0;
    let input = chunk;
    if (this.carry.length !== 0) {
      // Joined in a buffer kept from call to call: this VM writes fresh memory slowly.
      const size = this.carry.length + chunk.length;
      if (this.joined.length < size) this.joined = new Uint8Array(size);
      input = this.joined.subarray(0, size);
      input.set(this.carry);
      input.set(chunk, this.carry.length);
    }
    const n = input.length;
    let begin = 0;
    if (!this.started) {
      if (n < 3 && !final) {
        this.carry = input.slice();
        return true;
      }
      if (n >= 3 && input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) begin = 3;
      this.started = true;
    }
    // Output never outgrows the input here (a White_Space run becomes at most one space), but for
    // the space held back by the previous call and the 3 bytes past its end that a 4-byte store
    // may reach; the general path makes room for itself.
    this.ensure(n + 4);
    const inView = new DataView(input.buffer, input.byteOffset, n);
    let out = this.out;
    let o = 0;
    // Step 5 as the output is written: a White_Space run is written as one U+0020 unless it
    // follows another (`prevWs`, also set at the start of the text: no leading space). A space
    // at the end of a call's output is held back until more text follows it.
    let prevWs = this.prevWs;
    if (this.heldSpace) out[o++] = 0x20;
    const startOut = o;
    const startPrevWs = prevWs;
    // The last simple code point: where it starts in the input, and the output state before it.
    // A piece for the general path starts there (or at `begin`, the start of the text or a
    // simple code point held back by the previous call, with the state as it was then).
    let safeIn = -1;
    let safeOut = startOut;
    let safePrevWs = startPrevWs;
    let i = begin;
    while (i < n) {
      let c = input[i];
      if (c < 0x80) {
        // The state before the run's last byte is its safe point: recomputed from the bytes
        // rather than kept per byte.
        const runStart = i;
        const runPrevWs = prevWs;
        asciiRun(input, inView, i, n, out, this.outView, o, prevWs, this.fast);
        i = runEnd;
        const lastWs = ASCII_WS[input[i - 1]];
        const beforeWs = i - 1 > runStart ? ASCII_WS[input[i - 2]] : runPrevWs;
        safeIn = i - 1;
        safeOut = runOut - 1 + (lastWs & beforeWs);
        safePrevWs = beforeWs;
        o = runOut;
        prevWs = lastWs;
        continue;
      }
      const length = decodeAt(input, i, n);
      if (length === INVALID || (length === INCOMPLETE && final)) return this.fail("invalid UTF-8");
      if (length === INCOMPLETE) break; // held back below
      if (FLAGS[decoded] & F_SIMPLE) {
        // Never White_Space: simple code points are not.
        safeIn = i;
        safeOut = o;
        safePrevWs = prevWs;
        for (let k = 0; k < length; k++) out[o++] = input[i + k];
        prevWs = 0;
        i += length;
        continue;
      }
      // The general path, from the last simple code point up to the next one.
      let j = i + length;
      let cut = false; // a code point cut by the end of the input
      while (j < n && input[j] >= 0x80) {
        const more = decodeAt(input, j, n);
        if (more === INVALID || (more === INCOMPLETE && final)) return this.fail("invalid UTF-8");
        if (more === INCOMPLETE) {
          cut = true;
          break;
        }
        if (FLAGS[decoded] & F_SIMPLE) break;
        j += more;
      }
      if (cut || (j === n && !final)) break; // the piece may go on: held back below
      const start = safeIn >= 0 ? safeIn : begin;
      o = safeOut;
      prevWs = safePrevWs;
      const cps = [];
      for (let k = start; k < j;) {
        if (input[k] < 0x80) {
          cps.push(input[k]);
          k++;
        } else {
          k += decodeAt(input, k, n);
          if (FLAGS[decoded] & F_UNASSIGNED) {
            const name = decoded.toString(16).toUpperCase().padStart(4, "0");
            return this.fail(`unassigned code point U+${name}`);
          }
          cps.push(decoded);
        }
      }
      const normalized = nfkc(casefold(nfkc(cps)));
      this.ensure(o + 4 * normalized.length + (n - j) + 4);
      out = this.out;
      for (const cp of normalized) {
        if (FLAGS[cp] & F_WHITE_SPACE) {
          if (!prevWs) out[o++] = 0x20;
          prevWs = 1;
          continue;
        }
        prevWs = 0;
        if (cp < 0x80) {
          out[o++] = cp;
        } else if (cp < 0x800) {
          out[o++] = 0xc0 | (cp >> 6);
          out[o++] = 0x80 | (cp & 0x3f);
        } else if (cp < 0x10000) {
          out[o++] = 0xe0 | (cp >> 12);
          out[o++] = 0x80 | ((cp >> 6) & 0x3f);
          out[o++] = 0x80 | (cp & 0x3f);
        } else {
          out[o++] = 0xf0 | (cp >> 18);
          out[o++] = 0x80 | ((cp >> 12) & 0x3f);
          out[o++] = 0x80 | ((cp >> 6) & 0x3f);
          out[o++] = 0x80 | (cp & 0x3f);
        }
      }
      // input[j] is simple: the loop makes it the safe point. Until then there is none.
      safeIn = -1;
      safeOut = o;
      safePrevWs = prevWs;
      i = j;
    }
    if (final) {
      this.carry = EMPTY;
    } else {
      // Hold back the last simple code point and what follows it: the next bytes may combine
      // with them (a combining mark after a letter). Without a simple code point, everything
      // from `begin` waits (no output was written then).
      const from = safeIn >= 0 ? safeIn : begin;
      this.carry = from < n ? input.slice(from) : EMPTY;
      o = safeIn >= 0 ? safeOut : startOut;
      prevWs = safeIn >= 0 ? safePrevWs : startPrevWs;
    }
    // Every U+0020 in the output stands for White_Space: one at the end is held back (and at
    // the end of the text, dropped).
    // Branch-free: a branch first taken late would throw away V8's optimized code (a deopt on
    // every call), which made the first tens of MiB of a file several times slower.
    const held = o > 0 && out[o - 1] === 0x20 ? 1 : 0;
    o -= held;
    this.heldSpace = held === 1 && !final;
    this.prevWs = prevWs;
    if (runNul) this.sawNul = true;
    if (o !== 0) this.sink(out.subarray(0, o));
    return true;
  }
}

/**
 * norm-text-v1 of a whole byte array: the normalized UTF-8 bytes, or null when no digest is
 * defined (invalid UTF-8 or a code point unassigned in Unicode 14.0). `fast` as NormTextV1's.
 */
export function normalize(bytes, { fast = true } = {}) {
  const pieces = [];
  let size = 0;
  const normalizer = new NormTextV1(
    (piece) => {
      pieces.push(piece.slice());
      size += piece.length;
    },
    { fast },
  );
  if (!normalizer.update(bytes) || !normalizer.finish()) return null;
  const result = new Uint8Array(size);
  let offset = 0;
  for (const piece of pieces) {
    result.set(piece, offset);
    offset += piece.length;
  }
  return result;
}
