// A module worker that computes the digests of one file at a time for app.js, off the main thread.
// Message in:  {id, job: "sha256" | "text" | "both" | "tail" | "digest" | "spare", file,
// options}; and {id, tail} in answer to a split, {id, hashed} to a hashElsewhere, {id, spared}
// to a spare (below).
// Messages out: {ready: true} once loaded; {id, progress: bytes} while it works, {id, split: mid}
// when a "both" job asks app.js to have the second half of its text normalized (the result of a
// "tail" job, run by the other worker, comes back as {id, tail}); {id, hashElsewhere: buffer}
// when it asks for the SHA-256 of a copy of the file (a "digest" job of the other worker, whose
// result comes back as {id, hashed}, null if it failed); {id, spare: size} when it asks for a
// buffer to copy the file into (a "spare" job of the other worker, whose buffer comes back as
// {id, spared}, null if it failed); then {id, result} or {id, error}. The buffers of a "tail"
// or "spare" result, of a tail, of a spare and of a "digest" job are transferred, not copied.

import {
  bothDigestsFile,
  sha256Buffer,
  sha256File,
  spareBuffer,
  textDigestFile,
  textTailFile,
} from "./digest.js";

const JOBS = {
  sha256: sha256File,
  text: textDigestFile,
  both: bothDigestsFile,
  tail: textTailFile,
  digest: sha256Buffer, // `file` is an ArrayBuffer here
  spare: spareBuffer, // `file` is a size here
};
const tails = new Map(); // id -> resolve() of the split that waits for its tail
const hashes = new Map(); // id -> resolve() of the hashElsewhere that waits for its digest
const spares = new Map(); // id -> resolve() of the spareBuffer that waits for its buffer

self.onmessage = async (event) => {
  const { id, job, file, options, tail, hashed, spared } = event.data;
  if (tail !== undefined) {
    tails.get(id)?.(tail);
    tails.delete(id);
    return;
  }
  if (hashed !== undefined) {
    hashes.get(id)?.(hashed);
    hashes.delete(id);
    return;
  }
  if (spared !== undefined) {
    spares.get(id)?.(spared);
    spares.delete(id);
    return;
  }
  const onProgress = (bytes) => self.postMessage({ id, progress: bytes });
  const split = (mid) =>
    new Promise((resolve) => {
      tails.set(id, resolve);
      self.postMessage({ id, split: mid });
    });
  const hashElsewhere = (buffer) =>
    new Promise((resolve) => {
      hashes.set(id, resolve);
      self.postMessage({ id, hashElsewhere: buffer }, [buffer]);
    });
  const spare = (size) =>
    new Promise((resolve) => {
      spares.set(id, resolve);
      self.postMessage({ id, spare: size });
    });
  const elsewhere = options?.hashElsewhere === true;
  try {
    const result = await JOBS[job](file, {
      ...options,
      onProgress,
      split,
      hashElsewhere: elsewhere ? hashElsewhere : undefined,
      spareBuffer: elsewhere ? spare : undefined,
    });
    self.postMessage({ id, result }, result?.buffer ? [result.buffer] : []);
  } catch (error) {
    self.postMessage({ id, error: `${error?.name ?? "Error"}: ${error?.message ?? error}` });
  }
};

self.postMessage({ ready: true });
