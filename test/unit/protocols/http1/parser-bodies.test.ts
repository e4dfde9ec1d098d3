// Bodies in the HTTP/1 parser: the maxBody limit with the true size, memory held for large
// bodies, many small pieces, and the Content-Encoding a body is passed on with.
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import type { Http1Message } from "../../../../src/protocols/http1/types.ts";
import { bytes, cut, feed, latin1, shape } from "./harness.ts";

/** Compressible text, not too repetitive (so compressed sizes are realistic). */
function text(n: number): string {
  let s = "";
  for (let i = 0; s.length < n; i++) s += `line ${i}: tapwire reads HTTP bodies, value=${(i * 7919) % 1000}\n`;
  return s.slice(0, n);
}

const chunked = (body: Uint8Array, size: number) => {
  const parts: (string | Uint8Array)[] = [];
  for (let i = 0; i < body.length; i += size) {
    const piece = body.subarray(i, i + size);
    parts.push(`${piece.length.toString(16)}\r\n`, piece, "\r\n");
  }
  parts.push("0\r\n\r\n");
  return bytes(...parts);
};

describe("maxBody", () => {
  test("keeps the first maxBody bytes; bodySize is the true size; the next message is read", () => {
    const data = bytes(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${"x".repeat(1000)}HTTP/1.1 204 No Content\r\n\r\n`);
    for (const splits of [[], [60, 300], [39, 40, 41, 139, 140, 141]]) {
      const ms = feed("response", cut(data, splits), { maxBody: 100 }).messages;
      expect(ms.map(shape)).toMatchObject([
        { body: "x".repeat(100), bodySize: 1000, bodyTruncated: true, incomplete: "" },
        { status: 204, bodyTruncated: false },
      ]);
    }
  });

  test("a body of exactly maxBody bytes is not truncated", () => {
    const [m] = feed("request", [bytes("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", "y".repeat(100))], { maxBody: 100 }).messages;
    expect(m).toMatchObject({ bodySize: 100, bodyTruncated: false });
    expect(m.body.length).toBe(100);
  });

  test("chunked and close-delimited bodies are limited too", () => {
    const body = bytes(text(5000));
    const [c] = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), chunked(body, 700)], { maxBody: 1000 }).messages;
    expect([c.body.length, c.bodySize, c.bodyTruncated, latin1(c.body)]).toEqual([1000, 5000, true, latin1(body.subarray(0, 1000))]);
    const [u] = feed("response", [bytes("HTTP/1.1 200 OK\r\n\r\n"), body], { maxBody: 1000 }).messages;
    expect([u.body.length, u.bodySize, u.bodyTruncated, u.incomplete]).toEqual([1000, 5000, true, ""]);
  });

  test("maxBody 0 keeps nothing and still counts", () => {
    const [m] = feed("request", [bytes("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")], { maxBody: 0 }).messages;
    expect([m.body.length, m.bodySize, m.bodyTruncated]).toEqual([0, 3, true]);
  });

  test("many tiny chunks and tiny pushes give the same body", () => {
    const body = bytes(text(3000));
    const data = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunked(body, 1));
    const [whole] = feed("response", [data]).messages;
    expect(latin1(whole.body)).toBe(latin1(body));
    const every = Array.from({ length: data.length - 1 }, (_, i) => i + 1);
    const [split] = feed("response", cut(data, every)).messages;
    expect(shape(split)).toEqual(shape(whole));
    const [limited] = feed("response", cut(data, every), { maxBody: 2500 }).messages;
    expect(latin1(limited.body)).toBe(latin1(body.subarray(0, 2500)));
    expect([limited.bodySize, limited.bodyTruncated]).toEqual([3000, true]);
  });

  test("a 100 MiB body is counted, and the pushed chunks past maxBody are not held", () => {
    const refs: WeakRef<Uint8Array>[] = [];
    const ms: Http1Message[] = [];
    const run = feed("response", [bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`)], { end: false, maxBody: 1024 * 1024 });
    const pushChunk = (i: number) => {
      const chunk = new Uint8Array(1024 * 1024).fill(i);
      refs.push(new WeakRef(chunk));
      run.parser.push(chunk, 2 + i);
    };
    for (let i = 0; i < 100; i++) {
      pushChunk(i);
      if (i === 50) {
        Bun.gc(true);
        // Only the first chunk (the kept 1 MiB) is needed. A parser holding views would keep
        // all 50; the GC scans the stack conservatively, so a stray one or two may survive.
        expect(refs.slice(1, 50).filter((r) => r.deref() !== undefined).length).toBeLessThanOrEqual(2);
      }
    }
    ms.push(...run.messages);
    expect(ms).toHaveLength(1);
    expect(ms[0]).toMatchObject({ bodySize: 100 * 1024 * 1024, bodyTruncated: true, incomplete: "" });
    expect(ms[0].body.length).toBe(1024 * 1024);
    expect(ms[0].body[0]).toBe(0);
  });
});

describe("Content-Encoding", () => {
  // The parser hands bodies on as sent, naming their codings: flows decode them (for both
  // HTTP versions; see test/unit/flows/content.test.ts).
  test("the body is passed on as sent, with every Content-Encoding field joined in order", () => {
    const encoded = gzipSync(text(5000));
    const data = bytes(`HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Length: ${encoded.length}\r\ncontent-encoding: gzip\r\n\r\n`, encoded);
    for (const splits of [[], [data.length >> 1], [70, 71, 72, data.length - 1]]) {
      const [m] = feed("response", cut(data, splits)).messages;
      expect(Buffer.from(m.body).equals(Buffer.from(encoded))).toBe(true);
      expect(m).toMatchObject({ contentEncoding: "identity, gzip", bodySize: encoded.length, bodyTruncated: false, incomplete: "" });
    }
  });

  test("a message without Content-Encoding names none; the next message does not inherit one", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny")]);
    expect(run.messages.map((m) => [latin1(m.body), m.contentEncoding])).toEqual([
      ["x", "br"],
      ["y", ""],
    ]);
  });

  test("an encoded body cut short keeps the bytes sent, marked truncated", () => {
    const encoded = gzipSync(text(20000));
    const sent = 500;
    const [m] = feed("response", [bytes(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded.subarray(0, sent))]).messages;
    expect(Buffer.from(m.body).equals(Buffer.from(encoded.subarray(0, sent)))).toBe(true);
    expect(m).toMatchObject({ contentEncoding: "gzip", bodySize: sent, bodyTruncated: true, incomplete: "truncated" });
  });
});
