// The creator's page (docs/design.md §6): hash the chosen files in the browser, ask the
// registry only for 5-hex-digit prefixes (GET v1/range/{prefix}), compare full digests here, and
// show one row per file:
//   <li data-testid="result" data-file="NAME" data-status="exact|normalized|absent">
// (while it works data-status is "hashing" or "checking"; "error" when the registry could not
// answer: a file that was not checked is never reported absent).
//
// Everything the registry or a file name supplies is untrusted: it reaches the page only as
// text (textContent, attributes), never as HTML.

const PREFIX_LENGTH = 5;
const HEX64 = /^[0-9a-f]{64}$/;
const MAX_PARALLEL_LOOKUPS = 4;
const KINDS = {
  sha256: { status: "exact", label: "same bytes (SHA-256)" },
  textSha256: { status: "normalized", label: "same text after norm-text-v1" },
};
const STATUS_TEXT = {
  hashing: "Hashing…",
  checking: "Checking…",
  exact: "Exact copy found",
  normalized: "Text copy found",
  absent: "Not found",
  error: "Not checked",
};

const base = new URL(".", document.baseURI);
const $ = (id) => document.getElementById(id);

import { memoryLimits } from "./limits.js";

// ---------------------------------------------------------------------------------------------
// Workers: one computes SHA-256, the other the norm-text-v1 digest, so both run at once; a file
// that fits in memory gets both from the second, which reads it and hands a copy of its bytes to
// the first for SHA-256 while it normalizes them (see bothDigestsFile, sha256Buffer and
// spareBuffer in digest.js; with ?split-min=N the first normalizes the second half of a text
// instead, textTailFile).

// What a job asks app.js for while it runs (worker.js): the job's handler that answers, and the
// answer when there is no handler or it fails.
const ASKED = {
  split: { handler: "onSplit", none: { cut: -1, size: -1 } }, // the tail of a text (textTailFile)
  hashElsewhere: { handler: "onHash", none: null }, // the SHA-256 of a copy (sha256Buffer)
  spare: { handler: "onSpare", none: null }, // a buffer to copy the file into (spareBuffer)
};

/** The buffer an answer moves to the worker: a spare buffer itself, or a tail's buffer. */
function transferable(answer) {
  if (answer instanceof ArrayBuffer) return [answer];
  return answer?.buffer instanceof ArrayBuffer ? [answer.buffer] : [];
}

class WorkerQueue {
  constructor() {
    this.worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
    this.pending = new Map();
    this.nextId = 0;
    let loaded;
    let failed;
    this.ready = new Promise((resolve, reject) => {
      loaded = resolve;
      failed = reject;
    });
    this.worker.onmessage = (event) => {
      const { id, progress, ask, value, result, error, ready } = event.data;
      if (ready) {
        loaded();
        return;
      }
      const job = this.pending.get(id);
      if (!job) return;
      if (progress !== undefined) {
        job.onProgress?.(progress);
        return;
      }
      if (ask !== undefined) {
        // Whatever happens to what the job asked for, it hears of it (ASKED's "none": it then
        // does the work itself or goes on without it).
        const { handler, none } = ASKED[ask];
        const asked = job[handler] ? job[handler](value).catch(() => none) : none;
        Promise.resolve(asked).then((found) => {
          const answer = found ?? none;
          this.worker.postMessage({ id, kind: ask, answer }, transferable(answer));
        });
        return;
      }
      this.pending.delete(id);
      if (error !== undefined) job.reject(new Error(error));
      else job.resolve(result);
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      failed(new Error(event.message || "the hashing worker did not start"));
      for (const job of this.pending.values())
        job.reject(new Error(event.message || "worker failed"));
      this.pending.clear();
    };
  }

  run(job, file, options, { onProgress, onSplit, onHash, onSpare } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress, onSplit, onHash, onSpare });
      // A "digest" job's buffer is moved to the worker, not copied.
      this.worker.postMessage({ id, job, file, options }, job === "digest" ? [file] : []);
    });
  }
}

let workers = null;
function getWorkers() {
  workers ??= { sha256: new WorkerQueue(), text: new WorkerQueue() };
  return workers;
}

// How much of a file may be hashed in memory (the fast path) depends on the device's memory
// (memoryLimits in digest.js). Test hooks (query string): ?device-memory=GiB stands for
// navigator.deviceMemory; ?webcrypto-max=N (both limits), ?text-webcrypto-max=N, ?chunk=N,
// ?split-min=N (the shortest text normalized in two parts) and ?split-at=F (where it is cut, a
// fraction of its length) set the thresholds themselves; ?hash-elsewhere=0 has the worker that
// reads a file hash its raw bytes itself, ?one-read=0 has each worker read the file (both to
// compare paths: bench_page.py --query).
const params = new URLSearchParams(location.search);
const deviceMemory = params.has("device-memory")
  ? Number(params.get("device-memory"))
  : navigator.deviceMemory;
const hashOptions = memoryLimits(deviceMemory);
if (params.has("webcrypto-max")) {
  hashOptions.webCryptoMax = hashOptions.textWebCryptoMax = Number(params.get("webcrypto-max"));
}
if (params.has("text-webcrypto-max")) {
  hashOptions.textWebCryptoMax = Number(params.get("text-webcrypto-max"));
}
if (params.has("chunk")) hashOptions.chunkSize = Number(params.get("chunk"));
if (params.has("split-min")) hashOptions.splitMin = Number(params.get("split-min"));
if (params.has("split-at")) hashOptions.splitAt = Number(params.get("split-at"));
hashOptions.hashElsewhere = params.get("hash-elsewhere") !== "0";

// ---------------------------------------------------------------------------------------------
// The registry: range queries, at most MAX_PARALLEL_LOOKUPS at once, each prefix asked once.

class RegistryError extends Error {}

const ranges = new Map(); // prefix -> Promise of Map(digest -> [{kind, matches}])
let active = 0;
const waiting = [];

async function limited(task) {
  if (active >= MAX_PARALLEL_LOOKUPS) await new Promise((resolve) => waiting.push(resolve));
  active++;
  try {
    return await task();
  } finally {
    active--;
    waiting.shift()?.();
  }
}

function range(prefix) {
  if (!ranges.has(prefix)) {
    const answer = limited(() => fetchRange(prefix));
    answer.catch(() => ranges.delete(prefix)); // ask again next time
    ranges.set(prefix, answer);
  }
  return ranges.get(prefix);
}

async function fetchRange(prefix) {
  if (!/^[0-9a-f]{5}$/.test(prefix)) throw new Error(`not a prefix: ${prefix}`);
  const url = new URL(`v1/range/${prefix}`, base);
  let response;
  try {
    response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new RegistryError(
      `The registry at ${base.origin} could not be reached. Check your connection and try again.`,
    );
  }
  if (response.status === 429) {
    const after = response.headers.get("Retry-After");
    const wait =
      after && /^\d+$/.test(after) ? ` Try again in ${after} s.` : " Try again in a moment.";
    throw new RegistryError(
      `The registry is limiting lookups from your address (HTTP 429).${wait}`,
    );
  }
  if (!response.ok) {
    let detail = "";
    try {
      const body = await response.json();
      if (typeof body?.error === "string") detail = `: ${body.error.slice(0, 200)}`;
    } catch {
      // no JSON error body
    }
    throw new RegistryError(`The registry answered HTTP ${response.status}${detail}.`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new RegistryError("The registry sent an answer that is not JSON.");
  }
  return parseRange(prefix, body);
}

const isText = (value) => typeof value === "string";

/** Check the shape of a range answer and index it by digest; throw RegistryError if malformed. */
function parseRange(prefix, body) {
  const bad = (what) => new RegistryError(`The registry sent a malformed answer (${what}).`);
  if (body === null || typeof body !== "object" || !Array.isArray(body.digests))
    throw bad("no digests");
  if (body.prefix !== prefix) throw bad("another prefix");
  const index = new Map();
  for (const item of body.digests) {
    if (
      !item ||
      !isText(item.digest) ||
      !HEX64.test(item.digest) ||
      !item.digest.startsWith(prefix)
    ) {
      throw bad("a digest");
    }
    if (!Object.hasOwn(KINDS, item.kind) || !Array.isArray(item.matches)) throw bad("a kind");
    const matches = item.matches.map((m) => {
      const publisher = Array.isArray(m?.publisher) ? m.publisher : [m?.publisher];
      if (
        !m ||
        !isText(m.card) ||
        !HEX64.test(m.card) ||
        !isText(m.name) ||
        !isText(m.version) ||
        !isText(m.entry) ||
        !publisher.every(isText)
      ) {
        throw bad("a match");
      }
      return {
        card: m.card,
        name: m.name,
        version: m.version,
        entry: m.entry,
        publisher,
        kind: item.kind,
      };
    });
    const list = index.get(item.digest) ?? [];
    list.push({ kind: item.kind, matches });
    index.set(item.digest, list);
  }
  return index;
}

// ---------------------------------------------------------------------------------------------
// Rows

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};

function formatSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// A single-quoted POSIX shell word: safe for any file name.
const shellQuote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

const rows = [];

class Row {
  constructor(file) {
    this.file = file;
    this.sha256 = null;
    this.text = null; // {digest, reason}
    this.node = el("li", { class: "result", "data-testid": "result", "data-file": file.name });
    this.badge = el("span", { class: "badge" });
    const head = el(
      "div",
      { class: "result-head" },
      el("span", { class: "file-name", text: file.name }),
      el("span", { class: "file-size muted", text: formatSize(file.size) }),
      this.badge,
    );
    this.progress = el("progress", { max: "1", value: "0", "aria-label": `Hashing ${file.name}` });
    this.body = el("div", { class: "result-body" });
    this.node.append(head, this.progress, this.body);
    this.setStatus("hashing");
  }

  setStatus(status) {
    this.status = status;
    this.node.dataset.status = status;
    this.badge.className = `badge badge-${status}`;
    this.badge.textContent = STATUS_TEXT[status];
  }

  async hash() {
    const done = { sha256: 0, text: 0 };
    const size = Math.max(this.file.size, 1);
    const update = () =>
      (this.progress.value = Math.min(1, (done.sha256 + done.text) / (2 * size)));
    const job = (name, onProgress, onSplit, onHash, onSpare) =>
      getWorkers()[name === "both" ? "text" : name].run(name, this.file, hashOptions, {
        onProgress,
        onSplit,
        onHash,
        onSpare,
      });
    const started = performance.now();
    // A file that fits in memory: both digests from one read, in one worker (bothDigestsFile),
    // the SHA-256 of a copy of its bytes by the other worker meanwhile (or, split, the second
    // half of its text: textTailFile).
    const tail = (mid) => getWorkers().sha256.run("tail", this.file, { ...hashOptions, mid });
    // The SHA-256 of a copy of the file's bytes, by the other worker (bothDigestsFile), made in
    // a buffer that worker has written the pages of meanwhile.
    const elsewhere = hashOptions.hashElsewhere
      ? (buffer) => getWorkers().sha256.run("digest", buffer, {})
      : undefined;
    const spareBuffer = hashOptions.hashElsewhere
      ? (size) => getWorkers().sha256.run("spare", size, {}).then((result) => result.buffer)
      : undefined;
    let both =
      params.get("one-read") === "0"
        ? null
        : await job(
            "both",
            (bytes) => ((done.sha256 = done.text = bytes), update()),
            tail,
            elsewhere,
            spareBuffer,
          );
    if (both === null) {
      const one = (name) =>
        job(name, (bytes) => ((done[name] = bytes), update())).then(
          (result) => ((done[name] = size), update(), result), // a job may stop early
        );
      const [sha256, text] = await Promise.all([one("sha256"), one("text")]);
      both = { sha256, text };
    }
    const { sha256: hash, text: normalized } = both;
    // The jobs' phases (digest.js), in milliseconds since the row started, for bench_page.py.
    const origin = performance.timeOrigin + started;
    const phases = { ...hash.phases, ...normalized.phases, ...both.phases };
    for (const name of Object.keys(phases)) phases[name] = Math.round(phases[name] - origin);
    this.sha256 = hash.digest;
    this.text = normalized;
    // Timings (milliseconds) for benchmarks/bench_page.py: each job, and both as the creator waits.
    Object.assign(this.node.dataset, {
      sha256: hash.digest,
      hashMethod: hash.method,
      hashMs: hash.ms.toFixed(1),
      textMs: normalized.ms.toFixed(1),
      digestsMs: (performance.now() - started).toFixed(1),
      phases: JSON.stringify(phases),
    });
    if (normalized.digest) this.node.dataset.textSha256 = normalized.digest;
    if (normalized.halves) this.node.dataset.textHalves = "true"; // normalized in two halves
    this.progress.remove();
  }

  async check() {
    this.setStatus("checking");
    this.body.replaceChildren();
    const wanted = [["sha256", this.sha256]];
    if (this.text?.digest) wanted.push(["textSha256", this.text.digest]);
    const answers = await Promise.all(
      wanted.map(([, digest]) => range(digest.slice(0, PREFIX_LENGTH))),
    );
    const matches = [];
    wanted.forEach(([kind, digest], k) => {
      for (const entry of answers[k].get(digest) ?? []) {
        if (entry.kind === kind) matches.push(...entry.matches);
      }
    });
    this.render(matches);
  }

  fail(message) {
    this.setStatus("error");
    this.body.replaceChildren(el("p", { class: "error-text", text: message }), this.digests());
  }

  digests() {
    const list = el("dl", { class: "digests" });
    list.append(
      el("dt", { text: "SHA-256" }),
      el("dd", {}, el("code", { text: this.sha256 ?? "—" })),
    );
    const reason = this.text?.reason === "invalid UTF-8" ? "not UTF-8 text" : this.text?.reason;
    const text = this.text?.digest
      ? el("code", { text: this.text.digest })
      : el("span", { class: "muted", text: `none: ${reason ?? "not computed"}` });
    list.append(el("dt", { text: "norm-text-v1" }), el("dd", {}, text));
    return el(
      "details",
      { class: "digest-details" },
      el("summary", { text: "Digests computed in this browser" }),
      list,
    );
  }

  render(matches) {
    const exact = matches.filter((m) => m.kind === "sha256");
    // An entry that holds these bytes holds this text too: list it once, as exact.
    const listed = new Set(exact.map((m) => `${m.card}\n${m.entry}`));
    const normalized = matches.filter(
      (m) => m.kind === "textSha256" && !listed.has(`${m.card}\n${m.entry}`),
    );
    const status = exact.length ? "exact" : normalized.length ? "normalized" : "absent";
    this.setStatus(status);
    const cards = new Set(matches.map((m) => m.card));
    const parts = [];
    if (status === "absent") {
      parts.push(
        el("p", {
          class: "summary",
          text:
            "No registered dataset lists these bytes" +
            (this.text?.digest ? " or this text." : "."),
        }),
      );
      parts.push(
        el(
          "p",
          { class: "muted small" },
          "Edited copies and excerpts are not looked for here: ",
          el("code", { text: "provenance registry lookup" }),
          " also sends fingerprints to find them.",
        ),
      );
    } else {
      const what =
        status === "exact"
          ? "this exact file"
          : "this text (after norm-text-v1, not byte for byte)";
      const who =
        cards.size === 1
          ? "One registered dataset lists"
          : `${cards.size} registered datasets list`;
      parts.push(el("p", { class: "summary", text: `${who} ${what}.` }));
      const list = el("ul", { class: "matches" });
      for (const match of [...exact, ...normalized]) list.append(this.renderMatch(match));
      parts.push(list);
      parts.push(this.renderVerify([...exact, ...normalized][0]));
    }
    parts.push(this.digests());
    this.body.replaceChildren(...parts);
  }

  renderMatch(match) {
    const cardUrl = new URL(`v1/cards/${match.card}`, base).href;
    const publisher = match.publisher.map((keyid) =>
      el("code", { class: "keyid", title: keyid, text: keyid.slice(0, 16) + "…" }),
    );
    const details = el(
      "dl",
      { class: "match-details" },
      el("dt", { text: "Entry" }),
      el("dd", {}, el("code", { text: match.entry })),
      el("dt", { text: "Publisher" }),
      el("dd", {}, ...publisher.flatMap((node, k) => (k ? [" ", node] : [node]))),
      el("dt", { text: "Matched by" }),
      el("dd", { text: KINDS[match.kind].label }),
    );
    const links = el(
      "p",
      { class: "match-links" },
      el("a", { href: cardUrl, text: "Card" }),
      el("a", { href: `${cardUrl}/envelope`, text: "Signed card" }),
      el("a", { href: `${cardUrl}/manifest`, text: "Manifest" }),
    );
    return el(
      "li",
      { class: "match", "data-testid": "match", "data-card": match.card, "data-kind": match.kind },
      el(
        "p",
        { class: "match-title" },
        el("a", { href: cardUrl, text: match.name }),
        el("span", { class: "version", text: match.version }),
      ),
      details,
      links,
    );
  }

  renderVerify(match) {
    const cardUrl = new URL(`v1/cards/${match.card}`, base).href;
    const command = [
      `curl -fsS -o card.json ${shellQuote(`${cardUrl}/envelope`)}`,
      `curl -fsS -o manifest.jsonl ${shellQuote(`${cardUrl}/manifest`)}`,
      `provenance lookup ${shellQuote(this.file.name)} --manifest manifest.jsonl \\`,
      `    --card card.json --trust TRUST.json \\`,
      `    --proof-out ${shellQuote(`${this.file.name}.proof.json`)}`,
    ].join("\n");
    const code = el("code", { text: command });
    const copy = el("button", { type: "button", class: "button small", text: "Copy" });
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(command);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Select and copy";
      }
    });
    const after =
      match.kind === "sha256"
        ? "The lookup writes an inclusion proof of the entry, which provenance proof verify checks against the signed card alone."
        : "The lookup confirms the text match against the signed manifest (proofs cover exact copies only).";
    return el(
      "div",
      { class: "verify" },
      el(
        "p",
        {},
        el("strong", { text: "Verified by the registry: " }),
        "it admitted these cards only after checking the publisher's signature and the manifest, and logged them. To check for yourself, and get a proof to show others:",
      ),
      el(
        "div",
        { class: "command" },
        el("div", { class: "command-bar" }, el("span", { text: "Shell" }), copy),
        el("pre", {}, code),
      ),
      el("p", {
        class: "muted small",
        text: `TRUST.json: your trust store with the publisher's key (provenance trust add). ${after}`,
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The page

function showBanner(message) {
  $("banner-text").textContent = message;
  $("banner").hidden = false;
}

function updateSummary() {
  const counts = {};
  for (const row of rows) counts[row.status] = (counts[row.status] ?? 0) + 1;
  const busy = (counts.hashing ?? 0) + (counts.checking ?? 0);
  const parts = [`${rows.length} file${rows.length === 1 ? "" : "s"}`];
  const counted = {
    exact: ["exact copy", "exact copies"],
    normalized: ["text copy", "text copies"],
    absent: ["not found", "not found"],
    error: ["not checked", "not checked"],
  };
  for (const [status, [one, many]] of Object.entries(counted)) {
    if (counts[status]) parts.push(`${counts[status]} ${counts[status] === 1 ? one : many}`);
  }
  if (busy) parts.push(`${busy} in progress`);
  $("summary").textContent = parts.join(" · ");
  document.body.dataset.busy = busy ? "true" : "false";
}

async function check(row) {
  try {
    await row.check();
  } catch (error) {
    const message =
      error instanceof RegistryError ? error.message : `Could not check: ${error.message}`;
    row.fail(message);
    showBanner(message);
  }
  updateSummary();
}

let hashing = Promise.resolve();

function addFiles(files) {
  if (!files.length) return;
  $("results-section").hidden = false;
  for (const file of files) {
    const row = new Row(file);
    rows.push(row);
    $("results").append(row.node);
    // One file at a time (both digests at once): bounded memory, steady progress.
    hashing = hashing.then(async () => {
      try {
        await row.hash();
      } catch (error) {
        row.fail(`Could not read this file: ${error.message}`);
        updateSummary();
        return;
      }
      check(row);
    });
  }
  updateSummary();
}

function retry() {
  $("banner").hidden = true;
  for (const row of rows) if (row.status === "error" && row.sha256) check(row);
}

/** The files dropped, with the files inside dropped folders (each folder in name order). */
async function droppedFiles(transfer) {
  if (!transfer) return [];
  // Entries must be taken during the drop event; reading them can wait.
  const entries = [...transfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.())
    .filter(Boolean);
  if (!entries.length) return [...transfer.files];
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      const children = [];
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        children.push(...batch);
      }
      children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const child of children) await walk(child);
    }
  };
  for (const entry of entries) await walk(entry);
  return files;
}

function setup() {
  const input = $("files");
  const zone = $("dropzone");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    droppedFiles(event.dataTransfer).then(addFiles, (error) =>
      showBanner(`Could not read what was dropped: ${error.message}`),
    );
  });
  // A file dropped next to the zone must not make the browser open it (and leave the page).
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("retry").addEventListener("click", retry);
  // Start the workers now, so that the page works on once loaded even if the network goes.
  const { sha256, text } = getWorkers();
  Promise.all([sha256.ready, text.ready]).then(
    () => (document.body.dataset.ready = "true"),
    (error) => showBanner(`This browser could not start hashing: ${error.message}`),
  );
}

setup();
