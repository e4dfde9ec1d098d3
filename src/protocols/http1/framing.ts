// Where a message's body ends: the ways its length is decided, as numbered cases in one
// place (framing), the Content-Length and Transfer-Encoding values they read, and the
// syntax of the chunked coding's size lines. The parser's states follow what this says;
// keeping every rule here means a change to framing is made, and reviewed, in one place.
import { CR, HTAB, LF, SP } from "./bytes.ts";
import { MAX_CHUNK_DIGITS } from "./limits.ts";

/** No Content-Length was seen. */
export const NO_LENGTH = -1;
/** A Content-Length that is not a number, or several that disagree. */
export const BAD_LENGTH = -2;
/** A chunk-size line that is not one. */
export const BAD_CHUNK_SIZE = -1;

/** The ways a body's length is decided; see `framing()`. */
export const enum Framing {
  None,
  Switch, // none, and the stream then belongs to another protocol
  Chunked,
  Length,
  UntilClose,
  Invalid,
}

/**
 * How the body of a message is delimited, decided in one place (after RFC 9112 §6.3):
 *  1. a response to HEAD, or with status 1xx, 204 or 304: no body
 *     (101 Switching Protocols: none, and the stream then belongs to another protocol);
 *  2. a 2xx response to CONNECT: none, and the stream becomes a tunnel;
 *  3. Transfer-Encoding whose last coding is chunked: chunked, whatever Content-Length says;
 *     any other Transfer-Encoding: a response runs until the stream ends, a request is invalid;
 *  4. Content-Length: that many bytes; one that is not a number, or several that disagree,
 *     is invalid (the message is emitted as "bad-framing" and the parser resynchronises);
 *  5. a request with neither: no body;
 *  6. a response with neither: the body runs until the stream ends.
 * `method` is that of the request a response answers ("" when unknown); `te` is null without
 * Transfer-Encoding; `contentLength` is NO_LENGTH without Content-Length.
 */
export function framing(isRequest: boolean, method: string, status: number, te: string | null, contentLength: number): Framing {
  if (!isRequest) {
    if (status === 101) return Framing.Switch;
    if (method === "HEAD" || status < 200 || status === 204 || status === 304) return Framing.None;
    if (method === "CONNECT" && status < 300) return Framing.Switch;
  }
  if (te !== null) {
    if (endsWithChunked(te)) return Framing.Chunked;
    return isRequest ? Framing.Invalid : Framing.UntilClose;
  }
  if (contentLength === BAD_LENGTH) return Framing.Invalid;
  if (contentLength !== NO_LENGTH) return Framing.Length;
  return isRequest ? Framing.None : Framing.UntilClose;
}

/** Does name equal `lower` (lowercase ASCII), ignoring case? */
function nameIs(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(l >= 0x61 && l <= 0x7a && c === l - 0x20)) return false;
  }
  return true;
}

/** Is the last coding of a Transfer-Encoding value "chunked"? */
function endsWithChunked(te: string): boolean {
  const last = te.slice(te.lastIndexOf(",") + 1).trim();
  return nameIs(last, "chunked");
}

/** A Content-Length value: digits, or a list of equal ones ("5, 5"); BAD_LENGTH when not. */
export function parseContentLength(value: string): number {
  let result = NO_LENGTH;
  let i = 0;
  const len = value.length;
  for (;;) {
    while (i < len && (value.charCodeAt(i) === SP || value.charCodeAt(i) === HTAB)) i++;
    const start = i;
    let n = 0;
    for (; i < len; i++) {
      const d = value.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (i === start || i - start > 15) return BAD_LENGTH;
    if (result !== NO_LENGTH && n !== result) return BAD_LENGTH;
    result = n;
    while (i < len && (value.charCodeAt(i) === SP || value.charCodeAt(i) === HTAB)) i++;
    if (i === len) return result;
    if (value.charCodeAt(i) !== 0x2c) return BAD_LENGTH;
    i++;
  }
}

/** The Content-Length of a head after one more Content-Length field: fields that disagree, or
 * one that is not a number, make it BAD_LENGTH for good. */
export function addContentLength(sofar: number, value: string): number {
  const v = parseContentLength(value);
  if (sofar === NO_LENGTH || v === BAD_LENGTH) return v;
  if (sofar !== BAD_LENGTH && v !== sofar) return BAD_LENGTH;
  return sofar;
}

/**
 * The size on the chunk-size line buf[pos, nl] (nl: its LF), or BAD_CHUNK_SIZE: hex digits
 * (leading zeros allowed, at most MAX_CHUNK_DIGITS others), then optional whitespace and
 * chunk extensions (ignored) up to the line end.
 */
export function parseChunkSize(buf: Uint8Array, pos: number, nl: number): number {
  let i = pos;
  while (i < nl && buf[i] === 0x30) i++; // leading zeros
  const zeros = i - pos;
  let size = 0;
  const digitsStart = i;
  for (; i < nl; i++) {
    const c = buf[i];
    const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (v < 0) break;
    size = size * 16 + v;
  }
  const digits = i - digitsStart;
  const c = buf[i];
  if (zeros + digits === 0 || digits > MAX_CHUNK_DIGITS || !(c === CR || c === LF || c === 0x3b || c === SP || c === HTAB)) {
    return BAD_CHUNK_SIZE;
  }
  return size;
}
