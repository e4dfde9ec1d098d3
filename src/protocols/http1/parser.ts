// An incremental HTTP/1.x parser: bytes in, whole messages out. Pure: no I/O, no clocks
// (timestamps come in with the bytes). It survives garbage, a stream joined in the middle
// of a message and lost bytes, by looking for the next message start.
import type {
  HeaderField,
  Http1Message,
  Http1Parser,
  Http1ParserOptions,
  Http1Request,
  Http1Response,
  Incompleteness,
} from "./types.ts";
import { decodeContent } from "./content-decoding.ts";

const enum State {
  Start, // between messages: looking for a start line
  Head, // a valid start line was seen: reading header lines
  BodyLength, // Content-Length bytes remain
  ChunkSize, // reading a chunk-size line
  ChunkData, // bytes of a chunk remain
  ChunkDataEnd, // the CRLF after a chunk's data
  Trailers, // trailer lines after the last chunk
  BodyClose, // the body runs until the stream ends
  Upgraded, // the stream belongs to another protocol now
}

/** Longest head (start line and headers) read before the bytes are called garbage. */
const MAX_HEAD = 64 * 1024;
const MAX_START_LINE = 16 * 1024;
const MAX_CHUNK_LINE = 4096;
const LF = 10;
const CR = 13;
const SP = 32;

/** Methods looked for when resynchronising (any token is accepted at a message boundary). */
const RESYNC_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
const RESPONSE_PREFIX = "HTTP/1.";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? (u8 as Buffer) : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** Header text as sent: UTF-8 when it is valid UTF-8 (ASCII is), else byte for byte (latin1). */
function headText(buf: Uint8Array, start: number, end: number): string {
  const bytes = buf.subarray(start, end);
  try {
    return utf8.decode(bytes);
  } catch {
    let out = "";
    for (let i = 0; i < bytes.length; i += 4096) out += String.fromCharCode(...bytes.subarray(i, i + 4096));
    return out;
  }
}

function isTokenChar(c: number): boolean {
  // RFC 9110 tchar, which is what a method may be made of.
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}

const enum LineCheck {
  Valid,
  Invalid,
  NeedMore,
}

const RESYNC_METHOD_SET = new Set(RESYNC_METHODS);

/** Is there a plausible request line at buf[pos]? Any method token at a clean message
 * boundary; after garbage (`knownMethod`) only a standard method, so the tail of the
 * garbage cannot pass for one. */
function checkRequestLine(buf: Uint8Array, pos: number, knownMethod = false): LineCheck {
  const len = buf.length;
  let i = pos;
  while (i < len && i - pos < 32 && isTokenChar(buf[i])) i++;
  if (i === len) return i - pos < 32 ? LineCheck.NeedMore : LineCheck.Invalid;
  if (i === pos || buf[i] !== SP) return LineCheck.Invalid;
  if (knownMethod && !RESYNC_METHOD_SET.has(String.fromCharCode(...buf.subarray(pos, i)))) return LineCheck.Invalid;
  i++;
  const targetStart = i;
  while (i < len && buf[i] > SP && buf[i] !== 0x7f) i++;
  if (i === len) return len - pos < MAX_START_LINE ? LineCheck.NeedMore : LineCheck.Invalid;
  if (i === targetStart || buf[i] !== SP) return LineCheck.Invalid;
  i++;
  // "HTTP/1.x" then CRLF or LF
  const need = "HTTP/1.";
  for (let k = 0; k < need.length; k++, i++) {
    if (i === len) return LineCheck.NeedMore;
    if (buf[i] !== need.charCodeAt(k)) return LineCheck.Invalid;
  }
  if (i === len) return LineCheck.NeedMore;
  if (buf[i] < 0x30 || buf[i] > 0x39) return LineCheck.Invalid;
  i++;
  if (i === len) return LineCheck.NeedMore;
  if (buf[i] === CR) {
    i++;
    if (i === len) return LineCheck.NeedMore;
  }
  return buf[i] === LF ? LineCheck.Valid : LineCheck.Invalid;
}

/** Is there a plausible status line at buf[pos]? ("HTTP/1.x NNN") */
function checkStatusLine(buf: Uint8Array, pos: number): LineCheck {
  const len = buf.length;
  let i = pos;
  for (let k = 0; k < RESPONSE_PREFIX.length; k++, i++) {
    if (i === len) return LineCheck.NeedMore;
    if (buf[i] !== RESPONSE_PREFIX.charCodeAt(k)) return LineCheck.Invalid;
  }
  if (i === len) return LineCheck.NeedMore;
  if (buf[i] < 0x30 || buf[i] > 0x39) return LineCheck.Invalid;
  i++;
  if (i === len) return LineCheck.NeedMore;
  if (buf[i] !== SP) return LineCheck.Invalid;
  i++;
  for (let k = 0; k < 3; k++, i++) {
    if (i === len) return LineCheck.NeedMore;
    if (buf[i] < 0x30 || buf[i] > 0x39) return LineCheck.Invalid;
  }
  if (i === len) return LineCheck.NeedMore;
  const c = buf[i];
  return c === SP || c === CR || c === LF ? LineCheck.Valid : LineCheck.Invalid;
}


class Parser implements Http1Parser {
  private state = State.Start;
  /** Unconsumed bytes kept between pushes (a head or line not yet whole). */
  private leftover: Uint8Array | null = null;
  private leftoverTs = 0;
  private readonly methods: string[] = [];
  private msg: Http1Message | null = null;
  /** Content-Encoding of the message being read ("" for none). */
  private contentEncoding = "";
  private remaining = 0;
  private parts: Uint8Array[] = [];
  private kept = 0;
  private keepLimit: number;
  private overLimit = false;
  private skipped = 0;
  private _upgraded = false;
  private _upgradedBytes = 0;
  private readonly maxBody: number;
  private readonly isRequest: boolean;

  constructor(
    kind: "request" | "response",
    private readonly opts: Http1ParserOptions,
  ) {
    this.isRequest = kind === "request";
    this.maxBody = opts.maxBody ?? 1024 * 1024;
    this.keepLimit = this.maxBody;
  }

  get upgraded() {
    return this._upgraded;
  }
  get upgradedBytes() {
    return this._upgradedBytes;
  }
  get pendingSkipped() {
    return this.skipped;
  }

  expectResponseTo(method: string): void {
    this.methods.push(method);
  }

  push(data: Uint8Array, ts: number): void {
    if (this.state === State.Upgraded) {
      this._upgradedBytes += data.length;
      return;
    }
    let buf = data;
    let leftoverLen = 0;
    let leftoverTs = ts;
    if (this.leftover) {
      leftoverLen = this.leftover.length;
      leftoverTs = this.leftoverTs;
      buf = new Uint8Array(leftoverLen + data.length);
      buf.set(this.leftover, 0);
      buf.set(data, leftoverLen);
      this.leftover = null;
    }
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      let next: number;
      switch (this.state) {
        case State.Start:
          next = this.start(buf, pos);
          break;
        case State.Head:
          next = this.head(buf, pos, pos < leftoverLen ? leftoverTs : ts, ts);
          break;
        case State.BodyLength:
        case State.ChunkData: {
          const n = Math.min(this.remaining, len - pos);
          this.addBody(buf.subarray(pos, pos + n));
          this.remaining -= n;
          next = pos + n;
          if (this.remaining === 0) {
            if (this.state === State.BodyLength) this.finish(ts, "");
            else this.state = State.ChunkDataEnd;
          }
          break;
        }
        case State.ChunkDataEnd:
          next = this.chunkDataEnd(buf, pos);
          break;
        case State.ChunkSize:
          next = this.chunkSize(buf, pos, ts);
          break;
        case State.Trailers:
          next = this.trailers(buf, pos, ts);
          break;
        case State.BodyClose:
          this.addBody(buf.subarray(pos));
          next = len;
          break;
        default: // Upgraded, possibly by the message just parsed
          this._upgradedBytes += len - pos;
          next = len;
          break;
      }
      if (next < 0) {
        // The rest from keepAt is an incomplete head or line: keep it for the next push.
        const at = this.keepAt;
        this.leftover = at === 0 && buf !== data ? buf : buf.slice(at);
        this.leftoverTs = at < leftoverLen ? leftoverTs : ts;
        return;
      }
      pos = next;
    }
  }

  /** Between messages: the next start line, skipping (and counting) what is not one. */
  private start(buf: Uint8Array, pos: number): number {
    const len = buf.length;
    // Empty lines between messages are allowed and are not garbage.
    while (pos < len && (buf[pos] === CR || buf[pos] === LF)) pos++;
    if (pos === len) return len;
    const check = this.isRequest ? checkRequestLine(buf, pos, this.skipped > 0) : checkStatusLine(buf, pos);
    if (check === LineCheck.Valid) {
      this.state = State.Head;
      return pos;
    }
    if (check === LineCheck.NeedMore) return this.more(pos);
    // Not a message start: find the next candidate.
    const candidate = this.findCandidate(buf, pos + 1);
    if (candidate >= 0) {
      this.skipped += candidate - pos;
      return candidate;
    }
    // None in sight: drop all but a tail that might begin one.
    const keep = Math.max(pos + 1, len - 15);
    this.skipped += keep - pos;
    return keep >= len ? len : this.more(keep);
  }

  /** Where the bytes to keep for the next push begin, when a handler returns -1. */
  private keepAt = 0;
  private more(at: number): number {
    this.keepAt = at;
    return -1;
  }

  private findCandidate(buf: Uint8Array, from: number): number {
    const b = asBuffer(buf);
    if (!this.isRequest) {
      for (let at = b.indexOf(RESPONSE_PREFIX, from, "latin1"); at >= 0; at = b.indexOf(RESPONSE_PREFIX, at + 1, "latin1")) {
        if (checkStatusLine(buf, at) !== LineCheck.Invalid) return at;
      }
      return -1;
    }
    let best = -1;
    for (const m of RESYNC_METHODS) {
      const needle = m + " ";
      for (let at = b.indexOf(needle, from, "latin1"); at >= 0 && (best < 0 || at < best); at = b.indexOf(needle, at + 1, "latin1")) {
        if (checkRequestLine(buf, at, true) !== LineCheck.Invalid) {
          best = at;
          break;
        }
      }
    }
    return best;
  }

  /** A whole head from pos, parsed into a message; -1 when it is not all here yet. */
  private head(buf: Uint8Array, pos: number, startTs: number, ts: number): number {
    const len = buf.length;
    let i = pos;
    let end = -1;
    for (;;) {
      const nl = buf.indexOf(LF, i);
      if (nl < 0 || nl - pos > MAX_HEAD) break;
      if (nl === i || (nl === i + 1 && buf[i] === CR)) {
        end = nl + 1;
        break;
      }
      i = nl + 1;
    }
    if (end < 0) {
      if (len - pos <= MAX_HEAD) return this.more(pos);
      // A "head" this long is not one: skip its first byte and look again.
      this.state = State.Start;
      this.skipped += 1;
      return pos + 1;
    }
    const text = headText(buf, pos, end);
    const lines = text.split("\n");
    const startLine = stripCr(lines[0]);
    const headers: HeaderField[] = [];
    for (let k = 1; k < lines.length; k++) addHeaderLine(headers, stripCr(lines[k]));
    this.beginMessage(startLine, headers, startTs, ts);
    return end;
  }

  /** `cut`: the stream ended inside this head; the message is emitted at once, truncated. */
  private beginMessage(startLine: string, headers: HeaderField[], startTs: number, ts: number, cut = false) {
    const skippedBefore = this.skipped;
    this.skipped = 0;
    this.parts = [];
    this.kept = 0;
    this.overLimit = false;
    this.contentEncoding = "";
    let transferEncoding = "";
    let contentLength = -1;
    for (let k = 0; k < headers.length; k++) {
      const h = headers[k];
      // Compare lengths first: most headers are none of these three.
      const nl = h.name.length;
      if (nl !== 14 && nl !== 16 && nl !== 17) continue;
      const n = h.name.toLowerCase();
      if (n === "content-length") {
        if (contentLength < 0) contentLength = parseDecimal(h.value);
      } else if (n === "transfer-encoding") {
        transferEncoding = transferEncoding ? `${transferEncoding}, ${h.value}` : h.value;
      } else if (n === "content-encoding") {
        this.contentEncoding = this.contentEncoding ? `${this.contentEncoding}, ${h.value}` : h.value;
      }
    }
    const chunked = transferEncoding !== "" && /(^|,)\s*chunked\s*$/i.test(transferEncoding);

    let method = "";
    if (this.isRequest) {
      const sp1 = startLine.indexOf(" ");
      const sp2 = startLine.lastIndexOf(" ");
      method = startLine.slice(0, sp1);
      const m: Http1Request = {
        kind: "request",
        method,
        target: startLine.slice(sp1 + 1, sp2),
        version: startLine.slice(sp2 + 1),
        headers,
        trailers: [],
        body: EMPTY,
        bodySize: 0,
        bodyTruncated: false,
        decodedEncoding: "",
        decodeError: "",
        startTs,
        endTs: ts,
        incomplete: "",
        lostBytes: 0,
        skippedBefore,
      };
      this.msg = m;
      this.opts.onRequestHead?.(method);
      if (cut) return this.finish(ts, "truncated");
    } else {
      const status = Number(startLine.slice(9, 12));
      const m: Http1Response = {
        kind: "response",
        status,
        reason: startLine.slice(13),
        informational: status >= 100 && status < 200,
        version: startLine.slice(0, 8),
        headers,
        trailers: [],
        body: EMPTY,
        bodySize: 0,
        bodyTruncated: false,
        decodedEncoding: "",
        decodeError: "",
        startTs,
        endTs: ts,
        incomplete: "",
        lostBytes: 0,
        skippedBefore,
      };
      this.msg = m;
      if (status >= 100 && status < 200 && status !== 101) {
        // Interim: no body, and the request still waits for its final response.
        this.finish(ts, "");
        return;
      }
      method = this.methods.shift() ?? "";
      if (cut) return this.finish(ts, "truncated");
      if (status === 101 || (method === "CONNECT" && status >= 200 && status < 300)) {
        this.finish(ts, "");
        this.state = State.Upgraded;
        this._upgraded = true;
        return;
      }
    }

    // How long the body is, decided in one place (RFC 9112 section 6.3):
    const status = this.isRequest ? 0 : (this.msg as Http1Response).status;
    if (!this.isRequest && (method === "HEAD" || status === 204 || status === 304)) {
      this.finish(ts, ""); // 1. no body by definition
    } else if (chunked) {
      this.state = State.ChunkSize; // 2. chunked (Transfer-Encoding wins over Content-Length)
    } else if (contentLength >= 0) {
      this.remaining = contentLength; // 3. Content-Length
      if (contentLength === 0) this.finish(ts, "");
      else this.state = State.BodyLength;
    } else if (this.isRequest) {
      this.finish(ts, ""); // 4. a request with neither has no body
    } else {
      this.state = State.BodyClose; // 5. a response with neither runs to the end of the stream
    }
  }

  private chunkSize(buf: Uint8Array, pos: number, ts: number): number {
    const nl = buf.indexOf(LF, pos);
    if (nl < 0) {
      if (buf.length - pos > MAX_CHUNK_LINE) return this.abandon(ts, pos);
      return this.more(pos);
    }
    let size = 0;
    let digits = 0;
    let i = pos;
    for (; i < nl; i++) {
      const c = buf[i];
      const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (v < 0) break;
      size = size * 16 + v;
      digits++;
    }
    // After the digits: optional whitespace, chunk extensions (ignored), CR.
    const c = buf[i];
    if (digits === 0 || digits > 12 || !(c === CR || c === LF || c === 0x3b || c === SP || c === 9)) return this.abandon(ts, pos);
    if (size === 0) {
      this.state = State.Trailers;
    } else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
    return nl + 1;
  }

  private chunkDataEnd(buf: Uint8Array, pos: number): number {
    this.state = State.ChunkSize;
    if (buf[pos] === LF) return pos + 1;
    if (buf[pos] === CR) {
      if (pos + 1 === buf.length) {
        this.state = State.ChunkDataEnd;
        return this.more(pos);
      }
      return buf[pos + 1] === LF ? pos + 2 : pos + 1;
    }
    return pos; // lenient: no CRLF, read the next size line from here
  }

  private trailers(buf: Uint8Array, pos: number, ts: number): number {
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl < 0) {
        if (buf.length - pos > MAX_HEAD) return this.abandon(ts, pos);
        return this.more(pos);
      }
      const line = stripCr(headText(buf, pos, nl));
      pos = nl + 1;
      if (line === "") {
        this.finish(ts, "");
        return pos;
      }
      addHeaderLine(this.msg!.trailers, line);
    }
  }

  /** The framing broke inside a message: emit it as incomplete and look for the next one. */
  private abandon(ts: number, pos: number): number {
    this.msg!.bodyTruncated = true;
    this.finish(ts, "truncated");
    this.skipped += 1;
    return pos + 1;
  }

  private addBody(view: Uint8Array) {
    const m = this.msg!;
    m.bodySize += view.length;
    const room = this.keepLimit - this.kept;
    if (room <= 0) {
      if (view.length) this.overLimit = true;
      return;
    }
    if (view.length > room) {
      this.parts.push(view.subarray(0, room));
      this.kept += room;
      this.overLimit = true;
    } else if (view.length) {
      this.parts.push(view);
      this.kept += view.length;
    }
  }

  private finish(ts: number, incomplete: Incompleteness) {
    const m = this.msg!;
    this.msg = null;
    this.state = State.Start;
    m.endTs = ts;
    if (incomplete) m.incomplete = incomplete;
    let raw: Uint8Array;
    if (this.parts.length === 0) raw = EMPTY;
    else if (this.parts.length === 1) raw = this.parts[0];
    else {
      raw = new Uint8Array(this.kept);
      let at = 0;
      for (const p of this.parts) {
        raw.set(p, at);
        at += p.length;
      }
    }
    this.parts = [];
    const whole = !this.overLimit && m.lostBytes === 0 && m.incomplete === "";
    if (!whole) m.bodyTruncated = true;
    if (this.contentEncoding && raw.length) {
      const d = decodeContent(this.contentEncoding, raw, this.maxBody, whole);
      m.body = d.body.length > this.maxBody ? d.body.subarray(0, this.maxBody) : d.body;
      m.decodedEncoding = d.decoded;
      m.decodeError = d.error;
      if (d.truncated) m.bodyTruncated = true;
    } else {
      m.body = raw;
    }
    this.opts.onMessage(m);
  }

  gap(lost: number, ts: number): void {
    if (lost <= 0) return;
    if (this.state === State.Upgraded) {
      this._upgradedBytes += lost;
      return;
    }
    const m = this.msg;
    switch (this.state) {
      case State.BodyLength:
      case State.ChunkData:
        if (lost <= this.remaining) {
          // Inside a body of known length: skip exactly what was lost and go on.
          this.remaining -= lost;
          m!.bodySize += lost;
          m!.lostBytes += lost;
          m!.incomplete = "lost-bytes";
          this.overLimit = true;
          if (this.remaining === 0) {
            if (this.state === State.BodyLength) this.finish(ts, "lost-bytes");
            else this.state = State.ChunkDataEnd;
          }
          return;
        }
        m!.bodySize += this.remaining;
        m!.lostBytes += lost;
        this.finish(ts, "lost-bytes");
        break;
      case State.BodyClose:
        m!.bodySize += lost;
        m!.lostBytes += lost;
        m!.incomplete = "lost-bytes";
        this.overLimit = true;
        return;
      case State.ChunkSize:
      case State.ChunkDataEnd:
      case State.Trailers:
        m!.lostBytes += lost;
        this.finish(ts, "lost-bytes");
        break;
      case State.Head:
      case State.Start:
        // Nothing whole was in progress: whatever was partly read is gone with the gap.
        if (this.leftover) this.skipped += this.leftover.length;
        break;
    }
    this.leftover = null;
    this.state = State.Start;
  }

  end(ts: number): void {
    if (this.state === State.Upgraded) return;
    if (this.state === State.BodyClose) {
      this.finish(ts, this.msg!.incomplete);
    } else if (this.msg) {
      this.finish(ts, "truncated");
    } else if (this.leftover) {
      // A head that never ended: emit it if at least its start line is whole.
      const buf = this.leftover;
      this.leftover = null;
      let i = 0;
      while (i < buf.length && (buf[i] === CR || buf[i] === LF)) i++;
      const nl = buf.indexOf(LF, i);
      const ok = nl > 0 && (this.isRequest ? checkRequestLine(buf, i) : checkStatusLine(buf, i)) === LineCheck.Valid;
      if (ok) {
        const text = headText(buf, i, buf.length);
        const lines = text.split("\n");
        const headers: HeaderField[] = [];
        // The last line may be cut: keep only whole header lines.
        for (let k = 1; k < lines.length - 1; k++) addHeaderLine(headers, stripCr(lines[k]));
        this.state = State.Head;
        this.beginMessage(stripCr(lines[0]), headers, this.leftoverTs, ts, true);
      } else if (i < buf.length) {
        this.skipped += buf.length - i;
      }
    }
    this.state = State.Start;
  }

  handOver(): void {
    if (this.state === State.Upgraded) return;
    if (this.msg) this.finish(this.msg.endTs, this.state === State.BodyClose ? "" : "truncated");
    if (this.leftover) this._upgradedBytes += this.leftover.length;
    this.leftover = null;
    this.state = State.Upgraded;
    this._upgraded = true;
  }
}

const EMPTY = new Uint8Array(0);

/** Leading decimal digits of a header value (after spaces); -1 when there are none. */
function parseDecimal(value: string): number {
  let i = 0;
  while (i < value.length && value.charCodeAt(i) === SP) i++;
  let n = 0;
  const start = i;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
  }
  return i === start ? -1 : n;
}

function stripCr(line: string): string {
  return line.length && line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line;
}

function addHeaderLine(headers: HeaderField[], line: string) {
  if (!line) return;
  const first = line.charCodeAt(0);
  if (first === SP || first === 9) {
    // obs-fold: a continuation of the previous field's value.
    const prev = headers[headers.length - 1];
    if (prev) prev.value = `${prev.value} ${line.trim()}`;
    return;
  }
  const colon = line.indexOf(":");
  if (colon <= 0) return; // not a field: ignored, as a tolerant reader does
  headers.push({ name: line.slice(0, colon), value: line.slice(colon + 1).trim() });
}

export function createHttp1Parser(kind: "request" | "response", options: Http1ParserOptions): Http1Parser {
  return new Parser(kind, options);
}
