// The digests the page computes for a file, in the browser (run in workers by app.js):
// - sha256: WebCrypto over the whole file up to WEBCRYPTO_MAX bytes (the fastest here, but
//   WebCrypto has no incremental API, so the file is held in memory), streamed through
//   hash-wasm above that (bounded memory);
// - text: the norm-text-v1 digest when the file is text as `provenance manifest build` means it
//   (strict UTF-8 without NUL), streamed through hash-wasm.
// Nothing here sends anything anywhere.

import "./vendor/hash-wasm/sha256.umd.min.js";
import { NormTextV1 } from "./normtext.js";

export const WEBCRYPTO_MAX = 256 * 1024 * 1024;
export const CHUNK_SIZE = 8 * 1024 * 1024;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes of `file` in slices of `size`, the next one read while the caller uses one. */
async function* slices(file, size) {
  let next = file.size > 0 ? file.slice(0, size).arrayBuffer() : null;
  for (let offset = 0; offset < file.size; offset += size) {
    const current = await next;
    const after = offset + size;
    next = after < file.size ? file.slice(after, after + size).arrayBuffer() : null;
    yield new Uint8Array(current);
  }
}

/**
 * SHA-256 of a File or Blob. Returns {digest, method, ms}: the lowercase hex digest, "webcrypto"
 * or "hash-wasm", and the time taken.
 */
export async function sha256File(file, { webCryptoMax = WEBCRYPTO_MAX, chunkSize = CHUNK_SIZE, onProgress } = {}) {
  const started = performance.now();
  if (file.size <= webCryptoMax) {
    const digest = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    onProgress?.(file.size);
    return { digest, method: "webcrypto", ms: performance.now() - started };
  }
  const hasher = await globalThis.hashwasm.createSHA256();
  hasher.init();
  let done = 0;
  for await (const bytes of slices(file, chunkSize)) {
    hasher.update(bytes);
    done += bytes.length;
    onProgress?.(done);
  }
  return { digest: hasher.digest("hex"), method: "hash-wasm", ms: performance.now() - started };
}

/**
 * The norm-text-v1 digest of a File or Blob. Returns {digest, reason, ms}: the lowercase hex
 * digest, or null and why there is none ("not UTF-8", "contains NUL", "unassigned code point
 * U+XXXX").
 */
export async function textDigestFile(file, { chunkSize = CHUNK_SIZE, onProgress } = {}) {
  const started = performance.now();
  const hasher = await globalThis.hashwasm.createSHA256();
  hasher.init();
  const normalizer = new NormTextV1((bytes) => hasher.update(bytes));
  const none = (reason) => ({ digest: null, reason, ms: performance.now() - started });
  let done = 0;
  for await (const bytes of slices(file, chunkSize)) {
    // The same test as provenance.fingerprints: text is strict UTF-8 without NUL.
    if (bytes.indexOf(0) !== -1) return none("contains NUL");
    if (!normalizer.update(bytes)) return none(normalizer.failure);
    done += bytes.length;
    onProgress?.(done);
  }
  if (!normalizer.finish()) return none(normalizer.failure);
  return { digest: hasher.digest("hex"), reason: null, ms: performance.now() - started };
}
