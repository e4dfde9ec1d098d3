// An incremental HTTP/1.x parser for one direction of a connection: bytes in (push), whole
// messages out (onMessage). Pure: no I/O, no clocks; timestamps come in with the bytes.
//
// Bytes are read where they were pushed. Only a unit that must wait for more bytes (an
// unfinished start line, head, chunk-size line or trailer line) is copied aside, into one
// reusable buffer of bounded size ("pending"). Bodies are kept as views of the pushed chunks,
// at most maxBody bytes, and joined once when the message ends.
//
// Damage is expected — a stream joined in the middle, garbage, bytes lost in the kernel
// (gap), a stream that ends early — and answered the same way everywhere: the message in
// progress is emitted saying what is missing, and the parser looks for the next plausible
// start line, counting what it skips. It never throws and never waits without bound.
//
// Every verdict (is this a start line, is this head too long, ...) depends only on the bytes,
// never on where pushes split them: "need more" is answered whenever more bytes could change
// it. That is what makes any split of a stream give the same messages as one push.
import { decodeContent } from "./content-decoding.ts";
import { CR, decodeText, EMPTY, LF, SP } from "./bytes.ts";
import { BAD_CHUNK_SIZE, Framing, framing, NO_LENGTH, parseChunkSize } from "./framing.ts";
import { type BodyHeaders, findHeadEnd, NOT_FOUND, readHead, TOO_LONG } from "./head.ts";
import { addField } from "./header-fields.ts";
import { DEFAULT_MAX_BODY, MAX_CHUNK_LINE, MAX_HEAD, MAX_LINE_METHOD, MAX_PARTS, MAX_START_LINE } from "./limits.ts";
import { checkAfterMethod, checkRequestLine, checkStatusLine, Verdict } from "./start-line.ts";
import type { Http1Message, Http1Parser, Http1ParserOptions, Incompleteness } from "./types.ts";

const enum State {
  Start, // between messages: looking for a start line
  Head, // a start line was accepted: waiting for the end of the head
  Length, // Content-Length body: `remaining` bytes to go
  ChunkSize, // a chunk-size line
  ChunkData, // `remaining` bytes of a chunk's data
  ChunkEnd, // the CRLF after a chunk's data
  Trailers, // trailer lines after the last chunk
  Close, // a body that ends with the stream
  Upgraded, // the stream belongs to another protocol: bytes are counted, not read
}

const H = 0x48;
const T = 0x54;

const NEED_MORE = -1;

/** Methods looked for anywhere when resynchronising (a stream joined mid-body has no line start). */
const KNOWN_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"].map((m) =>
  Uint8Array.from(m, (c) => c.charCodeAt(0)),
);

/** What an unknown method found while resynchronising may be made of. */
const CAPITAL = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") CAPITAL[c.charCodeAt(0)] = 1;

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

/** The first LF in buf[from, limit), or -1. A loop rather than indexOf, which would search on
 * past limit: limit bounds what one step appends to pending, and the work with it. */
function lfBefore(buf: Uint8Array, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (buf[i] === LF) return i;
  return -1;
}

class Parser implements Http1Parser {
  private readonly isRequest: boolean;
  private readonly maxBody: number;
  private readonly onMessage: (message: Http1Message) => void;
  private readonly onRequestHead: ((method: string) => void) | undefined;
  private readonly onUpgradedBytes: ((data: Uint8Array, ts: number) => void) | undefined;
  private readonly onUpgradedGap: ((lost: number, ts: number) => void) | undefined;
  /** Methods of requests whose responses have not begun (response parsers). */
  private readonly methods: string[] = [];

  private state = State.Start;
  /** After garbage or a gap: only a known method (or a capitals token at a line start) begins a request. */
  private strict = false;
  /** The byte just before the first unread one (LF at the start of the stream, 0 after a gap). */
  private prevByte = LF;
  private skipped = 0;
  private upgradedCount = 0;
  private lastTs = 0;
  /** Inside run(): a callback's handOver() must not touch the buffers being read. */
  private running = false;

  // Bytes waiting for more: pend[0, pendLen), with the timestamps of the pushes they came in.
  private pend: Uint8Array = EMPTY;
  private pendLen = 0;
  private readonly pendMarkAt: number[] = [];
  private readonly pendMarkTs: number[] = [];
  private inPend = false;
  /** Set by cutFor(): the bytes appended complete the unit pending waits for (or hit its bound). */
  private cutReady = false;
  /** Set by findStart(): the candidate returned is a whole start line. */
  private foundWhole = false;
  /** Set by needMore(): where the bytes to keep for the next push begin. */
  private keepAt = 0;

  // The message in progress.
  private msg: Http1Message | null = null;
  private headStartTs = 0;
  private announced = false;
  private remaining = 0;
  private readonly bodyHeaders: BodyHeaders = { contentLength: NO_LENGTH, transferEncoding: null, contentEncoding: "" };
  private trailerBytes = 0;
  private readonly parts: Uint8Array[] = [];
  private acc: Uint8Array | null = null;
  private kept = 0;
  /** False once bytes were lost inside the body: body then holds what came before the gap. */
  private keeping = true;

  constructor(kind: "request" | "response", options: Http1ParserOptions) {
    this.isRequest = kind === "request";
    const max = options.maxBody;
    this.maxBody = max === undefined || Number.isNaN(max) ? DEFAULT_MAX_BODY : Math.max(0, Math.floor(max));
    this.onMessage = options.onMessage;
    this.onRequestHead = options.onRequestHead;
    this.onUpgradedBytes = options.onUpgradedBytes;
    this.onUpgradedGap = options.onUpgradedGap;
  }

  get upgraded(): boolean {
    return this.state === State.Upgraded;
  }
  get upgradedBytes(): number {
    return this.upgradedCount;
  }
  get pendingSkipped(): number {
    return this.skipped;
  }

  expectResponseTo(method: string): void {
    this.methods.push(method);
  }

  push(data: Uint8Array, ts: number): void {
    this.lastTs = ts;
    const n = data.length;
    if (this.state === State.Upgraded) {
      this.upgradedCount += n;
      this.onUpgradedBytes?.(data, ts);
      return;
    }
    let off = 0;
    while (this.pendLen > 0 && off < n) {
      const cut = this.cutFor(data, off);
      this.appendPend(data, off, cut, ts);
      off = cut;
      if (this.cutReady) this.runPend(ts);
    }
    if (off < n) {
      const keepAt = this.run(data, off, ts);
      if (keepAt < n) {
        this.pendLen = 0;
        this.pendMarkAt.length = this.pendMarkTs.length = 0;
        this.appendPend(data, keepAt, n, ts);
      }
    }
  }

  gap(lost: number, ts: number): void {
    lost = Math.floor(lost);
    if (!(lost > 0 && lost <= Number.MAX_SAFE_INTEGER)) return; // NaN, negative, absurd: nothing to do
    this.lastTs = ts;
    const state = this.state;
    if (state === State.Upgraded) {
      this.upgradedCount += lost;
      this.onUpgradedGap?.(lost, ts);
      return;
    }
    const m = this.msg;
    if ((state === State.Length || state === State.ChunkData) && lost <= this.remaining) {
      // Inside a body of known length: skip exactly what was lost and read on. The body
      // keeps what came before the gap (a true prefix), not bytes on either side of a hole.
      m!.lostBytes += lost;
      m!.bodySize += lost;
      m!.incomplete = "lost-bytes";
      this.keeping = false;
      this.remaining -= lost;
      if (this.remaining > 0) return;
      if (state === State.ChunkData) {
        this.state = State.ChunkEnd;
        return;
      }
      this.state = State.Start;
      this.finish(ts, "lost-bytes", false);
      return;
    }
    // Anywhere else the framing is lost: the message in progress ends here, and what follows
    // is searched for a start line.
    const pending = this.pend.subarray(0, this.pendLen);
    this.clearPend();
    this.state = State.Start;
    this.strict = true;
    this.prevByte = 0;
    switch (state) {
      case State.Start:
        this.skipped += pending.length;
        break;
      case State.Head:
        this.emitCutHead(pending, 0, this.headStartTs, ts, "lost-bytes", lost);
        break;
      case State.Length:
      case State.ChunkData:
        // The gap runs past the body's end: the whole of it is counted here.
        m!.lostBytes += lost;
        m!.bodySize += this.remaining;
        this.finish(ts, "lost-bytes", true);
        break;
      case State.Close:
        m!.lostBytes += lost;
        m!.bodySize += lost;
        this.finish(ts, "lost-bytes", true);
        break;
      default: // ChunkSize, ChunkEnd, Trailers
        m!.lostBytes += lost;
        this.finish(ts, "lost-bytes", state !== State.Trailers);
        break;
    }
  }

  end(ts: number): void {
    this.lastTs = ts;
    if (this.state === State.Upgraded) return;
    // Whatever is pushed after end() is read as a new stream.
    this.stop(ts, State.Start, true);
    if ((this.state as State) !== State.Upgraded) {
      this.strict = false;
      this.prevByte = LF;
    }
  }

  handOver(): void {
    if (this.state === State.Upgraded) return;
    if (this.running) {
      // From a callback inside push(): run() counts the rest of its buffer as upgraded.
      this.state = State.Upgraded;
      if (this.msg) this.finish(this.lastTs, "truncated", true);
      return;
    }
    this.stop(this.lastTs, State.Upgraded, false);
  }

  /**
   * The stream stops here, for this parser: at its end (`eof`), or handed over. The message in
   * progress is emitted; a close-delimited body is whole. Bytes pending between messages are
   * read once more as the end of the stream, or counted as upgraded.
   */
  private stop(ts: number, next: State, eof: boolean): void {
    const state = this.state;
    const pending = this.pend.subarray(0, this.pendLen);
    const startLine = state === State.Start && eof ? this.cutStartLine(pending) : -1;
    const startTs = startLine >= 0 ? this.pendTsAt(startLine) : this.headStartTs;
    this.clearPend();
    this.state = next;
    if (next === State.Upgraded && state === State.Start) {
      this.upgradedCount += pending.length;
      if (pending.length) this.onUpgradedBytes?.(pending.slice(), ts);
    }
    switch (state) {
      case State.Start:
        if (startLine >= 0) this.emitCutHead(pending, startLine, startTs, ts, "truncated", 0);
        break;
      case State.Head:
        this.emitCutHead(pending, 0, startTs, ts, "truncated", 0);
        break;
      case State.Length:
      case State.ChunkSize:
      case State.ChunkData:
      case State.ChunkEnd:
        this.finish(ts, "truncated", true);
        break;
      case State.Trailers:
        this.finish(ts, "truncated", false);
        break;
      case State.Close:
        this.finish(ts, "", false);
        break;
    }
  }

  /**
   * At the end of the stream, bytes pending between messages: where a start line that lacks
   * only its line end begins (it still makes a truncated message), else -1, the bytes counted
   * as skipped (as everywhere, empty lines at a message boundary are not).
   */
  private cutStartLine(buf: Uint8Array): number {
    const len = buf.length;
    let pos = 0;
    if (!this.strict) {
      while (pos < len && (buf[pos] === CR || buf[pos] === LF)) pos++;
      if (pos === len) return -1;
      const v = this.isRequest ? checkRequestLine(buf, pos, true) : checkStatusLine(buf, pos, true);
      if (v === Verdict.Valid) return pos;
      this.skipped++;
      pos++;
    }
    const p = this.findStart(buf, pos, true);
    if (this.foundWhole) {
      this.skipped += p - pos;
      return p;
    }
    this.skipped += len - pos;
    return -1;
  }

  // ---- pending bytes ----

  /**
   * How much of data (from off) to append to pending, which holds the start of an unfinished
   * unit: up to where that unit ends, or as much as its bound allows. Sets cutReady when the
   * unit is now whole or at its bound, so that reading it can make progress.
   */
  private cutFor(data: Uint8Array, off: number): number {
    const n = data.length;
    let cap: number;
    let end = -1;
    switch (this.state) {
      case State.Start: {
        // Read eagerly, so that garbage is dropped as it comes; a start line ends at its LF.
        const limit = Math.min(n, off + Math.max(1, MAX_START_LINE - this.pendLen));
        const nl = lfBefore(data, off, limit);
        this.cutReady = true;
        return nl >= 0 ? nl + 1 : limit;
      }
      case State.Head: {
        cap = MAX_HEAD;
        const limit = Math.min(n, off + Math.max(1, cap - this.pendLen));
        const last = this.pend[this.pendLen - 1];
        if (last === LF) {
          if (data[off] === LF) end = off + 1;
          else if (data[off] === CR && off + 1 < n && data[off + 1] === LF) end = off + 2;
        } else if (last === CR && this.pendLen >= 2 && this.pend[this.pendLen - 2] === LF && data[off] === LF) {
          end = off + 1;
        }
        if (end < 0) end = findBlankLine(data, off, limit);
        if (end >= 0 && end <= limit) {
          this.cutReady = true;
          return end;
        }
        this.cutReady = this.pendLen + (limit - off) >= cap;
        return limit;
      }
      case State.ChunkSize:
      case State.Trailers: {
        cap = this.state === State.ChunkSize ? MAX_CHUNK_LINE : MAX_HEAD;
        const limit = Math.min(n, off + Math.max(1, cap - this.pendLen));
        const nl = lfBefore(data, off, limit);
        if (nl >= 0) {
          this.cutReady = true;
          return nl + 1;
        }
        this.cutReady = this.pendLen + (limit - off) >= cap;
        return limit;
      }
      default:
        // ChunkEnd waits for the LF after a CR; nothing else is left pending.
        this.cutReady = true;
        return off + 1;
    }
  }

  private appendPend(data: Uint8Array, from: number, to: number, ts: number): void {
    const add = to - from;
    if (add <= 0) return;
    const need = this.pendLen + add;
    if (need > this.pend.length) {
      const grown = new Uint8Array(Math.max(need, Math.min(2 * this.pend.length, MAX_HEAD + 4), 256));
      grown.set(this.pend.subarray(0, this.pendLen));
      this.pend = grown;
    }
    this.pend.set(data.subarray(from, to), this.pendLen);
    const marks = this.pendMarkTs.length;
    if (marks === 0 || this.pendMarkTs[marks - 1] !== ts) {
      this.pendMarkAt.push(this.pendLen);
      this.pendMarkTs.push(ts);
    }
    this.pendLen = need;
  }

  private runPend(ts: number): void {
    this.inPend = true;
    const k = this.run(this.pend.subarray(0, this.pendLen), 0, ts);
    this.inPend = false;
    if (k >= this.pendLen) {
      this.clearPend();
      return;
    }
    if (k > 0) {
      this.pend.copyWithin(0, k, this.pendLen);
      this.pendLen -= k;
      // Timestamps: the mark that covers byte k now covers byte 0.
      let first = 0;
      while (first + 1 < this.pendMarkAt.length && this.pendMarkAt[first + 1] <= k) first++;
      this.pendMarkAt.splice(0, first);
      this.pendMarkTs.splice(0, first);
      this.pendMarkAt[0] = 0;
      for (let i = 1; i < this.pendMarkAt.length; i++) this.pendMarkAt[i] -= k;
    }
  }

  private clearPend(): void {
    this.pendLen = 0;
    this.pendMarkAt.length = 0;
    this.pendMarkTs.length = 0;
    // A large pending buffer (a long head once) is not kept for the life of the connection.
    if (this.pend.length > 4096) this.pend = EMPTY;
  }

  /** The timestamp of the push that brought pending byte `at`. */
  private pendTsAt(at: number): number {
    let i = this.pendMarkAt.length - 1;
    while (i > 0 && this.pendMarkAt[i] > at) i--;
    return i >= 0 ? this.pendMarkTs[i] : this.lastTs;
  }

  private needMore(at: number): number {
    this.keepAt = at;
    return NEED_MORE;
  }

  // ---- the state machine ----

  /** Reads buf from pos; returns where the bytes to keep for later begin (buf.length: none). */
  private run(buf: Uint8Array, pos: number, ts: number): number {
    const len = buf.length;
    const wasRunning = this.running;
    this.running = true;
    let keepAt = len;
    while (pos < len) {
      let next: number;
      switch (this.state) {
        case State.Start:
          next = this.start(buf, pos, ts);
          break;
        case State.Head:
          next = this.head(buf, pos, ts);
          break;
        case State.Length:
          next = this.lengthBody(buf, pos, ts);
          break;
        case State.ChunkSize:
          next = this.chunkSize(buf, pos, ts);
          break;
        case State.ChunkData:
          next = this.chunkData(buf, pos);
          break;
        case State.ChunkEnd:
          next = this.chunkEnd(buf, pos, ts);
          break;
        case State.Trailers:
          next = this.trailers(buf, pos, ts);
          break;
        case State.Close:
          this.addBody(buf, pos, len);
          next = len;
          break;
        default:
          this.upgradedCount += len - pos;
          if (len > pos) this.onUpgradedBytes?.(buf.subarray(pos, len), ts);
          next = len;
          break;
      }
      if (next === NEED_MORE) {
        keepAt = this.keepAt;
        break;
      }
      pos = next;
    }
    if (keepAt > 0) this.prevByte = buf[keepAt - 1];
    this.running = wasRunning;
    return keepAt;
  }

  /** Between messages: the next start line, skipping (and counting) what cannot be one. */
  private start(buf: Uint8Array, pos: number, ts: number): number {
    const len = buf.length;
    if (!this.strict) {
      // Empty lines between messages are tolerated, and are not garbage.
      while (pos < len && (buf[pos] === CR || buf[pos] === LF)) pos++;
      if (pos === len) return len;
      const v = this.isRequest ? checkRequestLine(buf, pos, false) : checkStatusLine(buf, pos, false);
      if (v === Verdict.Valid) return this.beginHead(pos, ts);
      if (v === Verdict.NeedMore) return this.needMore(pos);
      this.strict = true;
      this.skipped++;
      pos++;
    }
    const p = this.findStart(buf, pos, false);
    this.skipped += p - pos;
    if (this.foundWhole) {
      this.strict = false;
      return this.beginHead(p, ts);
    }
    return p === len ? len : this.needMore(p);
  }

  private beginHead(p: number, ts: number): number {
    this.state = State.Head;
    this.headStartTs = this.inPend ? this.pendTsAt(p) : ts;
    return p;
  }

  /**
   * Resynchronising: the first position at or after `from` where a message may start — a
   * whole start line (foundWhole), or bytes that may still become one — else buf.length.
   * Requests: a known method anywhere (a stream joined mid-body has no line start), or a
   * token of capitals at the start of a line, then SP target SP HTTP/1.x. Responses: HTTP/1.x SP 3DIGIT.
   */
  private findStart(buf: Uint8Array, from: number, eof: boolean): number {
    const len = buf.length;
    this.foundWhole = false;
    if (!this.isRequest) {
      let i = buf.indexOf(H, from);
      while (i >= 0) {
        // Most Hs are not followed by T: said without a call.
        if (i + 1 === len || buf[i + 1] === T) {
          const v = checkStatusLine(buf, i, eof);
          if (v !== Verdict.Invalid) {
            this.foundWhole = v === Verdict.Valid;
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
        this.foundWhole = v === Verdict.Valid;
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

  private head(buf: Uint8Array, pos: number, ts: number): number {
    const end = findHeadEnd(buf, pos);
    if (end === NOT_FOUND) return this.needMore(pos);
    if (end === TOO_LONG) {
      // Not a head after all: its first byte is garbage; look again from the next.
      this.state = State.Start;
      this.strict = true;
      this.skipped++;
      return pos + 1;
    }
    const m = this.beginMessage(buf, pos, end, true, this.headStartTs);
    let method = "";
    let status = 0;
    if (m.kind === "request") method = m.method;
    else {
      status = m.status;
      if (m.informational) {
        this.state = State.Start;
        this.finish(ts, "", false);
        return end;
      }
      // With no request seen (joined mid-stream), assume one that is not HEAD.
      method = this.methods.shift() ?? "";
    }
    const bodyHeaders = this.bodyHeaders;
    switch (framing(this.isRequest, method, status, bodyHeaders.transferEncoding, bodyHeaders.contentLength)) {
      case Framing.None:
        this.state = State.Start;
        break;
      case Framing.Switch:
        this.state = State.Upgraded;
        break;
      case Framing.Chunked:
        this.state = State.ChunkSize;
        break;
      case Framing.Length:
        this.remaining = bodyHeaders.contentLength;
        this.state = this.remaining > 0 ? State.Length : State.Start;
        break;
      case Framing.UntilClose:
        this.state = State.Close;
        break;
      case Framing.Invalid:
        this.strict = true;
        this.state = State.Start;
        if (!this.announce(m)) return end;
        this.finish(ts, "bad-framing", true);
        return end;
    }
    if (!this.announce(m)) return end;
    if (this.state === State.Start || this.state === State.Upgraded) this.finish(ts, "", false);
    return end;
  }

  /** Tells onRequestHead about a request; false when its callback ended the message (handOver). */
  private announce(m: Http1Message): boolean {
    if (m.kind !== "request" || this.announced) return true;
    this.announced = true;
    this.onRequestHead?.(m.method);
    return this.msg === m;
  }

  /**
   * The head in buf[pos, end) made into the message in progress. `whole`: the head ended with
   * its blank line; otherwise it was cut and its last unfinished line is left out.
   */
  private beginMessage(buf: Uint8Array, pos: number, end: number, whole: boolean, startTs: number): Http1Message {
    const m = readHead(buf, pos, end, whole, this.isRequest, startTs, this.skipped, this.bodyHeaders);
    this.skipped = 0;
    this.announced = false;
    this.trailerBytes = 0;
    this.keeping = true;
    this.msg = m;
    return m;
  }

  /** A head that was cut (end of stream, gap, hand-over) emitted as far as it goes, from buf[pos, end of buf). */
  private emitCutHead(buf: Uint8Array, pos: number, startTs: number, ts: number, why: Incompleteness, lost: number): void {
    const m = this.beginMessage(buf, pos, buf.length, false, startTs);
    m.lostBytes += lost;
    if (m.kind === "response" && !m.informational) this.methods.shift();
    if (!this.announce(m)) return;
    this.finish(ts, why, true);
  }

  private lengthBody(buf: Uint8Array, pos: number, ts: number): number {
    const avail = buf.length - pos;
    const n = avail < this.remaining ? avail : this.remaining;
    this.addBody(buf, pos, pos + n);
    this.remaining -= n;
    if (this.remaining === 0) {
      this.state = State.Start;
      this.finish(ts, "", false);
    }
    return pos + n;
  }

  private chunkSize(buf: Uint8Array, pos: number, ts: number): number {
    const len = buf.length;
    const nl = buf.indexOf(LF, pos);
    if (nl < 0 || nl + 1 - pos > MAX_CHUNK_LINE) {
      if (nl < 0 && len - pos < MAX_CHUNK_LINE) return this.needMore(pos);
      return this.badFraming(ts, pos);
    }
    const size = parseChunkSize(buf, pos, nl);
    if (size === BAD_CHUNK_SIZE) return this.badFraming(ts, pos);
    if (size === 0) {
      this.state = State.Trailers;
    } else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
    return nl + 1;
  }

  private chunkData(buf: Uint8Array, pos: number): number {
    const avail = buf.length - pos;
    const n = avail < this.remaining ? avail : this.remaining;
    this.addBody(buf, pos, pos + n);
    this.remaining -= n;
    if (this.remaining === 0) this.state = State.ChunkEnd;
    return pos + n;
  }

  private chunkEnd(buf: Uint8Array, pos: number, ts: number): number {
    const c = buf[pos];
    if (c === LF) {
      this.state = State.ChunkSize;
      return pos + 1;
    }
    if (c === CR) {
      if (pos + 1 === buf.length) return this.needMore(pos);
      if (buf[pos + 1] === LF) {
        this.state = State.ChunkSize;
        return pos + 2;
      }
    }
    return this.badFraming(ts, pos);
  }

  private trailers(buf: Uint8Array, pos: number, ts: number): number {
    const len = buf.length;
    const m = this.msg!;
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl < 0) {
        if (this.trailerBytes + (len - pos) >= MAX_HEAD) return this.badFraming(ts, pos);
        return this.needMore(pos);
      }
      this.trailerBytes += nl + 1 - pos;
      if (this.trailerBytes > MAX_HEAD) return this.badFraming(ts, pos);
      let e = nl;
      if (e > pos && buf[e - 1] === CR) e--;
      if (e === pos) {
        this.state = State.Start;
        this.finish(ts, "", false);
        return nl + 1;
      }
      const line = decodeText(buf, pos, e);
      addField(m.trailers, line, 0, line.length);
      pos = nl + 1;
    }
  }

  /** The body's framing broke: the message is emitted as it is, and what follows is searched for a start line. */
  private badFraming(ts: number, pos: number): number {
    this.state = State.Start;
    this.strict = true;
    this.finish(ts, "bad-framing", true);
    return pos;
  }

  private addBody(buf: Uint8Array, from: number, to: number): void {
    const n = to - from;
    this.msg!.bodySize += n;
    if (!this.keeping) return;
    const room = this.maxBody - this.kept;
    if (room <= 0 || n === 0) return;
    const take = n < room ? n : room;
    if (this.acc === null && this.parts.length < MAX_PARTS) {
      // A view of the pushed bytes; pending is reused, so bytes read from it are copied.
      this.parts.push(this.inPend ? buf.slice(from, from + take) : buf.subarray(from, from + take));
      this.kept += take;
      return;
    }
    // Many small pieces (tiny chunks, tiny pushes): one growing copy rather than a long list.
    const need = this.kept + take;
    if (this.acc === null || need > this.acc.length) {
      const grown = new Uint8Array(Math.min(this.maxBody, Math.max(need, 2 * this.kept, 4096)));
      if (this.acc !== null) grown.set(this.acc.subarray(0, this.kept));
      else {
        let at = 0;
        for (const p of this.parts) {
          grown.set(p, at);
          at += p.length;
        }
        this.parts.length = 0;
      }
      this.acc = grown;
    }
    this.acc.set(buf.subarray(from, from + take), this.kept);
    this.kept = need;
  }

  /**
   * The message in progress is over: its body joined (and decoded), then emitted.
   * `cut`: it ended before its body was known to be whole. The caller has set the next state.
   */
  private finish(ts: number, why: Incompleteness, cut: boolean): void {
    const m = this.msg!;
    this.msg = null;
    m.endTs = ts;
    if (why !== "") m.incomplete = why;
    let raw: Uint8Array;
    if (this.acc !== null) {
      raw = this.acc.length > 2 * this.kept ? this.acc.slice(0, this.kept) : this.acc.subarray(0, this.kept);
      this.acc = null;
    } else if (this.parts.length === 0) {
      raw = EMPTY;
    } else if (this.parts.length === 1) {
      raw = this.parts[0];
    } else {
      raw = new Uint8Array(this.kept);
      let at = 0;
      for (const p of this.parts) {
        raw.set(p, at);
        at += p.length;
      }
    }
    this.parts.length = 0;
    let truncated = cut || raw.length < m.bodySize;
    const contentEncoding = this.bodyHeaders.contentEncoding;
    if (contentEncoding !== "" && raw.length > 0) {
      const d = decodeContent(contentEncoding, raw, this.maxBody, !truncated);
      m.body = d.body;
      m.decodedEncoding = d.encoding;
      m.decodeError = d.error;
      truncated ||= d.capped;
    } else {
      m.body = raw;
    }
    m.bodyTruncated = truncated;
    this.kept = 0;
    this.keeping = true;
    this.bodyHeaders.contentEncoding = "";
    this.onMessage(m);
  }
}

/**
 * An HTTP/1.x parser for one direction of a connection: "request" for what the client sends,
 * "response" for what the server sends. See Http1Parser for the contract.
 */
export function createHttp1Parser(kind: "request" | "response", options: Http1ParserOptions): Http1Parser {
  return new Parser(kind, options);
}
