// Bodies in the HTTP/1 parser: the maxBody limit with the true size, memory held for large
// bodies, many small pieces, and Content-Encoding decoding at message end.
import { describe, expect, test } from "bun:test";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
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
  const plain = text(20000);
  const response = (encoding: string, encoded: Uint8Array) =>
    bytes(`HTTP/1.1 200 OK\r\nContent-Encoding: ${encoding}\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded);

  test.each([
    ["gzip", "gzip", gzipSync(plain)],
    ["x-gzip", "gzip", gzipSync(plain)],
    ["GZIP", "gzip", gzipSync(plain)],
    ["deflate", "deflate", deflateSync(plain)],
    ["deflate", "deflate", deflateRawSync(plain)],
    ["br", "br", brotliCompressSync(plain)],
    ["gzip, br", "gzip, br", brotliCompressSync(gzipSync(plain))],
    ["identity, gzip", "gzip", gzipSync(plain)],
  ])("%s is decoded (as %s); bodySize is the size sent", (header, decoded, encoded) => {
    const data = response(header, encoded);
    for (const splits of [[], [data.length >> 1], [70, 71, 72, data.length - 1]]) {
      const [m] = feed("response", cut(data, splits)).messages;
      expect(latin1(m.body)).toBe(plain);
      expect(m).toMatchObject({ bodySize: encoded.length, decodedEncoding: decoded, decodeError: "", bodyTruncated: false, incomplete: "" });
    }
  });

  test("a chunked gzip body is de-chunked, then decoded", () => {
    const encoded = gzipSync(plain);
    const [m] = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", chunked(encoded, 333))]).messages;
    expect(latin1(m.body)).toBe(plain);
    expect(m.bodySize).toBe(encoded.length);
  });

  test("request bodies are decoded too", () => {
    const encoded = gzipSync("{\"a\":1}");
    const [m] = feed("request", [bytes(`POST /api HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded)]).messages;
    expect([latin1(m.body), m.decodedEncoding]).toEqual(['{"a":1}', "gzip"]);
  });

  test("a body that does not decode is kept as sent, with the reason", () => {
    const [m] = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnope!")]).messages;
    expect(shape(m)).toMatchObject({ body: "nope!", decodedEncoding: "", bodyTruncated: false });
    expect(m.decodeError).toStartWith("gzip: ");
  });

  test("an unsupported coding leaves the body as sent, with the reason", () => {
    const [m] = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 4\r\n\r\n\x28\xb5\x2f\xfd")]).messages;
    expect(shape(m)).toMatchObject({ body: "\x28\xb5\x2f\xfd", decodedEncoding: "", decodeError: 'unsupported content coding "zstd"' });
  });

  test("no body, nothing to decode: HEAD, 204, an empty body", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 30\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n")], {
      methods: ["HEAD", "GET"],
    });
    expect(run.messages.map(shape)).toMatchObject([
      { body: "", decodedEncoding: "", decodeError: "" },
      { body: "", decodedEncoding: "", decodeError: "" },
    ]);
  });

  test.each([
    ["gzip", gzipSync(plain)],
    ["deflate", deflateSync(plain)],
    ["br", brotliCompressSync(plain)],
  ])("%s cut short by the stream: the part sent decodes as far as it goes", (encoding, encoded) => {
    const sent = Math.floor(encoded.length * 0.6);
    const data = response(encoding, encoded).subarray(0, -(encoded.length - sent));
    const [m] = feed("response", [data]).messages;
    expect(m).toMatchObject({ incomplete: "truncated", bodyTruncated: true, decodedEncoding: encoding, decodeError: "", bodySize: sent });
    expect(m.body.length).toBeGreaterThan(0);
    expect(plain.startsWith(latin1(m.body))).toBe(true);
  });

  test("an encoded body longer than maxBody: its kept prefix decodes, to at most maxBody bytes", () => {
    const encoded = gzipSync(plain);
    const maxBody = Math.floor(encoded.length / 2);
    const [m] = feed("response", [response("gzip", encoded)], { maxBody }).messages;
    expect(m.body.length).toBeLessThanOrEqual(maxBody);
    expect(m.body.length).toBeGreaterThan(maxBody / 2);
    expect(plain.startsWith(latin1(m.body))).toBe(true);
    expect(m).toMatchObject({ bodySize: encoded.length, bodyTruncated: true, decodedEncoding: "gzip", incomplete: "" });
  });

  test.each([
    ["gzip", gzipSync(plain)],
    ["br", brotliCompressSync(plain)],
    ["deflate", deflateRawSync(plain)],
  ])("%s decoding to more than maxBody: the output is cut near maxBody", (encoding, encoded) => {
    const maxBody = 4096;
    expect(encoded.length).toBeLessThan(maxBody);
    const [m] = feed("response", [response(encoding, encoded)], { maxBody }).messages;
    expect(m.body.length).toBeLessThanOrEqual(maxBody);
    expect(m.body.length).toBeGreaterThan(maxBody * 0.9);
    expect(plain.startsWith(latin1(m.body))).toBe(true);
    expect(m).toMatchObject({ bodyTruncated: true, decodedEncoding: encoding, bodySize: encoded.length });
  });

  test("bytes lost inside an encoded body: what came before the gap decodes", () => {
    const encoded = gzipSync(plain);
    const data = response("gzip", encoded);
    const headLen = data.length - encoded.length;
    const first = headLen + 2000;
    const run = feed("response", [data.subarray(0, first), data.subarray(first + 100)], { gaps: { 1: 100 } });
    const [m] = run.messages;
    expect(m).toMatchObject({ incomplete: "lost-bytes", lostBytes: 100, bodySize: encoded.length, bodyTruncated: true, decodedEncoding: "gzip" });
    expect(plain.startsWith(latin1(m.body))).toBe(true);
    expect(m.body.length).toBeGreaterThan(2000);
  });
});
