// An incremental HTTP/1.x parser for one direction of a connection: bytes in (push), whole
// messages out (onMessage). Pure: no I/O, no clocks; timestamps come in with the bytes.
//
// This file is the state machine: it reads each state's unit in turn and handles the events
// of the stream (push, gap, end, hand-over). What each unit means is decided elsewhere, one
// job per module:
//   start-line.ts     is there a request or status line here
//   resync.ts         where the next message starts, and what is skipped to find it
//   pending-bytes.ts  the bytes held back until a unit is whole, with their timestamps
//   head.ts           where a head ends, and the head made into a message
//   header-fields.ts  field lines, for heads and trailers
//   framing.ts        how a body's length is decided (numbered cases), chunk-size lines
//   body-capture.ts   which body bytes are kept, as views of the pushed bytes
//                     (passed on as sent, with their Content-Encoding: flows decode them)
//   limits.ts         every bound, in one place
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
import { BodyCapture } from "./body-capture.ts";
import { CR, decodeText, LF } from "./bytes.ts";
import { BAD_CHUNK_SIZE, Framing, framing, NO_LENGTH, parseChunkSize } from "./framing.ts";
import { type BodyHeaders, findHeadEnd, NOT_FOUND, readHead, TOO_LONG } from "./head.ts";
import { addField } from "./header-fields.ts";
import { DEFAULT_MAX_BODY, MAX_CHUNK_LINE, MAX_HEAD, MAX_START_LINE } from "./limits.ts";
import { PendingBytes } from "./pending-bytes.ts";
import { Resync } from "./resync.ts";
import { GapEffect, type Http1Message, type Http1Parser, type Http1ParserOptions, type Http1Response, type Incompleteness } from "./types.ts";

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

/** A state's reader returns this when its unit is not whole: keep the bytes from keepAt. */
const NEED_MORE = -1;

class Parser implements Http1Parser {
  private readonly isRequest: boolean;
  private readonly maxBody: number;
  private readonly onMessage: (message: Http1Message) => void;
  private readonly onRequestHead: ((method: string, startTs: number) => void) | undefined;
  private readonly onUpgradedBytes: ((data: Uint8Array, ts: number) => void) | undefined;
  private readonly onUpgradedGap: ((lost: number, ts: number) => void) | undefined;
  private readonly onEventStream: ((response: Http1Response) => boolean) | undefined;
  private readonly onBodyData: ((data: Uint8Array, ts: number) => void) | undefined;
  /** The body in progress goes to onBodyData as it is read. */
  private streamingBody = false;
  /** Methods of requests whose responses have not begun (response parsers). */
  private readonly methods: string[] = [];
  private readonly responseMethod: ((startTs: number) => string | undefined) | undefined;

  private state = State.Start;
  private upgradedCount = 0;
  private lastTs = 0;
  /** Inside run(): a callback's handOver() must not touch the buffers being read. */
  private running = false;
  private readonly resync: Resync;
  private readonly pending = new PendingBytes();
  /** Set by needMore(): where the bytes to keep for the next push begin. */
  private keepAt = 0;

  // The message in progress.
  private msg: Http1Message | null = null;
  private headStartTs = 0;
  private announced = false;
  private remaining = 0;
  private readonly bodyHeaders: BodyHeaders = { contentLength: NO_LENGTH, transferEncoding: null, contentEncoding: "", eventStream: false };
  private trailerBytes = 0;
  private readonly body: BodyCapture;

  constructor(kind: "request" | "response", options: Http1ParserOptions) {
    this.isRequest = kind === "request";
    const max = options.maxBody;
    this.maxBody = max === undefined || Number.isNaN(max) ? DEFAULT_MAX_BODY : Math.max(0, Math.floor(max));
    this.onMessage = options.onMessage;
    this.onRequestHead = options.onRequestHead;
    this.responseMethod = options.responseMethod;
    this.onUpgradedBytes = options.onUpgradedBytes;
    this.onUpgradedGap = options.onUpgradedGap;
    this.onEventStream = options.onEventStream;
    this.onBodyData = options.onBodyData;
    this.resync = new Resync(this.isRequest);
    this.body = new BodyCapture(this.maxBody);
  }

  get upgraded(): boolean {
    return this.state === State.Upgraded;
  }
  get upgradedBytes(): number {
    return this.upgradedCount;
  }
  get pendingSkipped(): number {
    return this.resync.skipped;
  }

  expectResponseTo(method: string): void {
    this.methods.push(method);
  }

  forgetExpected(count: number): void {
    this.methods.splice(0, count);
  }

  push(data: Uint8Array, ts: number): void {
    this.lastTs = ts;
    const n = data.length;
    if (this.state === State.Upgraded) {
      this.upgradedCount += n;
      this.onUpgradedBytes?.(data, ts);
      return;
    }
    const off = this.pending.length > 0 ? this.readPending(data, ts) : 0;
    if (off < n) {
      const keepAt = this.run(data, off, ts);
      if (keepAt < n) this.pending.replace(data, keepAt, n, ts);
    }
  }

  gap(lost: number, ts: number): GapEffect {
    lost = Math.floor(lost);
    if (!(lost > 0 && lost <= Number.MAX_SAFE_INTEGER)) return GapEffect.None; // NaN, negative, absurd: nothing to do
    this.lastTs = ts;
    const state = this.state;
    if (state === State.Upgraded) {
      this.upgradedCount += lost;
      this.onUpgradedGap?.(lost, ts);
      return GapEffect.None;
    }
    const m = this.msg;
    if ((state === State.Length || state === State.ChunkData) && lost <= this.remaining) {
      // Inside a body of known length: skip exactly what was lost and read on. The body
      // keeps what came before the gap (a true prefix), not bytes on either side of a hole.
      m!.lostBytes += lost;
      m!.bodySize += lost;
      m!.incomplete = "lost-bytes";
      this.body.stopKeeping();
      this.remaining -= lost;
      if (this.remaining > 0) return GapEffect.InsideBody;
      if (state === State.ChunkData) {
        this.state = State.ChunkEnd;
        return GapEffect.InsideBody;
      }
      this.state = State.Start;
      this.finish(ts, "lost-bytes", false);
      return GapEffect.InsideBody;
    }
    // Anywhere else the framing is lost: the message in progress ends here, and what follows
    // is searched for a start line.
    const held = this.pending.view();
    this.pending.clear();
    this.state = State.Start;
    this.resync.strict = true;
    this.resync.prevByte = 0;
    switch (state) {
      case State.Start:
        this.resync.skipped += held.length;
        return GapEffect.BetweenMessages;
      case State.Head:
        this.emitCutHead(held, 0, this.headStartTs, ts, "lost-bytes", lost);
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
    return GapEffect.CutMessage;
  }

  end(ts: number): void {
    this.lastTs = ts;
    if (this.state === State.Upgraded) return;
    // Whatever is pushed after end() is read as a new stream.
    this.stop(ts, State.Start, true);
    if ((this.state as State) !== State.Upgraded) {
      this.resync.strict = false;
      this.resync.prevByte = LF;
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
    const held = this.pending.view();
    const startLine = state === State.Start && eof ? this.resync.seekAtEnd(held) : -1;
    const startTs = startLine >= 0 ? this.pending.tsAt(startLine, this.lastTs) : this.headStartTs;
    this.pending.clear();
    this.state = next;
    if (next === State.Upgraded && state === State.Start) {
      this.upgradedCount += held.length;
      if (held.length) this.onUpgradedBytes?.(held.slice(), ts);
    }
    switch (state) {
      case State.Start:
        if (startLine >= 0) this.emitCutHead(held, startLine, startTs, ts, "truncated", 0);
        break;
      case State.Head:
        this.emitCutHead(held, 0, startTs, ts, "truncated", 0);
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

  // ---- pending bytes ----

  /**
   * Bytes are held from before: the front of data completes their unit (as far as it goes)
   * and they are read. Returns where the rest of data begins. One method, apart from push(),
   * so that the common push (nothing held) stays small.
   */
  private readPending(data: Uint8Array, ts: number): number {
    const pending = this.pending;
    const n = data.length;
    let off = 0;
    while (pending.length > 0 && off < n) {
      const cut = this.cutFor(data, off);
      pending.append(data, off, cut, ts);
      off = cut;
      if (pending.ready) this.runPending(ts);
    }
    return off;
  }

  /** How much of data (from off) to append to pending, for the unit the current state waits on. */
  private cutFor(data: Uint8Array, off: number): number {
    const pending = this.pending;
    switch (this.state) {
      case State.Start:
        return pending.cutLine(data, off, MAX_START_LINE, true);
      case State.Head:
        return pending.cutHead(data, off, MAX_HEAD);
      case State.ChunkSize:
        return pending.cutLine(data, off, MAX_CHUNK_LINE, false);
      case State.Trailers:
        return pending.cutLine(data, off, MAX_HEAD, false);
      default:
        // ChunkEnd waits for the LF after a CR; nothing else is left pending.
        return pending.cutByte(off);
    }
  }

  /** Reads the pending bytes, now that their unit is whole (or at its bound); keeps what is left. */
  private runPending(ts: number): void {
    const pending = this.pending;
    pending.reading = true;
    const k = this.run(pending.view(), 0, ts);
    pending.reading = false;
    pending.drop(k);
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
    if (keepAt > 0) this.resync.prevByte = buf[keepAt - 1];
    this.running = wasRunning;
    return keepAt;
  }

  /** Between messages: the next start line, skipping (and counting) what cannot be one. */
  private start(buf: Uint8Array, pos: number, ts: number): number {
    const p = this.resync.seek(buf, pos);
    if (this.resync.found) return this.beginHead(p, ts);
    return p === buf.length ? p : this.needMore(p);
  }

  private beginHead(p: number, ts: number): number {
    this.state = State.Head;
    this.headStartTs = this.pending.reading ? this.pending.tsAt(p, this.lastTs) : ts;
    return p;
  }

  private head(buf: Uint8Array, pos: number, ts: number): number {
    const end = findHeadEnd(buf, pos);
    if (end === NOT_FOUND) return this.needMore(pos);
    if (end === TOO_LONG) {
      // Not a head after all: its first byte is garbage; look again from the next.
      this.state = State.Start;
      this.resync.strict = true;
      this.resync.skipped++;
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
      // With no request seen (joined mid-stream), assume one that is not HEAD. After a loss
      // the stitching may know better which request this answers.
      const expected = this.methods.shift() ?? "";
      method = this.responseMethod?.(m.startTs) ?? expected;
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
        this.resync.strict = true;
        this.state = State.Start;
        if (!this.announce(m)) return end;
        this.finish(ts, "bad-framing", true);
        return end;
    }
    if (!this.announce(m)) return end;
    if (this.state === State.Start || this.state === State.Upgraded) this.finish(ts, "", false);
    else if (m.kind === "response" && this.bodyHeaders.eventStream && this.onEventStream) this.streamingBody = this.onEventStream(m);
    return end;
  }

  /**
   * The head in buf[pos, end) made into the message in progress. `whole`: the head ended with
   * its blank line; otherwise it was cut and its last unfinished line is left out.
   */
  private beginMessage(buf: Uint8Array, pos: number, end: number, whole: boolean, startTs: number): Http1Message {
    const m = readHead(buf, pos, end, whole, this.isRequest, startTs, this.resync.skipped, this.bodyHeaders);
    this.resync.skipped = 0;
    this.announced = false;
    this.trailerBytes = 0;
    this.msg = m;
    return m;
  }

  /** Tells onRequestHead about a request; false when its callback ended the message (handOver). */
  private announce(m: Http1Message): boolean {
    if (m.kind !== "request" || this.announced) return true;
    this.announced = true;
    this.onRequestHead?.(m.method, m.startTs);
    return this.msg === m;
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
    this.resync.strict = true;
    this.finish(ts, "bad-framing", true);
    return pos;
  }

  private addBody(buf: Uint8Array, from: number, to: number): void {
    this.msg!.bodySize += to - from;
    // Bytes read from pending are copied: its buffer is reused.
    this.body.add(buf, from, to, this.pending.reading);
    if (this.streamingBody && to > from) this.onBodyData!(buf.subarray(from, to), this.lastTs);
  }

  /**
   * The message in progress is over: its body joined, then emitted (with the Content-Encoding
   * it names: decoding is done where flows are made, for both HTTP versions).
   * `cut`: it ended before its body was known to be whole. The caller has set the next state.
   */
  private finish(ts: number, why: Incompleteness, cut: boolean): void {
    const m = this.msg!;
    this.msg = null;
    this.streamingBody = false;
    m.endTs = ts;
    if (why !== "") m.incomplete = why;
    m.body = this.body.take();
    m.bodyTruncated = cut || m.body.length < m.bodySize;
    m.contentEncoding = this.bodyHeaders.contentEncoding;
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
