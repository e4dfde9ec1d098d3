// Content-Encoding decoding of HTTP bodies (gzip, deflate, br), bounded in output and
// tolerant of a body that was cut short: what can be decoded is.
import * as zlib from "node:zlib";

export interface DecodedBody {
  body: Uint8Array;
  /** The encoding(s) decoded, as listed in the header (lowercase), or "" when body is as sent. */
  decoded: string;
  /** Why decoding failed ("" when it did not). body then holds the bytes as sent. */
  error: string;
  /** The decoded body was longer than maxOutput, or its input was incomplete. */
  truncated: boolean;
}

const SUPPORTED = new Set(["gzip", "x-gzip", "deflate", "br"]);

/** The codings of a Content-Encoding value, in the order applied; null when one is unknown. */
export function parseContentEncoding(value: string): string[] | null {
  const codings = value
    .toLowerCase()
    .split(",")
    .map((c) => c.trim())
    .filter((c) => c && c !== "identity");
  return codings.every((c) => SUPPORTED.has(c)) ? codings : null;
}

function decodeOnce(coding: string, input: Uint8Array, maxOutput: number): Uint8Array {
  const zopts = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: maxOutput };
  switch (coding) {
    case "gzip":
    case "x-gzip":
      return zlib.gunzipSync(input, zopts);
    case "deflate":
      // "deflate" is meant to be zlib-wrapped; some servers send raw deflate.
      try {
        return zlib.inflateSync(input, zopts);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw e;
        return zlib.inflateRawSync(input, zopts);
      }
    case "br":
      return zlib.brotliDecompressSync(input, { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, maxOutputLength: maxOutput });
  }
  throw new Error(`unsupported coding ${coding}`);
}

/**
 * Decode `raw` (the body as sent, possibly only its first part) with the codings of
 * `contentEncoding`, keeping at most `maxOutput` bytes.
 */
export function decodeContent(contentEncoding: string, raw: Uint8Array, maxOutput: number, rawIsWhole: boolean): DecodedBody {
  const codings = parseContentEncoding(contentEncoding);
  if (!codings) return { body: raw, decoded: "", error: `unsupported Content-Encoding "${contentEncoding}"`, truncated: false };
  if (!codings.length || raw.length === 0) return { body: raw, decoded: "", error: "", truncated: false };
  let data = raw;
  let truncated = !rawIsWhole;
  try {
    // Codings were applied in order: undo them last to first.
    for (let i = codings.length - 1; i >= 0; i--) {
      const input = data;
      try {
        data = decodeOnce(codings[i], input, maxOutput);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE") throw e;
        // Longer than maxOutput decoded: find the longest input prefix whose output fits
        // (output only grows with the prefix), by bisection.
        truncated = true;
        let fits = 0;
        let tooLong = input.length;
        data = new Uint8Array(0);
        while (tooLong - fits > 1) {
          const mid = (fits + tooLong) >>> 1;
          try {
            data = decodeOnce(codings[i], input.subarray(0, mid), maxOutput);
            fits = mid;
          } catch (e2) {
            if ((e2 as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE") throw e2;
            tooLong = mid;
          }
        }
      }
    }
  } catch (e) {
    return { body: raw, decoded: "", error: `${codings.join(", ")}: ${(e as Error).message}`, truncated: false };
  }
  return { body: data, decoded: codings.join(", "), error: "", truncated };
}
