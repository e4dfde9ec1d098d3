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
import type {
  HeaderField,
  Http1Message,
  Http1Parser,
  Http1ParserOptions,
  Http1Request,
  Http1Response,
  Incompleteness,
} from "./types.ts";

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

/** The ways a body's length is decided; see `framing()`. */
const enum Framing {
  None,
  Switch, // none, and the stream then belongs to another protocol
  Chunked,
  Length,
  UntilClose,
  Invalid,
}

const enum Verdict {
  Valid,
  Invalid,
  NeedMore,
}

/** Longest head (start line, headers, blank line) read; a longer one is garbage. Also bounds trailers. */
const MAX_HEAD = 64 * 1024;
/** Longest start line, line end included. */
const MAX_START_LINE = 8 * 1024;
/** Longest chunk-size line (extensions included). */
const MAX_CHUNK_LINE = 4 * 1024;
/** Longest method token at a clean message boundary. */
const MAX_METHOD = 32;
/** Longest unknown method (capitals) accepted at the start of a line when resynchronising. */
const MAX_LINE_METHOD = 20;
/** Body pieces kept as views before they are copied into one growing buffer instead. */
const MAX_PARTS = 32;
const DEFAULT_MAX_BODY = 1024 * 1024;
/** More chunk-size digits than this is a size beyond Number.MAX_SAFE_INTEGER. */
const MAX_CHUNK_DIGITS = 13;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const H = 0x48;
const T = 0x54;

const NEED_MORE = -1;
const NOT_FOUND = -1;
const TOO_LONG = -2;
const NO_LENGTH = -1;
const BAD_LENGTH = -2;

const EMPTY = new Uint8Array(0);
const HTTP1 = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e]; // "HTTP/1."

/** Methods looked for anywhere when resynchronising (a stream joined mid-body has no line start). */
const KNOWN_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"].map((m) =>
  Uint8Array.from(m, (c) => c.charCodeAt(0)),
);

/** RFC 9110 tchar: what a method token is made of. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
/** What an unknown method found while resynchronising may be made of. */
const CAPITAL = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") CAPITAL[c.charCodeAt(0)] = 1;

const utf8 = new TextDecoder("utf-8", { fatal: true });

type SliceFn = (this: Uint8Array, start: number, end: number) => string;
/** Bun's Buffer.prototype.utf8Slice reads any Uint8Array without making a view of it (a view
 * costs about as much as decoding a head). Used only if it behaves as expected here. */
const utf8Slice = ((): SliceFn | null => {
  const f = (Buffer.prototype as unknown as { utf8Slice?: SliceFn }).utf8Slice;
  try {
    return typeof f === "function" && f.call(Uint8Array.of(0x41, 0xc3, 0xa9, 0x42), 1, 4) === "\u00e9B" ? f : null;
  } catch {
    return null;
  }
})();

/** Header text: UTF-8 when the bytes are valid UTF-8 (ASCII is), else latin1, byte for byte. */
function decodeText(buf: Uint8Array, start: number, end: number): string {
  if (utf8Slice !== null) {
    // Lenient decoding replaces what is not UTF-8 with U+FFFD: without one, it was all UTF-8.
    const text = utf8Slice.call(buf, start, end);
    if (text.indexOf("\ufffd") < 0) return text;
  }
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
  }
}

/**
 * A request line at `p` whose method is any token (a clean message boundary):
 * `token SP target SP HTTP/1.d [CR] LF`.
 */
function checkRequestLine(buf: Uint8Array, p: number, eof: boolean): Verdict {
  const len = buf.length;
  let i = p;
  while (i < len && TCHAR[buf[i]] === 1 && i - p <= MAX_METHOD) i++;
  if (i - p > MAX_METHOD) return Verdict.Invalid;
  if (i === len) return eof ? Verdict.Invalid : Verdict.NeedMore;
  if (i === p || buf[i] !== SP) return Verdict.Invalid;
  return checkAfterMethod(buf, p, i + 1, eof);
}

/** The rest of a request line starting at `p`, from `i`, just past the method's SP. */
function checkAfterMethod(buf: Uint8Array, p: number, i: number, eof: boolean): Verdict {
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
function checkStatusLine(buf: Uint8Array, p: number, eof: boolean): Verdict {
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

/**
 * Where the head starting at `pos` ends (just past its blank line); NOT_FOUND when the bytes
 * so far do not say, TOO_LONG when it would be longer than MAX_HEAD.
 */
function findHeadEnd(buf: Uint8Array, pos: number): number {
  const len = buf.length;
  const limit = pos + MAX_HEAD;
  let i = pos;
  for (;;) {
    const nl = buf.indexOf(LF, i);
    if (nl < 0 || nl >= limit) break;
    if (nl + 1 === len) break;
    const a = buf[nl + 1];
    if (a === LF) return nl + 2 <= limit ? nl + 2 : TOO_LONG;
    if (a === CR) {
      if (nl + 2 === len) break;
      if (buf[nl + 2] === LF) return nl + 3 <= limit ? nl + 3 : TOO_LONG;
    }
    i = nl + 1;
  }
  return len - pos >= MAX_HEAD ? TOO_LONG : NOT_FOUND;
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

/** The first LF in buf[from, limit), or -1. A loop rather than indexOf, which would search on
 * past limit: limit bounds what one step appends to pending, and the work with it. */
function lfBefore(buf: Uint8Array, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (buf[i] === LF) return i;
  return -1;
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

/** A Content-Length value: digits, or a list of equal ones ("5, 5"); BAD_LENGTH when not. */
function parseContentLength(value: string): number {
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

/** Is the last coding of a Transfer-Encoding value "chunked"? */
function endsWithChunked(te: string): boolean {
  const last = te.slice(te.lastIndexOf(",") + 1).trim();
  return nameIs(last, "chunked");
}

/** Does text[at, at + lower.length) equal `lower` (lowercase ASCII), ignoring case? Read in
 * place: comparing a freshly sliced name costs more. */
function textIs(text: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = text.charCodeAt(at + i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(l >= 0x61 && l <= 0x7a && c === l - 0x20)) return false;
  }
  return true;
}

const enum FramingField {
  None,
  ContentLength,
  TransferEncoding,
  ContentEncoding,
}

/** Fields that bear on framing, found by readFields: field index * 4 + FramingField. Scratch, reused. */
const framingFields: number[] = [];

/** Header lines of `text` from `i` up to its blank line, added to `fields` (and framing fields
 * noted in framingFields). With `whole` false the text was cut: its last line, unless ended,
 * is left out. Returns where reading stopped. */
function readFields(text: string, i: number, fields: HeaderField[], whole: boolean): number {
  const len = text.length;
  while (i < len) {
    let nl = text.indexOf("\n", i);
    if (nl < 0) {
      if (!whole) return len;
      nl = len;
    }
    let e = nl;
    if (e > i && text.charCodeAt(e - 1) === CR) e--;
    if (e === i) return nl + 1; // the blank line
    const kind = addField(fields, text, i, e);
    if (kind !== FramingField.None) framingFields.push((fields.length - 1) * 4 + kind);
    i = nl + 1;
  }
  return len;
}

/** One field line, text[start, end): `name: value`, or an obs-fold continuing the previous
 * one. Says whether the field added is one that bears on framing. */
function addField(fields: HeaderField[], text: string, start: number, end: number): FramingField {
  const first = text.charCodeAt(start);
  let vs: number;
  if (first === SP || first === HTAB) {
    // obs-fold (RFC 9112 §5.2): joined to the previous value with one space.
    const prev = fields[fields.length - 1];
    if (!prev) return FramingField.None;
    vs = start;
    while (vs < end && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
    let ve = end;
    while (ve > vs && (text.charCodeAt(ve - 1) === SP || text.charCodeAt(ve - 1) === HTAB)) ve--;
    if (ve > vs) prev.value = prev.value === "" ? text.slice(vs, ve) : `${prev.value} ${text.slice(vs, ve)}`;
    return FramingField.None;
  }
  const colon = text.indexOf(":", start);
  if (colon <= start || colon >= end) return FramingField.None; // not a field line: ignored, as lenient readers do
  vs = colon + 1;
  while (vs < end && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
  let ve = end;
  while (ve > vs && (text.charCodeAt(ve - 1) === SP || text.charCodeAt(ve - 1) === HTAB)) ve--;
  fields.push({ name: text.slice(start, colon), value: text.slice(vs, ve) });
  // Most fields are none of these: the name's length (14, 16, 17) says so at once.
  switch (colon - start) {
    case 14:
      return textIs(text, start, "content-length") ? FramingField.ContentLength : FramingField.None;
    case 16:
      return textIs(text, start, "content-encoding") ? FramingField.ContentEncoding : FramingField.None;
    case 17:
      return textIs(text, start, "transfer-encoding") ? FramingField.TransferEncoding : FramingField.None;
  }
  return FramingField.None;
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
 */
function framing(isRequest: boolean, method: string, status: number, te: string | null, contentLength: number): Framing {
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
  private contentLength = NO_LENGTH;
  private transferEncoding: string | null = null;
  private contentEncoding = "";
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
    const m = this.parseHead(buf, pos, end, true, this.headStartTs);
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
    switch (framing(this.isRequest, method, status, this.transferEncoding, this.contentLength)) {
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
        this.remaining = this.contentLength;
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
  private parseHead(buf: Uint8Array, pos: number, end: number, whole: boolean, startTs: number): Http1Message {
    const text = decodeText(buf, pos, end);
    let nl = text.indexOf("\n");
    if (nl < 0) nl = text.length; // a start line cut at the end of the stream
    let le = nl;
    if (le > 0 && text.charCodeAt(le - 1) === CR) le--;
    const headers: HeaderField[] = [];
    framingFields.length = 0;
    readFields(text, nl + 1, headers, whole);

    // The fields that bear on framing, read once the values are final (obs-folds joined).
    this.contentLength = NO_LENGTH;
    this.transferEncoding = null;
    this.contentEncoding = "";
    for (let k = 0; k < framingFields.length; k++) {
      const value = headers[framingFields[k] >> 2].value;
      switch ((framingFields[k] & 3) as FramingField) {
        case FramingField.ContentLength: {
          const v = parseContentLength(value);
          if (this.contentLength === NO_LENGTH || v === BAD_LENGTH) this.contentLength = v;
          else if (this.contentLength !== BAD_LENGTH && v !== this.contentLength) this.contentLength = BAD_LENGTH;
          break;
        }
        case FramingField.TransferEncoding:
          this.transferEncoding = this.transferEncoding === null ? value : `${this.transferEncoding}, ${value}`;
          break;
        case FramingField.ContentEncoding:
          this.contentEncoding = this.contentEncoding === "" ? value : `${this.contentEncoding}, ${value}`;
          break;
      }
    }

    const skippedBefore = this.skipped;
    this.skipped = 0;
    this.announced = false;
    this.trailerBytes = 0;
    this.keeping = true;
    let m: Http1Message;
    if (this.isRequest) {
      // Checked already: method SP target SP HTTP/1.d
      const sp = text.indexOf(" ");
      const request: Http1Request = {
        kind: "request",
        method: text.slice(0, sp),
        target: text.slice(sp + 1, le - 9),
        version: text.slice(le - 8, le),
        headers,
        trailers: [],
        body: EMPTY,
        bodySize: 0,
        bodyTruncated: false,
        decodedEncoding: "",
        decodeError: "",
        startTs,
        endTs: startTs,
        incomplete: "",
        lostBytes: 0,
        skippedBefore,
      };
      m = request;
    } else {
      // Checked already: HTTP/1.d SP 3DIGIT [SP reason]
      const status = (text.charCodeAt(9) - 0x30) * 100 + (text.charCodeAt(10) - 0x30) * 10 + (text.charCodeAt(11) - 0x30);
      const response: Http1Response = {
        kind: "response",
        status,
        reason: le > 12 ? text.slice(13, le) : "",
        informational: status < 200 && status !== 101,
        version: text.slice(0, 8),
        headers,
        trailers: [],
        body: EMPTY,
        bodySize: 0,
        bodyTruncated: false,
        decodedEncoding: "",
        decodeError: "",
        startTs,
        endTs: startTs,
        incomplete: "",
        lostBytes: 0,
        skippedBefore,
      };
      m = response;
    }
    this.msg = m;
    return m;
  }

  /** A head that was cut (end of stream, gap, hand-over) emitted as far as it goes, from buf[pos, end of buf). */
  private emitCutHead(buf: Uint8Array, pos: number, startTs: number, ts: number, why: Incompleteness, lost: number): void {
    const m = this.parseHead(buf, pos, buf.length, false, startTs);
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
    // After the size: optional whitespace, then chunk extensions (ignored), then the line end.
    const c = buf[i];
    if (zeros + digits === 0 || digits > MAX_CHUNK_DIGITS || !(c === CR || c === LF || c === 0x3b || c === SP || c === HTAB)) {
      return this.badFraming(ts, pos);
    }
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
    if (this.contentEncoding !== "" && raw.length > 0) {
      const d = decodeContent(this.contentEncoding, raw, this.maxBody, !truncated);
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
    this.contentEncoding = "";
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
