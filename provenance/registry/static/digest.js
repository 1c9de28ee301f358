// The digests the page computes for a file, in the browser (run in workers by app.js):
// - sha256: WebCrypto over the whole file up to WEBCRYPTO_MAX bytes (the fastest here, but
//   WebCrypto has no incremental API, so the file is held in memory), streamed through
//   hash-wasm above that (bounded memory);
// - text: the norm-text-v1 digest when the file is text as `provenance manifest build` means it
//   (strict UTF-8 without NUL): the file is normalized as it is read, and the normalized text
//   hashed with WebCrypto while it stays within WEBCRYPTO_MAX bytes, else through hash-wasm.
// Nothing here sends anything anywhere.

import "./vendor/hash-wasm/sha256.umd.min.js";
import { NormTextV1 } from "./normtext.js";

export const WEBCRYPTO_MAX = 256 * 1024 * 1024;
export const CHUNK_SIZE = 8 * 1024 * 1024;
const PROGRESS_STEP = 4 * 1024 * 1024;

// WebCrypto exists only in secure contexts (HTTPS, or plain HTTP on localhost): a registry served
// over plain HTTP elsewhere still works, with hash-wasm for everything.
const hasWebCrypto = () => globalThis.isSecureContext !== false && !!globalThis.crypto?.subtle;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The bytes of `file` as its stream gives them (the fastest way to read a File here), cut into
 * pieces of at most `size` bytes (views, not copies).
 */
async function* pieces(file, size) {
  const reader = file.stream().getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      for (let offset = 0; offset < value.length; offset += size) {
        yield value.subarray(offset, offset + size);
      }
    }
  } finally {
    reader.cancel().catch(() => {}); // stop reading when the caller stops early
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

/**
 * SHA-256 of a File or Blob. Returns {digest, method, ms}: the lowercase hex digest, "webcrypto"
 * or "hash-wasm", and the time taken.
 */
export async function sha256File(
  file,
  { webCryptoMax = WEBCRYPTO_MAX, chunkSize = CHUNK_SIZE, onProgress } = {},
) {
  const started = performance.now();
  if (file.size <= webCryptoMax && hasWebCrypto()) {
    const digest = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    onProgress?.(file.size);
    return { digest, method: "webcrypto", ms: performance.now() - started };
  }
  const hasher = await globalThis.hashwasm.createSHA256();
  hasher.init();
  const read = progress(onProgress);
  for await (const bytes of pieces(file, chunkSize)) {
    hasher.update(bytes);
    read.add(bytes.length);
  }
  read.end();
  return { digest: hasher.digest("hex"), method: "hash-wasm", ms: performance.now() - started };
}

/**
 * SHA-256 of bytes given in pieces: kept in memory for WebCrypto while they total at most
 * `limit` bytes, streamed through hash-wasm from then on (WebCrypto is the faster, but has no
 * incremental API). A piece may be reused by the caller after `update` returns.
 */
class Sha256Sink {
  constructor(limit, wasm) {
    this.limit = limit;
    this.wasm = wasm; // a hash-wasm SHA-256, initialized: used once the limit is passed
    this.buffer = new Uint8Array(Math.max(0, Math.min(limit, 1 << 20)));
    this.size = 0;
    this.hasher = limit < 0 ? wasm : null; // a negative limit: hash-wasm from the start
  }

  update(piece) {
    if (this.hasher === null && this.size + piece.length <= this.limit) {
      if (this.size + piece.length > this.buffer.length) {
        const wanted = Math.max(this.size + piece.length, 2 * this.buffer.length);
        const grown = new Uint8Array(Math.min(this.limit, wanted));
        grown.set(this.buffer.subarray(0, this.size));
        this.buffer = grown;
      }
      this.buffer.set(piece, this.size);
      this.size += piece.length;
      return;
    }
    if (this.hasher === null) {
      this.hasher = this.wasm;
      this.hasher.update(this.buffer.subarray(0, this.size));
      this.buffer = null;
    }
    this.hasher.update(piece);
  }

  async digest() {
    if (this.hasher !== null) return this.hasher.digest("hex");
    return hex(await crypto.subtle.digest("SHA-256", this.buffer.subarray(0, this.size)));
  }
}

/**
 * The norm-text-v1 digest of a File or Blob. Returns {digest, reason, ms}: the lowercase hex
 * digest, or null and why there is none ("not UTF-8", "contains NUL", "unassigned code point
 * U+XXXX").
 */
export async function textDigestFile(
  file,
  { webCryptoMax = WEBCRYPTO_MAX, chunkSize = CHUNK_SIZE, onProgress } = {},
) {
  const started = performance.now();
  const wasm = await globalThis.hashwasm.createSHA256(); // made here: the sink is synchronous
  wasm.init();
  const sink = new Sha256Sink(hasWebCrypto() ? webCryptoMax : -1, wasm);
  const normalizer = new NormTextV1((bytes) => sink.update(bytes));
  const none = (reason) => ({ digest: null, reason, ms: performance.now() - started });
  const read = progress(onProgress);
  for await (const bytes of pieces(file, chunkSize)) {
    // The same test as provenance.fingerprints: text is strict UTF-8 without NUL.
    if (bytes.indexOf(0) !== -1) return none("contains NUL");
    if (!normalizer.update(bytes)) return none(normalizer.failure);
    read.add(bytes.length);
  }
  read.end();
  if (!normalizer.finish()) return none(normalizer.failure);
  return { digest: await sink.digest(), reason: null, ms: performance.now() - started };
}
