// The bytes held back between pushes: the start of a unit that must wait for more (an
// unfinished start line, head, chunk-size line, trailer line or chunk end), copied into one
// reusable buffer, with the timestamps of the pushes they came in. Everything else is read
// where it was pushed; holding only what must wait, and only up to that unit's bound, keeps
// the copies small and no pushed chunk referenced.
import { CR, EMPTY, LF } from "./bytes.ts";
import { MAX_HEAD } from "./limits.ts";

/** The first LF in buf[from, limit), or -1. A loop rather than indexOf, which would search on
 * past limit: limit bounds what one step appends to pending, and the work with it. */
function lfBefore(buf: Uint8Array, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (buf[i] === LF) return i;
  return -1;
}

/** A line end followed by an empty line (LF [CR] LF) wholly inside buf[from, limit); its end or -1. */
function findBlankLine(buf: Uint8Array, from: number, limit: number): number {
  let i = from;
  for (;;) {
    const nl = buf.indexOf(LF, i);
    if (nl < 0 || nl + 1 >= limit) return -1;
    const a = buf[nl + 1];
    if (a === LF) return nl + 2;
    if (a === CR && nl + 2 < limit && buf[nl + 2] === LF) return nl + 3;
    i = nl + 1;
  }
}

export class PendingBytes {
  /** The held bytes are bytes[0, length). */
  bytes: Uint8Array = EMPTY;
  length = 0;
  /** Set while the parser reads the held bytes: what it keeps of them must be copied (they are reused). */
  reading = false;
  /** Set by the cut methods: the bytes to append complete the unit that waits (or reach its bound), so reading it can make progress. */
  ready = false;
  /** Timestamps: held byte markAt[i] and those after it (up to the next mark) came in a push at markTs[i]. */
  private readonly markAt: number[] = [];
  private readonly markTs: number[] = [];

  /** The held bytes, as a view (valid until the next change). */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /**
   * A line is waiting (a start line, a chunk-size line, a trailer line): how much of data,
   * from off, to append — up to its LF, or as much as `cap` allows. `eager` (between
   * messages): ready at once, so that garbage is dropped as it comes.
   */
  cutLine(data: Uint8Array, off: number, cap: number, eager: boolean): number {
    const limit = Math.min(data.length, off + Math.max(1, cap - this.length));
    const nl = lfBefore(data, off, limit);
    if (nl >= 0) {
      this.ready = true;
      return nl + 1;
    }
    this.ready = eager || this.length + (limit - off) >= cap;
    return limit;
  }

  /** A head is waiting: how much of data, from off, to append — up to its blank line (which
   * may begin in the held bytes), or as much as `cap` allows. */
  cutHead(data: Uint8Array, off: number, cap: number): number {
    const n = data.length;
    const limit = Math.min(n, off + Math.max(1, cap - this.length));
    const held = this.bytes;
    const last = held[this.length - 1];
    let end = -1;
    if (last === LF) {
      if (data[off] === LF) end = off + 1;
      else if (data[off] === CR && off + 1 < n && data[off + 1] === LF) end = off + 2;
    } else if (last === CR && this.length >= 2 && held[this.length - 2] === LF && data[off] === LF) {
      end = off + 1;
    }
    if (end < 0) end = findBlankLine(data, off, limit);
    if (end >= 0 && end <= limit) {
      this.ready = true;
      return end;
    }
    this.ready = this.length + (limit - off) >= cap;
    return limit;
  }

  /** A single byte is waiting for the next (the LF after a chunk's CR): one more byte, and ready. */
  cutByte(off: number): number {
    this.ready = true;
    return off + 1;
  }

  /** Holds data[from, to) after what is held, as pushed at ts. */
  append(data: Uint8Array, from: number, to: number, ts: number): void {
    const add = to - from;
    if (add <= 0) return;
    const need = this.length + add;
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, Math.min(2 * this.bytes.length, MAX_HEAD + 4), 256));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    this.bytes.set(data.subarray(from, to), this.length);
    const marks = this.markTs.length;
    if (marks === 0 || this.markTs[marks - 1] !== ts) {
      this.markAt.push(this.length);
      this.markTs.push(ts);
    }
    this.length = need;
  }

  /** Holds data[from, to) instead of what is held (which was all read), keeping the buffer. */
  replace(data: Uint8Array, from: number, to: number, ts: number): void {
    this.length = 0;
    this.markAt.length = this.markTs.length = 0;
    this.append(data, from, to, ts);
  }

  /** The first k held bytes were read: they are dropped, the rest moves to the front. */
  drop(k: number): void {
    if (k >= this.length) {
      this.clear();
      return;
    }
    if (k > 0) {
      this.bytes.copyWithin(0, k, this.length);
      this.length -= k;
      // Timestamps: the mark that covers byte k now covers byte 0.
      let first = 0;
      while (first + 1 < this.markAt.length && this.markAt[first + 1] <= k) first++;
      this.markAt.splice(0, first);
      this.markTs.splice(0, first);
      this.markAt[0] = 0;
      for (let i = 1; i < this.markAt.length; i++) this.markAt[i] -= k;
    }
  }

  clear(): void {
    this.length = 0;
    this.markAt.length = 0;
    this.markTs.length = 0;
    // A large pending buffer (a long head once) is not kept for the life of the connection.
    if (this.bytes.length > 4096) this.bytes = EMPTY;
  }

  /** The timestamp of the push that brought held byte `at`; `otherwise` when nothing is held. */
  tsAt(at: number, otherwise: number): number {
    let i = this.markAt.length - 1;
    while (i > 0 && this.markAt[i] > at) i--;
    return i >= 0 ? this.markTs[i] : otherwise;
  }
}
