// A module worker that computes the digests of one file at a time for app.js, off the main thread.
// Message in:  {id, job: "sha256" | "text" | "both", file, options}
// Messages out: {ready: true} once loaded; {id, progress: bytes} while it works, then
// {id, result} or {id, error}.

import { bothDigestsFile, sha256File, textDigestFile } from "./digest.js";

const JOBS = { sha256: sha256File, text: textDigestFile, both: bothDigestsFile };

self.onmessage = async (event) => {
  const { id, job, file, options } = event.data;
  const onProgress = (bytes) => self.postMessage({ id, progress: bytes });
  try {
    const result = await JOBS[job](file, { ...options, onProgress });
    self.postMessage({ id, result });
  } catch (error) {
    self.postMessage({ id, error: `${error?.name ?? "Error"}: ${error?.message ?? error}` });
  }
};

self.postMessage({ ready: true });
