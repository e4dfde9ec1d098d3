// Is there a request line or a status line at this position? The one test of a message
// start, used both at a clean message boundary and while resynchronising after damage.
//
// A verdict depends only on the bytes, never on where pushes split them: NeedMore is the
// answer whenever more bytes could change it, and at the end of the stream (eof) what is
// missing makes it Invalid instead. That keeps any split of a stream reading the same.
import { CR, LF, SP } from "./bytes.ts";
import { MAX_METHOD, MAX_START_LINE } from "./limits.ts";

export const enum Verdict {
  Valid,
  Invalid,
  NeedMore,
}

const HTTP1 = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e]; // "HTTP/1."

/** RFC 9110 tchar: what a method token is made of. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

/**
 * A request line at `p` whose method is any token (a clean message boundary):
 * `token SP target SP HTTP/1.d [CR] LF`.
 */
export function checkRequestLine(buf: Uint8Array, p: number, eof: boolean): Verdict {
  const len = buf.length;
  let i = p;
  while (i < len && TCHAR[buf[i]] === 1 && i - p <= MAX_METHOD) i++;
  if (i - p > MAX_METHOD) return Verdict.Invalid;
  if (i === len) return eof ? Verdict.Invalid : Verdict.NeedMore;
  if (i === p || buf[i] !== SP) return Verdict.Invalid;
  return checkAfterMethod(buf, p, i + 1, eof);
}

/** The rest of a request line starting at `p`, from `i`, just past the method's SP. */
export function checkAfterMethod(buf: Uint8Array, p: number, i: number, eof: boolean): Verdict {
  const len = buf.length;
  const limit = p + MAX_START_LINE; // the line end (LF) must lie before this
  const more = eof ? Verdict.Invalid : Verdict.NeedMore;
  const scanEnd = len < limit ? len : limit;
  const targetStart = i;
  while (i < scanEnd) {
    const c = buf[i];
    if (c <= SP || c === 0x7f) break;
    i++;
  }
  if (i === scanEnd) return i >= limit ? Verdict.Invalid : more;
  if (i === targetStart || buf[i] !== SP) return Verdict.Invalid;
  i++;
  for (let k = 0; k < HTTP1.length; k++, i++) {
    if (i >= len) return i >= limit ? Verdict.Invalid : more;
    if (buf[i] !== HTTP1[k]) return Verdict.Invalid;
  }
  if (i >= len) return i >= limit ? Verdict.Invalid : more;
  if (buf[i] < 0x30 || buf[i] > 0x39) return Verdict.Invalid;
  i++;
  if (i >= limit) return Verdict.Invalid;
  // At the end of the stream, a start line without its line end still counts.
  if (i === len) return eof ? Verdict.Valid : Verdict.NeedMore;
  if (buf[i] === CR) {
    i++;
    if (i >= limit) return Verdict.Invalid;
    if (i === len) return eof ? Verdict.Valid : Verdict.NeedMore;
  }
  return buf[i] === LF ? Verdict.Valid : Verdict.Invalid;
}

/** A status line at `p`: `HTTP/1.d SP 3DIGIT [SP reason] [CR] LF` (the SP before an empty reason may be missing). */
export function checkStatusLine(buf: Uint8Array, p: number, eof: boolean): Verdict {
  const len = buf.length;
  const limit = p + MAX_START_LINE;
  const more = eof ? Verdict.Invalid : Verdict.NeedMore;
  let i = p;
  for (let k = 0; k < HTTP1.length; k++, i++) {
    if (i === len) return more;
    if (buf[i] !== HTTP1[k]) return Verdict.Invalid;
  }
  if (i === len) return more;
  if (buf[i] < 0x30 || buf[i] > 0x39) return Verdict.Invalid;
  i++;
  if (i === len) return more;
  if (buf[i] !== SP) return Verdict.Invalid;
  i++;
  for (let k = 0; k < 3; k++, i++) {
    if (i === len) return more;
    const c = buf[i];
    if (c < (k === 0 ? 0x31 : 0x30) || c > 0x39) return Verdict.Invalid;
  }
  if (i === len) return eof ? Verdict.Valid : Verdict.NeedMore;
  const c = buf[i];
  if (c === LF) return Verdict.Valid;
  if (c === CR) {
    if (i + 1 === len) return eof ? Verdict.Valid : Verdict.NeedMore;
    return buf[i + 1] === LF ? Verdict.Valid : Verdict.Invalid;
  }
  if (c !== SP) return Verdict.Invalid;
  // The reason phrase: anything up to the line end.
  const nl = buf.indexOf(LF, i);
  if (nl >= 0) return nl < limit ? Verdict.Valid : Verdict.Invalid;
  if (len >= limit) return Verdict.Invalid;
  return eof ? Verdict.Valid : Verdict.NeedMore;
}
