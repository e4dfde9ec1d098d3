// Where the next message starts, between messages: at a clean boundary a start line is
// expected where the last message ended; after damage (garbage, a stream joined mid-message,
// a gap, bad framing) it is searched for, and what is skipped is counted. Kept apart from the
// reading of messages because it is the one place that decides what is garbage.
//
// The search is stricter than the boundary test: in a stream joined mid-body any bytes may
// look like a method, so only a known method (found anywhere: a body has no line starts) or
// a token of capitals at the start of a line may begin a request.
import { CR, LF, SP } from "./bytes.ts";
import { MAX_LINE_METHOD } from "./limits.ts";
import { checkAfterMethod, checkRequestLine, checkStatusLine, Verdict } from "./start-line.ts";
import { HTTP1_METHOD_BYTES } from "../sniff.ts";

const H = 0x48;
const T = 0x54;

/** Methods looked for anywhere when resynchronising (a stream joined mid-body has no line start). */
const KNOWN_METHODS = HTTP1_METHOD_BYTES;

/** What an unknown method found while resynchronising may be made of. */
const CAPITAL = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") CAPITAL[c.charCodeAt(0)] = 1;

export class Resync {
  /** After garbage or a gap: only a known method (or a capitals token at a line start) begins a request. */
  strict = false;
  /** The byte just before the first unread one (LF at the start of the stream, 0 after a gap). */
  prevByte = LF;
  /** Bytes discarded since the last message while looking for a message start. */
  skipped = 0;
  /** Set by seek(), seekAtEnd() and search(): the position returned begins a whole start line. */
  found = false;

  constructor(private readonly isRequest: boolean) {}

  /**
   * Between messages, from `pos`: where the next message begins (found), else where the bytes
   * that may still become a start line begin (to be kept for more), else buf.length (nothing
   * to keep). What cannot be a message start is counted as skipped.
   */
  seek(buf: Uint8Array, pos: number): number {
    const len = buf.length;
    if (!this.strict) {
      // Empty lines between messages are tolerated, and are not garbage.
      while (pos < len && (buf[pos] === CR || buf[pos] === LF)) pos++;
      this.found = false;
      if (pos === len) return len;
      const v = this.isRequest ? checkRequestLine(buf, pos, false) : checkStatusLine(buf, pos, false);
      if (v === Verdict.Valid) {
        this.found = true;
        return pos;
      }
      if (v === Verdict.NeedMore) return pos;
      this.strict = true;
      this.skipped++;
      pos++;
    }
    const p = this.search(buf, pos, false);
    this.skipped += p - pos;
    if (this.found) this.strict = false;
    return p;
  }

  /**
   * At the end of the stream, bytes pending between messages: where a start line that lacks
   * only its line end begins (it still makes a truncated message; found), else -1, the bytes
   * counted as skipped (as everywhere, empty lines at a message boundary are not).
   */
  seekAtEnd(buf: Uint8Array): number {
    const len = buf.length;
    let pos = 0;
    this.found = false;
    if (!this.strict) {
      while (pos < len && (buf[pos] === CR || buf[pos] === LF)) pos++;
      if (pos === len) return -1;
      const v = this.isRequest ? checkRequestLine(buf, pos, true) : checkStatusLine(buf, pos, true);
      if (v === Verdict.Valid) {
        this.found = true;
        return pos;
      }
      this.skipped++;
      pos++;
    }
    const p = this.search(buf, pos, true);
    if (this.found) {
      this.skipped += p - pos;
      return p;
    }
    this.skipped += len - pos;
    return -1;
  }

  /**
   * Resynchronising: the first position at or after `from` where a message may start — a
   * whole start line (found), or bytes that may still become one — else buf.length.
   * Requests: a known method anywhere (a stream joined mid-body has no line start), or a
   * token of capitals at the start of a line, then SP target SP HTTP/1.x. Responses: HTTP/1.x SP 3DIGIT.
   */
  private search(buf: Uint8Array, from: number, eof: boolean): number {
    const len = buf.length;
    this.found = false;
    if (!this.isRequest) {
      let i = buf.indexOf(H, from);
      while (i >= 0) {
        // Most Hs are not followed by T: said without a call.
        if (i + 1 === len || buf[i + 1] === T) {
          const v = checkStatusLine(buf, i, eof);
          if (v !== Verdict.Invalid) {
            this.found = v === Verdict.Valid;
            return i;
          }
        }
        // A run of Hs is walked, not searched one indexOf call at a time.
        i = i + 1 < len && buf[i + 1] === H ? i + 1 : buf.indexOf(H, i + 1);
      }
      return len;
    }
    for (let s = buf.indexOf(SP, from); s >= 0; s = buf.indexOf(SP, s + 1)) {
      const p = this.methodBefore(buf, s, from);
      if (p < 0) continue;
      const v = checkAfterMethod(buf, p, s + 1, eof);
      if (v !== Verdict.Invalid) {
        this.found = v === Verdict.Valid;
        return p;
      }
    }
    if (eof) return len;
    // No SP yet: a run of capitals at the end may still become a method.
    let t = len;
    while (t > from && len - t < MAX_LINE_METHOD && CAPITAL[buf[t - 1]] === 1) t--;
    return t;
  }

  /** Where a plausible method ending just before the SP at `s` begins, or -1. */
  private methodBefore(buf: Uint8Array, s: number, from: number): number {
    let t = s;
    while (t > from && s - t <= MAX_LINE_METHOD && CAPITAL[buf[t - 1]] === 1) t--;
    const n = s - t;
    if (n < 3) return -1;
    if (n <= MAX_LINE_METHOD && (t > 0 ? buf[t - 1] : this.prevByte) === LF) return t;
    for (const m of KNOWN_METHODS) {
      const p = s - m.length;
      if (p < t) continue;
      let k = 0;
      while (k < m.length && buf[p + k] === m[k]) k++;
      if (k === m.length) return p;
    }
    return -1;
  }
}
