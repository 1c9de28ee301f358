// How much of a file the page may hash in memory (imported by app.js, which passes the limits to
// the workers running digest.js: the main thread need not load the hashing code for this).

export const WEBCRYPTO_MAX = 256 * 1024 * 1024;
const GIB = 1024 * 1024 * 1024;

/**
 * The in-memory limits for a device with `deviceMemory` GiB (navigator.deviceMemory: Chromium
 * reports 0.25 to 8, rounded down, 8 for anything larger; undefined elsewhere). Returns
 * {webCryptoMax, textWebCryptoMax}: the largest file the sha256 job reads whole, and the largest
 * normalized text the text job holds, both at least WEBCRYPTO_MAX.
 *
 * Each in-memory digest costs about twice its bytes (the buffer, and the copy WebCrypto makes of
 * it), so a file costs at most 2 * (deviceMemory / 8 + deviceMemory / 16) = 3/8 of the device's
 * memory at once: 1 GiB and 512 MiB (3 GiB at most) on 8 GiB or more, the old 256 MiB each on 2
 * GiB or less or when the browser does not say. A file within both limits is read once
 * (digest.js, bothDigestsFile): the file, a copy of it for the other worker to hash, and
 * WebCrypto's copies of each (the last of the normalized text, made in place) cost about 4 times
 * its bytes, at most 4/16 of the device's memory. A read or an allocation that fails anyway
 * falls back to streaming.
 */
export function memoryLimits(deviceMemory) {
  const gib = Number.isFinite(deviceMemory) && deviceMemory > 0 ? deviceMemory : 0;
  return {
    webCryptoMax: Math.max(WEBCRYPTO_MAX, Math.floor((gib * GIB) / 8)),
    textWebCryptoMax: Math.max(WEBCRYPTO_MAX, Math.floor((gib * GIB) / 16)),
  };
}
