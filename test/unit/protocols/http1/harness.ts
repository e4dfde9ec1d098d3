// Feeding the HTTP/1 parser in tests: byte builders, runs over split points, and a
// timestamp-free shape of messages to compare runs with.
import { createHttp1Parser } from "../../../../src/protocols/http1/parser.ts";
import type { Http1Message, Http1Parser } from "../../../../src/protocols/http1/types.ts";

/** Bytes from parts: strings byte for byte (latin1: one char, one byte), arrays as they are. */
export function bytes(...parts: (string | Uint8Array)[]): Uint8Array {
  const bufs = parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  const all = Buffer.concat(bufs);
  return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Body bytes as a string, byte for byte. */
export const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

export interface FeedOptions {
  /** Response parsers: methods of the requests, in order. */
  methods?: string[];
  maxBody?: number;
  /** Call end() after the last chunk (default true). */
  end?: boolean;
  /** gap(lost) before the chunk of that index. */
  gaps?: Record<number, number>;
}

export interface Run {
  messages: Http1Message[];
  /** onRequestHead calls, in order. */
  heads: string[];
  parser: Http1Parser;
}

/** Feeds chunks in order, the i-th with timestamp i + 1 (end() gets chunks.length + 1). */
export function feed(kind: "request" | "response", chunks: Uint8Array[], opts: FeedOptions = {}): Run {
  const messages: Http1Message[] = [];
  const heads: string[] = [];
  const parser = createHttp1Parser(kind, {
    maxBody: opts.maxBody,
    onMessage: (m) => messages.push(m),
    onRequestHead: (m) => heads.push(m),
  });
  for (const m of opts.methods ?? []) parser.expectResponseTo(m);
  chunks.forEach((c, i) => {
    const lost = opts.gaps?.[i];
    if (lost) parser.gap(lost, i + 1);
    parser.push(c, i + 1);
  });
  if (opts.end !== false) parser.end(chunks.length + 1);
  return { messages, heads, parser };
}

/** `data` cut at the given offsets (ascending, inside the data). Each piece is a copy, so no
 * test passes by sharing memory with another piece. */
export function cut(data: Uint8Array, splits: number[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const s of [...splits, data.length]) {
    pieces.push(data.slice(at, s));
    at = s;
  }
  return pieces;
}

export function feedSplit(kind: "request" | "response", data: Uint8Array, splits: number[], opts: FeedOptions = {}): Run {
  return feed(kind, cut(data, splits), opts);
}

/** A message without its timestamps (which depend on the splits), its body as a string. */
export function shape(m: Http1Message): Record<string, unknown> {
  const { startTs: _s, endTs: _e, body, ...rest } = m;
  return { ...rest, body: latin1(body) };
}
