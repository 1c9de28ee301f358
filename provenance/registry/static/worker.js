// A module worker that computes the digests of one file at a time for app.js, off the main thread.
// Message in:  {id, job: "sha256" | "text" | "both" | "tail", file, options}; and {id, tail} in
// answer to a split (below).
// Messages out: {ready: true} once loaded; {id, progress: bytes} while it works, {id, split: mid}
// when a "both" job asks app.js to have the second half of its text normalized (the result of a
// "tail" job, run by the other worker, comes back as {id, tail}); then {id, result} or
// {id, error}. The buffer of a "tail" result, and of a tail, is transferred, not copied.

import { bothDigestsFile, sha256File, textDigestFile, textTailFile } from "./digest.js";

const JOBS = {
  sha256: sha256File,
  text: textDigestFile,
  both: bothDigestsFile,
  tail: textTailFile,
};
const tails = new Map(); // id -> resolve() of the split that waits for its tail

self.onmessage = async (event) => {
  const { id, job, file, options, tail } = event.data;
  if (tail !== undefined) {
    tails.get(id)?.(tail);
    tails.delete(id);
    return;
  }
  const onProgress = (bytes) => self.postMessage({ id, progress: bytes });
  const split = (mid) =>
    new Promise((resolve) => {
      tails.set(id, resolve);
      self.postMessage({ id, split: mid });
    });
  try {
    const result = await JOBS[job](file, { ...options, onProgress, split });
    self.postMessage({ id, result }, result?.buffer ? [result.buffer] : []);
  } catch (error) {
    self.postMessage({ id, error: `${error?.name ?? "Error"}: ${error?.message ?? error}` });
  }
};

self.postMessage({ ready: true });
