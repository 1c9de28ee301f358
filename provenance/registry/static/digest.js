// The digests the page computes for a file, in the browser (run in workers by app.js):
// - sha256: WebCrypto over the whole file read into memory while it is at most `webCryptoMax`
//   bytes (the fastest here, but WebCrypto has no incremental API), streamed through hash-wasm
//   above that (bounded memory), and whenever the memory cannot be had;
// - text: the norm-text-v1 digest when the file is text as `provenance manifest build` means it
//   (strict UTF-8 without NUL): the file is normalized as it is read, and the normalized text
//   hashed with WebCrypto while it stays within `textWebCryptoMax` bytes, else through hash-wasm;
// - both from one read of a file within both limits (bothDigestsFile), which app.js tries first;
//   the second part of its text normalized meanwhile by the other worker (textTailFile).
// app.js sets both limits from the device's memory (limits.js). Nothing here sends anything
// anywhere.

import "./vendor/hash-wasm/sha256.umd.min.js";
import { WEBCRYPTO_MAX } from "./limits.js";
import { NormTextV1 } from "./normtext.js";

export { WEBCRYPTO_MAX };

export const CHUNK_SIZE = 8 * 1024 * 1024;
// A text at least this long is normalized in two parts at once (bothDigestsFile's `split`), cut
// at or after SPLIT_AT of its length. Off by default since normtext.js has its WebAssembly fast
// path for ASCII: the other worker's read of its part then cost more than it saved (256 MiB of
// ASCII text, load 4: 178 and 122 MiB/s split, 223 and 204 in one piece), and that worker
// hashes a copy of the file meanwhile instead (`hashElsewhere`). The test hook ?split-min=N
// turns it on.
export const SPLIT_MIN = Infinity;
export const SPLIT_AT = 0.5;
// Whether a text is split is decided on its first PEEK bytes: a file that is not text there is
// not read again by the other worker.
const PEEK = 64 * 1024;
// How far past the middle a cut is looked for (findCut); a text without one is not split.
const CUT_WINDOW = 1024 * 1024;
const PROGRESS_STEP = 4 * 1024 * 1024;

// WebCrypto exists only in secure contexts (HTTPS, or plain HTTP on localhost): a registry served
// over plain HTTP elsewhere still works, with hash-wasm for everything.
// The phases of a job, for the page's timeline (bench_page.py): name -> the time it ended, in
// milliseconds since the epoch (performance.timeOrigin differs between workers and the page).
const now = () => performance.timeOrigin + performance.now();

const hasWebCrypto = () => globalThis.isSecureContext !== false && !!globalThis.crypto?.subtle;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The bytes of `file` in pieces of `size` bytes (the last shorter), each read with File.slice,
 * the next one asked for before the current one is handed out (the browser's process reads it
 * meanwhile); at most two pieces are held.
 */
async function* pieces(file, size) {
  const read = (offset) =>
    offset < file.size ? file.slice(offset, offset + size).arrayBuffer() : null;
  let next = read(0);
  try {
    for (let offset = 0; next !== null; offset += size) {
      const current = await next;
      next = read(offset + size);
      yield new Uint8Array(current);
    }
  } finally {
    next?.catch(() => {}); // the caller stopped early: nobody waits for this read
  }
}

/** Calls `onProgress(bytes)` at most every PROGRESS_STEP bytes, and at the end. */
function progress(onProgress) {
  let done = 0;
  let reported = 0;
  return {
    add(bytes) {
      done += bytes;
      if (onProgress && done - reported >= PROGRESS_STEP) {
        reported = done;
        onProgress(done);
      }
    },
    end() {
      if (onProgress && done !== reported) onProgress(done);
    },
  };
}

/** The whole of `file`, or null when it cannot be had in memory (a RangeError, a failed read). */
async function wholeFile(file) {
  try {
    return await file.arrayBuffer();
  } catch {
    return null; // a read that fails for another reason fails again, and is reported, streamed
  }
}

/**
 * SHA-256 of a File or Blob. Returns {digest, method, ms}: the lowercase hex digest, "webcrypto"
 * or "hash-wasm", and the time taken.
 */
export async function sha256File(
  file,
  { webCryptoMax = WEBCRYPTO_MAX, chunkSize = CHUNK_SIZE, onProgress } = {},
) {
  const started = performance.now();
  const phases = { shaStart: now() };
  if (file.size <= webCryptoMax && hasWebCrypto()) {
    const whole = await wholeFile(file);
    phases.shaRead = now();
    let digest = null;
    if (whole !== null) {
      try {
        const pending = crypto.subtle.digest("SHA-256", whole);
        phases.shaCopied = now();
        digest = hex(await pending);
        phases.shaHashed = now();
      } catch {
        // no memory for WebCrypto's copy: streamed below
      }
    }
    if (digest !== null) {
      onProgress?.(file.size);
      return { digest, method: "webcrypto", ms: performance.now() - started, phases };
    }
  }
  const hasher = await globalThis.hashwasm.createSHA256();
  hasher.init();
  const read = progress(onProgress);
  for await (const bytes of pieces(file, chunkSize)) {
    hasher.update(bytes);
    read.add(bytes.length);
  }
  read.end();
  const digest = hasher.digest("hex");
  phases.shaHashed = now();
  return { digest, method: "hash-wasm", ms: performance.now() - started, phases };
}

/**
 * SHA-256 of bytes given in pieces: kept in memory for WebCrypto while they total at most
 * `limit` bytes (in a buffer of `expected` bytes at first, grown when needed), streamed through
 * hash-wasm from then on, or as soon as memory is refused (WebCrypto is the faster, but has no
 * incremental API). A piece may be reused by the caller after `update` returns.
 */
class Sha256Sink {
  constructor(limit, wasm, expected) {
    this.limit = limit;
    this.wasm = wasm; // a hash-wasm SHA-256, initialized: used once the limit is passed
    this.expected = Math.min(limit, Math.max(expected, 0));
    this.buffer = null; // allocated by the first update: none for a file that is not text
    this.size = 0;
    this.hasher = limit < 0 ? wasm : null; // a negative limit: hash-wasm from the start
  }

  /** A buffer of `size` bytes, or null (and hash-wasm from now on) when there is no memory. */
  allocate(size) {
    try {
      return new Uint8Array(size);
    } catch {
      this.spill();
      return null;
    }
  }

  /** Hash what is held with hash-wasm, and everything after it. */
  spill() {
    if (this.hasher !== null) return;
    this.hasher = this.wasm;
    if (this.buffer !== null) this.hasher.update(this.buffer.subarray(0, this.size));
    this.buffer = null;
  }

  update(piece) {
    if (this.hasher === null && this.size + piece.length > this.limit) this.spill();
    if (this.hasher === null && this.buffer === null) this.buffer = this.allocate(this.expected);
    if (this.hasher === null && this.size + piece.length > this.buffer.length) {
      const wanted = Math.max(this.size + piece.length, 2 * this.buffer.length);
      const grown = this.allocate(Math.min(this.limit, wanted));
      if (grown !== null) {
        grown.set(this.buffer.subarray(0, this.size));
        this.buffer = grown;
      }
    }
    if (this.hasher !== null) {
      this.hasher.update(piece);
      return;
    }
    this.buffer.set(piece, this.size);
    this.size += piece.length;
  }

  async digest() {
    if (this.hasher === null && this.buffer === null) this.buffer = new Uint8Array(0);
    if (this.hasher === null) {
      try {
        return hex(await crypto.subtle.digest("SHA-256", this.buffer.subarray(0, this.size)));
      } catch {
        this.spill(); // no memory for WebCrypto's copy
      }
    }
    return this.hasher.digest("hex");
  }
}

/**
 * The norm-text-v1 digest of a File or Blob. Returns {digest, reason, ms}: the lowercase hex
 * digest, or null and why there is none ("not UTF-8", "contains NUL", "unassigned code point
 * U+XXXX").
 *
 * A file of at most `textWebCryptoMax` bytes is read whole (after its first piece: a file that is
 * not text is not read further) and normalized into its own buffer; larger files, and a file
 * whose whole cannot be had, are streamed.
 */
export async function textDigestFile(
  file,
  { textWebCryptoMax = WEBCRYPTO_MAX, chunkSize = CHUNK_SIZE, onProgress } = {},
) {
  const started = performance.now();
  const phases = { textStart: now() };
  const result = (digest, reason) => {
    phases.textHashed = now();
    return { digest, reason, ms: performance.now() - started, phases };
  };
  const inMemory = hasWebCrypto() && file.size <= textWebCryptoMax;
  const notText = inMemory ? await firstPieceNotText(file, chunkSize) : null;
  if (notText !== null) return result(null, notText);
  const whole = inMemory ? await wholeFile(file) : null;
  if (whole !== null) {
    phases.textRead = now();
    const text = await textOfBytes(
      new Uint8Array(whole),
      textWebCryptoMax,
      chunkSize,
      onProgress,
      phases,
    );
    return result(text.digest, text.reason);
  }
  const wasm = await globalThis.hashwasm.createSHA256(); // made here: the sink is synchronous
  wasm.init();
  // Room for a text as long as the file at first: White_Space runs shrink it, little grows it.
  const sink = new Sha256Sink(hasWebCrypto() ? textWebCryptoMax : -1, wasm, file.size);
  const normalizer = new NormTextV1((bytes) => sink.update(bytes));
  const read = progress(onProgress);
  for await (const bytes of pieces(file, chunkSize)) {
    const reason = checkText([bytes], normalizer);
    if (reason !== null) return result(null, reason);
    read.add(bytes.length);
  }
  read.end();
  if (!normalizer.finish()) return result(null, normalizer.failure);
  phases.textNormalized = now();
  return result(await sink.digest(), null);
}

/**
 * Both digests of a file small enough for the in-memory paths of both (at most `webCryptoMax`
 * and `textWebCryptoMax` bytes), from one read: the raw bytes are hashed by WebCrypto, then
 * normalized in place (WebCrypto copies its input before digest() returns, WebCrypto's "get a
 * copy of the bytes"; in Chromium 156 it also hashes it then, on the calling thread). With
 * `hashElsewhere` (an async function of an ArrayBuffer returning what sha256Buffer returns,
 * computed elsewhere: app.js runs it in the other worker), a copy of the bytes is handed to it
 * instead and hashed there while this worker normalizes. Returns {sha256, text} (as sha256File
 * and textDigestFile), or null for a file this path does not take (too large, no WebCrypto, no
 * memory for it): then run sha256File and textDigestFile. Should `hashElsewhere` give no digest,
 * the file is read again and hashed here. With `spareBuffer` too (an async function of a size
 * returning an ArrayBuffer of that size, spareBuffer's, or null), the copy is made in that.
 *
 * With `split` (an async function of `mid` returning what textTailFile(file, {mid}) returns,
 * computed elsewhere: app.js runs it in the other worker), a text of at least `splitMin` bytes
 * is normalized in two parts at once, cut at or after `splitAt` of its length where the parts
 * normalize independently (findCut); the parts are joined and hashed here. Should either part
 * not be text, or not fit in place, the text digest is computed again from the file alone
 * (textDigestFile), so the answer and its reason are those of the one-piece path.
 */
export async function bothDigestsFile(
  file,
  {
    webCryptoMax = WEBCRYPTO_MAX,
    textWebCryptoMax = WEBCRYPTO_MAX,
    chunkSize = CHUNK_SIZE,
    splitMin = SPLIT_MIN,
    splitAt = SPLIT_AT,
    split,
    hashElsewhere,
    spareBuffer,
    onProgress,
  } = {},
) {
  const started = performance.now();
  if (!hasWebCrypto() || file.size > Math.min(webCryptoMax, textWebCryptoMax)) return null;
  const phases = { start: now() };
  // Asked for before the read, so that the other worker writes its pages meanwhile: this VM
  // writes fresh memory slowly, and the copy for `hashElsewhere` is on this worker's path. Not
  // for a file whose first bytes (read alone, a millisecond) are not text: there is no copy
  // then, and a spare buffer would cost the other worker the file's size in memory and the
  // writing of its pages on the core the read needs (256 MiB of random bytes: 250 MiB less at
  // the browser's peak). Only this choice rests on that read: what is hashed is the whole read.
  const willSplit = split && file.size >= splitMin;
  const mayOverlap =
    hashElsewhere && spareBuffer && !willSplit && !notTextAt(await headOf(file));
  const spare = mayOverlap
    ? Promise.resolve()
        .then(() => spareBuffer(file.size))
        .catch(() => null)
    : null;
  // Read whole at once, text or not (the raw digest needs it all): a file that is not text shows
  // it in the first piece the normalizer sees, which then stops.
  const whole = await wholeFile(file);
  if (whole === null) return null;
  const bytes = new Uint8Array(whole);
  phases.read = now();
  // The other worker starts on the second part of a text now, while this one copies the bytes
  // for WebCrypto and normalizes the first part: it has that part to read first.
  const inTwo = willSplit ? startTail(bytes, split, splitAt) : null;
  // WebCrypto's digest() copies and hashes its input before it returns, on this thread: with
  // `hashElsewhere`, a copy of the bytes is hashed by the other worker meanwhile (a copy costs
  // this thread half as much as a digest), unless that worker has a part of the text to do.
  // Not for a file whose first bytes are not text: the normalizer stops there, nothing to
  // overlap.
  const overlap = hashElsewhere && !inTwo && !notTextAt(bytes.subarray(0, PEEK));
  const copy = overlap ? copyOf(bytes, await spare) : null;
  phases.copied = now();
  let raw;
  if (copy !== null) {
    raw = Promise.resolve(hashElsewhere(copy.buffer)).then((answer) => {
      if (typeof answer?.digest !== "string") throw new Error("the other worker has no digest");
      Object.assign(phases, answer.phases);
      return answer.digest;
    });
  } else {
    try {
      raw = crypto.subtle.digest("SHA-256", whole).then(hex);
    } catch {
      return null; // a synchronous failure to copy: the file is read again by the other path
    }
  }
  phases.rawCopied = now();
  let rawMs = 0;
  raw.then(
    () => ((rawMs = performance.now() - started), (phases.rawHashed = now())),
    () => {}, // awaited below, after the normalization
  );
  let text = inTwo ? await textInTwo(bytes, inTwo, chunkSize, onProgress, phases) : undefined;
  if (text === undefined) {
    text = await textOfBytes(bytes, textWebCryptoMax, chunkSize, onProgress, phases);
  }
  // The parts did not both give a text in place: the buffer now holds part of one, read again.
  if (text === null) text = await textDigestFile(file, { textWebCryptoMax, chunkSize });
  const textMs = performance.now() - started;
  phases.textHashed = now();
  let sha256;
  try {
    const digest = await raw;
    sha256 = { digest, method: "webcrypto", ms: rawMs || performance.now() - started };
  } catch {
    // No memory for WebCrypto's copy: the buffer now holds the normalized text, so read again.
    sha256 = await sha256File(file, { webCryptoMax: -1, chunkSize });
  }
  phases.end = now();
  return { sha256, text: { ...text, ms: textMs }, phases: { ...phases, ...text.phases } };
}

/**
 * A copy of `bytes`: in `spare` (an ArrayBuffer) when it has their length, else in new memory;
 * or null when there is no memory for it.
 */
function copyOf(bytes, spare = null) {
  if (spare?.byteLength === bytes.length) {
    const copy = new Uint8Array(spare);
    copy.set(bytes);
    return copy;
  }
  try {
    return bytes.slice();
  } catch {
    return null;
  }
}

/**
 * An ArrayBuffer of `size` bytes whose pages have been written (bothDigestsFile's `spareBuffer`,
 * run by the other worker while the file is read: a copy into it then costs the reading worker
 * a fraction of one into fresh memory). Returns {buffer}; throws when there is no memory.
 */
export function spareBuffer(size) {
  const bytes = new Uint8Array(size);
  for (let k = 0; k < size; k += 4096) bytes[k] = 0; // a write maps the page; a read would not
  return { buffer: bytes.buffer };
}

/**
 * SHA-256 of the bytes of an ArrayBuffer with WebCrypto (bothDigestsFile's `hashElsewhere`, run
 * by the other worker). Returns {digest, method: "webcrypto", ms, phases}; throws when WebCrypto
 * fails (no memory for its copy).
 */
export async function sha256Buffer(buffer) {
  const started = performance.now();
  const phases = { elsewhereStart: now() };
  const digest = hex(await crypto.subtle.digest("SHA-256", buffer));
  phases.elsewhereHashed = now();
  return { digest, method: "webcrypto", ms: performance.now() - started, phases };
}

/**
 * Where norm-text-v1 may cut `bytes` into two texts whose normalizations, joined, are that of the
 * whole: the first position in [from, to) (from >= 1) between two bytes of printable ASCII other
 * than the space (U+0021..U+007E), or -1. Such a byte is a whole code point, neither White_Space
 * (no run to merge, no end to strip) nor NUL; ASCII is "simple" (normtext.js), so nothing on one
 * side composes, reorders or folds with the other; and the second text starts with neither
 * U+FEFF nor White_Space, so its start is not stripped either.
 */
export function findCut(bytes, from, to) {
  for (let c = from; c < to; c++) {
    const b = bytes[c];
    if (b > 0x20 && b < 0x7f && bytes[c - 1] > 0x20 && bytes[c - 1] < 0x7f) return c;
  }
  return -1;
}

/**
 * The second part of a text for bothDigestsFile's `split` (the bytes of `file` from the cut that
 * findCut finds at or after `mid` in the file, at most CUT_WINDOW bytes on), normalized in place.
 * Returns {cut, buffer, offset, size}: the cut (-1 if none), and the normalized text as `size`
 * bytes at `offset` in the ArrayBuffer `buffer`; or {cut, size: -1} when that part is not text or
 * its normalization would not fit in place. Throws when the file cannot be read.
 */
export async function textTailFile(file, { mid, chunkSize = CHUNK_SIZE }) {
  const phases = { tailStart: now() };
  const start = mid - 1; // the byte before the first place a cut may be
  const buffer = await file.slice(start).arrayBuffer();
  phases.tailRead = now();
  const bytes = new Uint8Array(buffer);
  const offset = findCut(bytes, 1, Math.min(bytes.length, 1 + CUT_WINDOW));
  if (offset < 0) return { cut: -1, size: -1 };
  const size = normalizeInPlace(bytes.subarray(offset), chunkSize);
  if (size < 0) return { cut: start + offset, size: -1 };
  phases.tailNormalized = now();
  return { cut: start + offset, buffer, offset, size, phases };
}

/**
 * Start normalizing the second part of the text `bytes` (a whole file, not yet changed) with
 * `split` (see bothDigestsFile), from the first cut at or after `at` of its length, when its
 * first PEEK bytes are text (a file that is not text is not read twice). Returns {cut, tail},
 * `tail` a promise of textTailFile's answer (null if `split` failed); or null: no split.
 */
function startTail(bytes, split, at) {
  const mid = Math.max(1, Math.floor(bytes.length * at));
  const cut = findCut(bytes, mid, Math.min(bytes.length, mid + CUT_WINDOW));
  if (cut < 0 || notTextAt(bytes.subarray(0, PEEK))) {
    return null;
  }
  // Called now, not in a later task: this worker stays busy until the text is normalized.
  let tail;
  try {
    tail = Promise.resolve(split(mid)).catch(() => null);
  } catch {
    tail = Promise.resolve(null);
  }
  return { cut, tail };
}

/**
 * The norm-text-v1 digest of `bytes` (a whole file) whose part after `cut` is normalized by
 * `tail` (startTail), the part before it normalized here meanwhile, then joined in place and
 * hashed. Returns {digest, reason: null, halves: true}; {digest: null, reason} when the first
 * piece (as the one-piece path cuts it) is not text; null when a part is not text, did not fit
 * in place, or `split` failed (`bytes` changed: the caller reads the file again).
 */
async function textInTwo(bytes, { cut, tail }, chunkSize, onProgress, phases = {}) {
  let firstPiece = true; // the failure, if any, is in the first piece
  const scaled = onProgress && ((done) => onProgress(Math.round((done * bytes.length) / cut)));
  const sink = new InPlaceSink(bytes.subarray(0, cut), null);
  const normalizer = new NormTextV1((piece) => sink.update(piece));
  const pieces = chunks(sink.bytes, chunkSize, sink, () => (firstPiece = false));
  const reason = checkText(pieces, normalizer, true, scaled, inPlace(sink));
  if (reason !== null && firstPiece && cut >= chunkSize) {
    // The cut did not shorten the first piece: it is the one-piece path's, the reason too.
    return { digest: null, reason };
  }
  const head = reason !== null || sink.spilled ? -1 : sink.size;
  phases.headNormalized = now();
  const rest = await tail;
  phases.tailArrived = now();
  if (head < 0 || rest?.cut !== cut || !(rest.size >= 0)) return null;
  // In place, each part is at most as long as its bytes: the joined text fits where they were
  // (unless the file changed between the two reads: then it is read again).
  if (head + rest.size > bytes.length) return null;
  bytes.set(new Uint8Array(rest.buffer, rest.offset, rest.size), head);
  const text = bytes.subarray(0, head + rest.size);
  phases.joined = now();
  const halves = true; // for the page's tests and benchmark: this path was taken
  Object.assign(phases, rest.phases);
  try {
    const digest = crypto.subtle.digest("SHA-256", text);
    phases.textCopied = now();
    return { digest: hex(await digest), reason: null, halves };
  } catch {
    const wasm = await globalThis.hashwasm.createSHA256(); // no memory for WebCrypto's copy
    wasm.init();
    wasm.update(text);
    return { digest: wasm.digest("hex"), reason: null, halves };
  }
}

/**
 * Normalize the whole text `bytes` into itself. Returns the length of the normalized text at
 * the start of `bytes`, or -1 when `bytes` is not text or its normalization would overtake the
 * bytes not yet read (NFKC lengthens some text): then `bytes` holds part of one.
 */
function normalizeInPlace(bytes, chunkSize) {
  const sink = new InPlaceSink(bytes, null);
  const normalizer = new NormTextV1((piece) => sink.update(piece));
  const pieces = chunks(bytes, chunkSize, sink);
  const reason = checkText(pieces, normalizer, true, undefined, inPlace(sink));
  return reason !== null || sink.spilled ? -1 : sink.size;
}

/** Whether `bytes`, the start of a file, show that it is not text (as checkText says). */
function notTextAt(bytes) {
  return checkText([bytes], new NormTextV1(() => {})) !== null;
}

/** The first PEEK bytes of `file` (fewer in a shorter file; none when they cannot be read). */
async function headOf(file) {
  try {
    return new Uint8Array(await file.slice(0, PEEK).arrayBuffer());
  } catch {
    return new Uint8Array(0); // the whole read reports it
  }
}

/** Why the first piece of `file` shows it is not text (as checkText says), or null. */
async function firstPieceNotText(file, chunkSize) {
  if (file.size <= chunkSize) return null; // read whole anyway: checked then
  const first = new Uint8Array(await file.slice(0, chunkSize).arrayBuffer());
  return checkText([first], new NormTextV1(() => {}));
}

/**
 * The norm-text-v1 digest of `bytes`, normalized into themselves and hashed with WebCrypto (or
 * what InPlaceSink falls back to). Returns {digest, reason} as textDigestFile does.
 */
async function textOfBytes(bytes, textWebCryptoMax, chunkSize, onProgress, phases = {}) {
  const wasm = await globalThis.hashwasm.createSHA256(); // made here: the sinks are synchronous
  wasm.init();
  const sink = new InPlaceSink(bytes, new Sha256Sink(textWebCryptoMax, wasm, bytes.length));
  const normalizer = new NormTextV1((piece) => sink.update(piece));
  const pieces = chunks(bytes, chunkSize, sink);
  const reason = checkText(pieces, normalizer, true, onProgress, inPlace(sink));
  if (reason !== null) return { digest: null, reason };
  phases.textNormalized = now();
  return { digest: await sink.digest(), reason: null };
}

/**
 * Feed `pieces` to `normalizer` (with `feed`, which returns what its update returns), and finish
 * it if `whole` (they are the whole text). Returns null, or why there is no digest.
 */
function checkText(
  pieces,
  normalizer,
  whole = false,
  onProgress = undefined,
  feed = (n, bytes) => n.update(bytes),
) {
  const read = progress(onProgress);
  for (const bytes of pieces) {
    // The same test as provenance.fingerprints: text is strict UTF-8 without NUL; NUL first, as
    // when each piece was searched for it before it was normalized. The normalizer notes NUL in
    // what it looks at; it may stop before the end of a piece (invalid), or hold back the first 2
    // bytes of a text unseen: then the piece is searched.
    const ok = feed(normalizer, bytes);
    if (normalizer.sawNul || ((!ok || bytes.length < 3) && bytes.indexOf(0) !== -1)) {
      return "contains NUL";
    }
    if (!ok) return normalizer.failure;
    read.add(bytes.length);
  }
  if (!whole) return null;
  read.end();
  return normalizer.finish() ? null : normalizer.failure;
}

// A piece of a text normalized in place is fed to the normalizer in parts of this many bytes:
// its buffers (and the WebAssembly fast path's) then stay in the processor's cache (node 20,
// 256 MiB of ASCII in place: 2,100-2,300 MiB/s against 1,100-1,600 in 8 MiB parts). What the
// pieces are for the NUL test (checkText) does not change.
const PART = 256 * 1024;

/**
 * A `feed` for checkText that gives the normalizer a piece of `sink`'s bytes in parts of PART
 * bytes, telling `sink` before each how far the normalizer has read.
 */
function inPlace(sink) {
  return (normalizer, piece) => {
    const base = piece.byteOffset - sink.bytes.byteOffset;
    for (let at = 0; at < piece.length; at += PART) {
      const part = piece.subarray(at, at + PART);
      sink.readTo = base + at + part.length;
      if (!normalizer.update(part)) return false;
      if (sink.spilled && sink.fallback === null) break; // given up: chunks() stops too
    }
    return true;
  };
}

/**
 * `bytes` in pieces of `size`, telling `sink` how far the normalizer has read before each, and
 * calling `afterFirst` once the first piece is consumed (checkText asks for the next one only if
 * that piece was text).
 */
function* chunks(bytes, size, sink, afterFirst = undefined) {
  const givenUp = () => sink.spilled && sink.fallback === null; // normalizeInPlace gave up
  for (let offset = 0; offset < bytes.length && !givenUp(); offset += size) {
    const chunk = bytes.subarray(offset, offset + size);
    sink.readTo = offset + chunk.length;
    yield chunk;
    if (offset === 0) afterFirst?.(); // the first piece was normalized without a failure
  }
}

/**
 * The normalized text written back into the buffer it is read from, behind the normalizer (the
 * normalizer has consumed a piece before it outputs anything for it), while it stays behind it;
 * moved to `fallback` (a Sha256Sink) when it would overtake it (NFKC lengthens some text); with
 * no fallback (null), `spilled` then says that the text was given up, and chunks() stops.
 */
class InPlaceSink {
  constructor(bytes, fallback) {
    this.bytes = bytes;
    this.fallback = fallback;
    this.size = 0;
    this.readTo = 0; // set by chunks(): the input is consumed up to here
    this.spilled = false;
  }

  update(piece) {
    if (!this.spilled && this.size + piece.length <= this.readTo) {
      this.bytes.set(piece, this.size);
      this.size += piece.length;
      return;
    }
    if (!this.spilled) {
      this.spilled = true;
      this.fallback?.update(this.bytes.subarray(0, this.size));
    }
    this.fallback?.update(piece); // none: the caller gives up on this text
  }

  async digest() {
    if (this.spilled) return this.fallback.digest();
    try {
      return hex(await crypto.subtle.digest("SHA-256", this.bytes.subarray(0, this.size)));
    } catch {
      // no memory for WebCrypto's copy
      this.fallback.spill();
      this.fallback.update(this.bytes.subarray(0, this.size));
      return this.fallback.digest();
    }
  }
}
