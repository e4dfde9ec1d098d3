// Content-Encoding decoding of message bodies (HTTP/1 and HTTP/2): gzip (x-gzip), deflate (zlib-wrapped or raw)
// and br, with node:zlib's synchronous functions.
//
// Two things make this more than a call to gunzipSync:
// - the body may be only the first part of what was sent (maxBody, a cut stream, lost bytes):
//   then the decoders run with a flushing finishFlush, so that a prefix decodes as far as it
//   goes instead of failing with "unexpected end of file". A whole body is decoded strictly,
//   so that one that is corrupt or ends early says so;
// - the decoded body may be far larger than the encoded one: output is capped at maxOutput.
//   zlib's maxOutputLength throws (ERR_BUFFER_TOO_LARGE) rather than truncating, in Bun as in
//   Node, so when it does, the longest prefix of the input whose output fits is searched for.
import * as zlib from "node:zlib";

export type ContentCoding = "gzip" | "deflate" | "br";

export interface DecodedContent {
  /** The decoded body, at most maxOutput bytes; the input itself when nothing was decoded. */
  body: Uint8Array;
  /** The codings decoded, in the order the header lists them ("gzip", "gzip, br"); "" when body is the input. */
  encoding: string;
  /** Why the input could not be decoded ("" when it could, or when there was nothing to decode). */
  error: string;
  /** Output stopped at maxOutput: the decoded body is longer than body. */
  capped: boolean;
}

export interface ParsedContentEncoding {
  /** The codings in the order they were applied (the header's order), "identity" left out, "x-gzip" read as "gzip". */
  codings: ContentCoding[];
  /** The first coding tapwire cannot decode, as written in the header; "" when there is none. */
  unsupported: string;
}

const EMPTY = new Uint8Array(0);

/** Reads a Content-Encoding value (several header fields joined with ","). */
export function parseContentEncoding(value: string): ParsedContentEncoding {
  const codings: ContentCoding[] = [];
  for (const item of value.split(",")) {
    const coding = item.trim().toLowerCase();
    if (coding === "" || coding === "identity") continue;
    if (coding === "gzip" || coding === "x-gzip") codings.push("gzip");
    else if (coding === "deflate") codings.push("deflate");
    else if (coding === "br") codings.push("br");
    else return { codings, unsupported: item.trim() };
  }
  return { codings, unsupported: "" };
}

const ZLIB_FLUSH = zlib.constants.Z_SYNC_FLUSH;
const ZLIB_FINISH = zlib.constants.Z_FINISH;
const BROTLI_FLUSH = zlib.constants.BROTLI_OPERATION_FLUSH;
const BROTLI_FINISH = zlib.constants.BROTLI_OPERATION_FINISH;

/** "deflate" is meant to be zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send raw
 * deflate: a zlib header is two bytes whose first says method 8 and which together are a
 * multiple of 31. */
function isZlibWrapped(input: Uint8Array): boolean {
  return input.length >= 2 && (input[0] & 0x0f) === 8 && (input[0] >> 4) <= 7 && ((input[0] << 8) | input[1]) % 31 === 0;
}

/**
 * One coding undone, at most maxOutput bytes out; throws ERR_BUFFER_TOO_LARGE beyond that.
 * `whole`: the input is all of the encoded data, and must end as the format says it does.
 */
function decodeOne(coding: ContentCoding, input: Uint8Array, maxOutput: number, whole: boolean): Uint8Array {
  let out: Buffer;
  switch (coding) {
    case "gzip": {
      const options = { finishFlush: whole ? ZLIB_FINISH : ZLIB_FLUSH, maxOutputLength: maxOutput };
      out = zlib.gunzipSync(input, options);
      break;
    }
    case "deflate": {
      const options = { finishFlush: whole ? ZLIB_FINISH : ZLIB_FLUSH, maxOutputLength: maxOutput };
      out = isZlibWrapped(input) ? zlib.inflateSync(input, options) : zlib.inflateRawSync(input, options);
      break;
    }
    case "br":
      out = zlib.brotliDecompressSync(input, { finishFlush: whole ? BROTLI_FINISH : BROTLI_FLUSH, maxOutputLength: maxOutput });
      break;
  }
  // A plain Uint8Array over the same memory: bodies are Uint8Array, whatever decoded them.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function isTooLarge(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "ERR_BUFFER_TOO_LARGE";
}

/** Most decode attempts made when searching for the prefix that fits. */
const MAX_ATTEMPTS = 40;

/**
 * One coding undone with the output capped at maxOutput bytes. When the whole input decodes
 * to more, the longest input prefix whose output fits is searched for (output only grows with
 * the prefix): by interpolation from the last prefix that fit (output is roughly proportional
 * to input), with a bisection step after every miss so that the search always narrows. It
 * stops once the output is within 1/64 of maxOutput.
 */
function decodeCapped(coding: ContentCoding, input: Uint8Array, maxOutput: number, whole: boolean): { out: Uint8Array; capped: boolean } {
  try {
    return { out: decodeOne(coding, input, maxOutput, whole), capped: false };
  } catch (e) {
    if (!isTooLarge(e)) throw e;
  }
  const goodEnough = maxOutput - (maxOutput >> 6);
  let fits = 0; // longest prefix known to fit
  let fitsOut: Uint8Array = EMPTY;
  let tooLong = input.length; // shortest prefix known not to
  let bisect = false;
  for (let attempt = 0; attempt < MAX_ATTEMPTS && tooLong - fits > 1 && fitsOut.length < goodEnough; attempt++) {
    let mid = fits + ((tooLong - fits) >> 1);
    if (!bisect && fitsOut.length > 0) {
      const guess = Math.floor((fits * (maxOutput - (maxOutput >> 7))) / fitsOut.length);
      if (guess > fits && guess < tooLong) mid = guess;
    }
    try {
      fitsOut = decodeOne(coding, input.subarray(0, mid), maxOutput, false);
      fits = mid;
      bisect = false;
    } catch (e) {
      if (!isTooLarge(e)) throw e;
      tooLong = mid;
      bisect = true;
    }
  }
  return { out: fitsOut, capped: true };
}

/**
 * Undoes the Content-Encoding `contentEncoding` of `raw`, keeping at most maxOutput bytes.
 * `whole`: raw is the whole body as sent, so it must decode completely (else error); when it
 * is only the first part, it decodes as far as it goes. Codings listed together ("gzip, br")
 * were applied in that order and are undone last to first; one that cannot be decoded
 * ("zstd", "compress"), or data that does not decode, leaves the body as sent, with the
 * reason in error. Never throws.
 */
export function decodeContent(contentEncoding: string, raw: Uint8Array, maxOutput: number, whole = true): DecodedContent {
  const { codings, unsupported } = parseContentEncoding(contentEncoding);
  if (unsupported) return { body: raw, encoding: "", error: `unsupported content coding "${unsupported}"`, capped: false };
  if (codings.length === 0 || raw.length === 0) return { body: raw, encoding: "", error: "", capped: false };
  if (!(maxOutput >= 1)) return { body: EMPTY, encoding: codings.join(", "), error: "", capped: true };
  let data: Uint8Array = raw;
  let capped = false;
  for (let i = codings.length - 1; i >= 0; i--) {
    try {
      const step = decodeCapped(codings[i], data, maxOutput, whole && !capped);
      data = step.out;
      // A capped intermediate result still decodes, as a prefix, through the codings left.
      capped ||= step.capped;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return { body: raw, encoding: "", error: `${codings[i]}: ${why}`, capped: false };
    }
  }
  return { body: data, encoding: codings.join(", "), error: "", capped };
}
