// A module worker that computes the digests of one file at a time for app.js, off the main thread.
// Message in:  {id, job: "sha256" | "text" | "both" | "tail" | "digest" | "spare", file,
// options}; and {id, kind, answer} in answer to a question (below).
// Messages out: {ready: true} once loaded; {id, progress: bytes} while it works; {id, ask: kind,
// value} when a "both" job asks app.js for something the other worker does: "split" (value: mid)
// to have the second half of its text normalized (a "tail" job; its answer {cut: -1, size: -1}
// if it failed), "hashElsewhere" (value: a copy of the file's bytes) for their SHA-256 (a
// "digest" job; null if it failed), "spare" (value: a size) for a buffer to copy the file into
// (a "spare" job; null if it failed); then {id, result} or {id, error}. The buffers of a "tail"
// or "spare" result, of an answer, of a copy to hash and of a "digest" job are transferred, not
// copied.

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
const asked = new Map(); // `${id} ${kind}` -> resolve() of a question a job put to app.js

self.onmessage = async (event) => {
  const { id, job, file, options, kind, answer } = event.data;
  if (kind !== undefined) {
    asked.get(`${id} ${kind}`)?.(answer);
    asked.delete(`${id} ${kind}`);
    return;
  }
  const onProgress = (bytes) => self.postMessage({ id, progress: bytes });
  const ask = (question, value, transfer = []) =>
    new Promise((resolve) => {
      asked.set(`${id} ${question}`, resolve);
      self.postMessage({ id, ask: question, value }, transfer);
    });
  const split = (mid) => ask("split", mid);
  const hashElsewhere = (buffer) => ask("hashElsewhere", buffer, [buffer]);
  const spare = (size) => ask("spare", size);
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
