// A message's head: where it ends (its blank line, within MAX_HEAD), and the head bytes made
// into a message — start line, header fields, and what the head says about its body. The
// start line was checked before (start-line.ts), so it is cut here without checks.
import { CR, decodeText, EMPTY, LF } from "./bytes.ts";
import { addContentLength, NO_LENGTH } from "./framing.ts";
import { BodyField, readFields } from "./header-fields.ts";
import { MAX_HEAD } from "./limits.ts";
import type { HeaderField, Http1Message, Http1Request, Http1Response } from "./types.ts";

/** findHeadEnd: the bytes so far do not say where the head ends. */
export const NOT_FOUND = -1;
/** findHeadEnd: the head would be longer than MAX_HEAD. */
export const TOO_LONG = -2;

/**
 * Where the head starting at `pos` ends (just past its blank line); NOT_FOUND when the bytes
 * so far do not say, TOO_LONG when it would be longer than MAX_HEAD.
 */
export function findHeadEnd(buf: Uint8Array, pos: number): number {
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

/** What a head says about reading its body, from the fields that bear on it (values joined
 * across repeated fields, obs-folds included). Filled by readHead. */
/** Content-Type of Server-Sent Events. */
const EVENT_STREAM = /^text\/event-stream\s*(?:;|$)/i;

export interface BodyHeaders {
  /** NO_LENGTH without Content-Length, BAD_LENGTH when invalid. */
  contentLength: number;
  /** null without Transfer-Encoding. */
  transferEncoding: string | null;
  /** "" without Content-Encoding. */
  contentEncoding: string;
  /** Content-Type is text/event-stream: the body is Server-Sent Events. */
  eventStream: boolean;
}

/** Fields noted by readFields: field index * 4 + BodyField. Scratch, reused. */
const noted: number[] = [];

/**
 * The head in buf[pos, end) made into a message (its body empty, its timestamps startTs), and
 * what it says about its body into `body`. `whole`: the head ended with its blank line;
 * otherwise it was cut and its last unfinished line is left out.
 */
export function readHead(
  buf: Uint8Array,
  pos: number,
  end: number,
  whole: boolean,
  isRequest: boolean,
  startTs: number,
  skippedBefore: number,
  body: BodyHeaders,
): Http1Message {
  const text = decodeText(buf, pos, end);
  let nl = text.indexOf("\n");
  if (nl < 0) nl = text.length; // a start line cut at the end of the stream
  let le = nl;
  if (le > 0 && text.charCodeAt(le - 1) === CR) le--;
  const headers: HeaderField[] = [];
  noted.length = 0;
  readFields(text, nl + 1, headers, whole, noted);

  // The fields that bear on the body, read once the values are final (obs-folds joined).
  body.contentLength = NO_LENGTH;
  body.transferEncoding = null;
  body.contentEncoding = "";
  body.eventStream = false;
  for (let k = 0; k < noted.length; k++) {
    const value = headers[noted[k] >> 3].value;
    switch ((noted[k] & 7) as BodyField) {
      case BodyField.ContentLength:
        body.contentLength = addContentLength(body.contentLength, value);
        break;
      case BodyField.TransferEncoding:
        body.transferEncoding = body.transferEncoding === null ? value : `${body.transferEncoding}, ${value}`;
        break;
      case BodyField.ContentEncoding:
        body.contentEncoding = body.contentEncoding === "" ? value : `${body.contentEncoding}, ${value}`;
        break;
      case BodyField.ContentType:
        // Every response has one: the first letter turns almost all away without the pattern.
        body.eventStream = (value.charCodeAt(0) | 0x20) === 0x74 /* t */ && EVENT_STREAM.test(value);
        break;
    }
  }

  if (isRequest) {
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
      contentEncoding: "",
      startTs,
      endTs: startTs,
      incomplete: "",
      lostBytes: 0,
      skippedBefore,
    };
    return request;
  }
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
    contentEncoding: "",
    startTs,
    endTs: startTs,
    incomplete: "",
    lostBytes: 0,
    skippedBefore,
  };
  return response;
}
