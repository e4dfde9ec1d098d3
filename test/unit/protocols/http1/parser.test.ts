// The HTTP/1 parser on byte fixtures: a table of well-formed exchanges, every split point,
// every prefix, resynchronisation, gaps, truncation, content decoding and fuzzing.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { createHttp1Parser } from "../../../../src/protocols/http1/parser.ts";
import type { Http1Message, Http1Request, Http1Response } from "../../../../src/protocols/http1/types.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const concat = (...parts: (string | Uint8Array)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

interface Run {
  messages: Http1Message[];
  heads: string[];
}

/** Parse `bytes` split at the given offsets; responses get `methods` as their requests. */
function parse(kind: "request" | "response", bytes: Uint8Array, splits: number[] = [], opts: { methods?: string[]; maxBody?: number; end?: boolean } = {}): Run {
  const run: Run = { messages: [], heads: [] };
  const p = createHttp1Parser(kind, { maxBody: opts.maxBody, onMessage: (m) => run.messages.push(m), onRequestHead: (m) => run.heads.push(m) });
  for (const m of opts.methods ?? []) p.expectResponseTo(m);
  let at = 0;
  let ts = 1;
  for (const s of [...splits, bytes.length]) {
    p.push(bytes.slice(at, s), ts++);
    at = s;
  }
  if (opts.end !== false) p.end(ts);
  return run;
}

/** A message without its timestamps, which depend on the splits. */
function shape(m: Http1Message) {
  const { startTs: _s, endTs: _e, ...rest } = m;
  return { ...rest, body: text(m.body) };
}

interface Case {
  name: string;
  kind: "request" | "response";
  bytes: Uint8Array;
  methods?: string[];
  expect: Partial<Record<string, unknown>>[];
}

const CASES: Case[] = [
  {
    name: "GET without a body",
    kind: "request",
    bytes: enc("GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n"),
    expect: [{ method: "GET", target: "/a?b=c", version: "HTTP/1.1", headers: [{ name: "Host", value: "h" }, { name: "X-Dup", value: "1" }, { name: "x-dup", value: "2" }], body: "", bodySize: 0, incomplete: "" }],
  },
  {
    name: "POST with Content-Length",
    kind: "request",
    bytes: enc("POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"),
    expect: [{ method: "POST", body: "hello world", bodySize: 11, bodyTruncated: false }],
  },
  {
    name: "chunked with extensions and trailers",
    kind: "request",
    bytes: enc("PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n"),
    expect: [{ method: "PUT", body: "hello world", bodySize: 11, trailers: [{ name: "X-Sum", value: "1" }, { name: "X-Other", value: "two" }], incomplete: "" }],
  },
  {
    name: "pipelined requests",
    kind: "request",
    bytes: enc("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.0\r\n\r\n"),
    expect: [{ target: "/1" }, { target: "/2", body: "abc" }, { target: "/3", version: "HTTP/1.0" }],
  },
  {
    name: "bare LF line endings and an obs-fold",
    kind: "request",
    bytes: enc("GET / HTTP/1.1\nHost: h\nX-Long: a\n  b\n\n"),
    expect: [{ headers: [{ name: "Host", value: "h" }, { name: "X-Long", value: "a b" }] }],
  },
  {
    name: "a response to HEAD has no body, whatever Content-Length says",
    kind: "response",
    methods: ["HEAD", "GET"],
    bytes: enc("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    expect: [{ status: 200, body: "", bodySize: 0 }, { status: 200, body: "ok" }],
  },
  {
    name: "204 and 304 have no body",
    kind: "response",
    bytes: enc("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
    expect: [{ status: 204, reason: "No Content" }, { status: 304, body: "" }, { status: 200, body: "x" }],
  },
  {
    name: "100 Continue before the final response",
    kind: "response",
    methods: ["POST"],
    bytes: enc("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
    expect: [{ status: 100, informational: true }, { status: 201, informational: false, body: "ok" }],
  },
  {
    name: "a close-delimited response ends with the stream",
    kind: "response",
    bytes: enc("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until the end"),
    expect: [{ version: "HTTP/1.0", body: "all of this until the end", bodySize: 25, incomplete: "", bodyTruncated: false }],
  },
  {
    name: "a status line with an empty reason",
    kind: "response",
    bytes: enc("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\nHTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"),
    expect: [{ status: 200, reason: "" }, { status: 404, reason: "" }],
  },
  {
    name: "chunked response with a trailer",
    kind: "response",
    bytes: enc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGrpc-Status: 0\r\n\r\n"),
    expect: [{ body: "abc", bodySize: 3, trailers: [{ name: "Grpc-Status", value: "0" }] }],
  },
  {
    name: "UTF-8 header values are kept as text; other bytes byte for byte",
    kind: "request",
    bytes: concat("GET / HTTP/1.1\r\nX-Name: caf", Buffer.from("é", "utf8"), "\r\n\r\n", "GET /2 HTTP/1.1\r\nX-Raw: ", new Uint8Array([0xe9, 0x41]), "\r\n\r\n"),
    expect: [{ headers: [{ name: "X-Name", value: "café" }] }, { headers: [{ name: "X-Raw", value: "éA" }] }],
  },
];

describe("well-formed messages", () => {
  for (const c of CASES) {
    test(c.name, () => {
      const run = parse(c.kind, c.bytes, [], { methods: c.methods });
      expect(run.messages).toHaveLength(c.expect.length);
      run.messages.forEach((m, i) => expect(shape(m)).toMatchObject(c.expect[i]));
    });
  }

  test("every split point gives the same messages", () => {
    for (const c of CASES) {
      const whole = parse(c.kind, c.bytes, [], { methods: c.methods }).messages.map(shape);
      for (let i = 1; i < c.bytes.length; i++) {
        expect(parse(c.kind, c.bytes, [i], { methods: c.methods }).messages.map(shape)).toEqual(whole);
      }
    }
  });

  test("byte at a time gives the same messages", () => {
    for (const c of CASES) {
      const whole = parse(c.kind, c.bytes, [], { methods: c.methods }).messages.map(shape);
      const every = Array.from({ length: c.bytes.length - 1 }, (_, i) => i + 1);
      expect(parse(c.kind, c.bytes, every, { methods: c.methods }).messages.map(shape)).toEqual(whole);
    }
  });

  test("every prefix of a message with a known length emits nothing before the message is whole", () => {
    const bytes = enc("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    for (let i = 0; i < bytes.length; i++) {
      expect(parse("request", bytes.subarray(0, i), [], { end: false }).messages).toHaveLength(0);
    }
    expect(parse("request", bytes, [], { end: false }).messages).toHaveLength(1);
  });

  test("request heads are announced before bodies, in order", () => {
    const run = parse("request", enc("POST /1 HTTP/1.1\r\nContent-Length: 1\r\n\r\nxHEAD /2 HTTP/1.1\r\n\r\n"));
    expect(run.heads).toEqual(["POST", "HEAD"]);
  });

  test("timestamps: the chunk of the first byte and of the last", () => {
    const bytes = enc("POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    const [m] = parse("request", bytes, [5, 30]).messages;
    expect([m.startTs, m.endTs]).toEqual([1, 3]);
  });
});

describe("bodies", () => {
  const body = "tapwire decodes bodies. ".repeat(200);

  test.each([
    ["gzip", gzipSync(body)],
    ["x-gzip", gzipSync(body)],
    ["deflate", deflateSync(body)],
    ["deflate", deflateRawSync(body)],
    ["br", brotliCompressSync(body)],
  ])("Content-Encoding: %s is decoded; bodySize is the size sent", (encoding, encoded) => {
    const bytes = concat(`HTTP/1.1 200 OK\r\nContent-Encoding: ${encoding}\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded);
    const [m] = parse("response", bytes, [bytes.length >> 1]).messages;
    expect(text(m.body)).toBe(body);
    expect(m.bodySize).toBe(encoded.length);
    expect(m.decodedEncoding).toBe(encoding);
    expect(m.bodyTruncated).toBe(false);
  });

  test("a body that cannot be decoded is kept as sent, with the reason", () => {
    const bytes = enc("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnope!");
    const [m] = parse("response", bytes).messages;
    expect(text(m.body)).toBe("nope!");
    expect(m.decodedEncoding).toBe("");
    expect(m.decodeError).toMatch(/^gzip: /);
  });

  test("maxBody keeps the first bytes and the true size", () => {
    const bytes = enc(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${"x".repeat(1000)}`);
    const [m] = parse("response", bytes, [60, 300], { maxBody: 100 }).messages;
    expect(m.body.length).toBe(100);
    expect(m.bodySize).toBe(1000);
    expect(m.bodyTruncated).toBe(true);
    expect(m.incomplete).toBe("");
  });

  test("a gzip body over maxBody decodes to at most maxBody bytes", () => {
    const big = "a".repeat(1 << 20);
    const encoded = gzipSync(big);
    const bytes = concat(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded);
    const [m] = parse("response", bytes, [], { maxBody: 4096 }).messages;
    expect(m.body.length).toBeLessThanOrEqual(4096);
    expect(m.body.length).toBeGreaterThan(0);
    expect(text(m.body)).toBe("a".repeat(m.body.length));
    expect(m.bodyTruncated).toBe(true);
  });

  test("a large body is not held beyond maxBody", () => {
    const p = createHttp1Parser("response", { maxBody: 1024, onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.push(enc(`HTTP/1.1 200 OK\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`), 1);
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 100; i++) p.push(chunk, 2);
    expect(msgs).toHaveLength(1);
    expect(msgs[0].body.length).toBe(1024);
    expect(msgs[0].bodySize).toBe(100 * 1024 * 1024);
  });
});

describe("damage", () => {
  test("garbage before a valid request is skipped and counted", () => {
    const run = parse("request", enc("\x00\x01garbage here\r\nmore: junk\r\nGET /ok HTTP/1.1\r\nHost: h\r\n\r\n"));
    expect(run.messages).toHaveLength(1);
    expect(run.messages[0]).toMatchObject({ method: "GET", target: "/ok", skippedBefore: 28 });
  });

  test("a stream joined in the middle of a response body resynchronises at the next response", () => {
    const run = parse("response", enc("dle of a body\r\n and more</html>HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    expect(run.messages).toHaveLength(1);
    expect(run.messages[0]).toMatchObject({ status: 200, skippedBefore: 31 });
    expect(text(run.messages[0].body)).toBe("hi");
  });

  test("a request joined mid-body: the next request with no newline before it is found", () => {
    const run = parse("request", enc("e of an upload...POST /next HTTP/1.1\r\nContent-Length: 1\r\n\r\nZ"));
    expect(run.messages.map((m) => (m as Http1Request).target)).toEqual(["/next"]);
  });

  test("garbage across pushes keeps only a small tail and finds the message", () => {
    const p = createHttp1Parser("request", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    for (let i = 0; i < 1000; i++) p.push(enc("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), i);
    expect(p.pendingSkipped).toBeGreaterThan(60000);
    p.push(enc("GE"), 1000);
    p.push(enc("T / HTTP/1.1\r\n\r\n"), 1001);
    expect(msgs).toHaveLength(1);
    expect(msgs[0].skippedBefore).toBe(64000);
  });

  test("a truncated stream emits the partial message as truncated", () => {
    const run = parse("response", enc("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"));
    expect(run.messages).toHaveLength(1);
    expect(shape(run.messages[0])).toMatchObject({ status: 200, body: "only this", bodySize: 9, incomplete: "truncated", bodyTruncated: true });
  });

  test("a head cut short emits what its start line says", () => {
    const run = parse("request", enc("GET /cut HTTP/1.1\r\nHost: h\r\nUser-Ag"));
    expect(run.messages).toHaveLength(1);
    expect(run.messages[0]).toMatchObject({ method: "GET", target: "/cut", headers: [{ name: "Host", value: "h" }], incomplete: "truncated" });
  });

  test("a whitespace remainder emits nothing", () => {
    expect(parse("request", enc("GET / HTTP/1.1\r\n\r\n\r\n")).messages).toHaveLength(1);
  });

  test("bytes lost inside a Content-Length body: skipped exactly, the next message is whole", () => {
    const p = createHttp1Parser("response", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.push(enc("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789"), 1);
    p.gap(5, 2);
    p.push(enc("fghijHTTP/1.1 204 No Content\r\n\r\n"), 3);
    expect(msgs).toHaveLength(2);
    expect(shape(msgs[0])).toMatchObject({ body: "0123456789fghij", bodySize: 20, lostBytes: 5, incomplete: "lost-bytes", bodyTruncated: true });
    expect(shape(msgs[1])).toMatchObject({ status: 204, incomplete: "" });
  });

  test("bytes lost inside a chunk", () => {
    const p = createHttp1Parser("response", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.push(enc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234"), 1);
    p.gap(3, 2);
    p.push(enc("89\r\n0\r\n\r\n"), 3);
    expect(shape(msgs[0])).toMatchObject({ body: "0123489", bodySize: 10, lostBytes: 3, incomplete: "lost-bytes" });
  });

  test("bytes lost inside a head: nothing invented, the next message is found", () => {
    const p = createHttp1Parser("request", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.push(enc("GET /a HTTP/1.1\r\nHo"), 1);
    p.gap(40, 2);
    p.push(enc("ader: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), 3);
    expect(msgs.map((m) => (m as Http1Request).target)).toEqual(["/b"]);
    expect(msgs[0].skippedBefore).toBeGreaterThan(0);
  });

  test("bytes lost past the end of a body end that message and resynchronise", () => {
    const p = createHttp1Parser("response", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.push(enc("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), 1);
    p.gap(50, 2);
    p.push(enc("xyzHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nq"), 3);
    expect(msgs).toHaveLength(2);
    expect(shape(msgs[0])).toMatchObject({ body: "ab", incomplete: "lost-bytes", bodySize: 4 });
    expect(shape(msgs[1])).toMatchObject({ body: "q", incomplete: "" });
  });

  test("a broken chunk size ends the message as truncated", () => {
    const run = parse("response", enc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    expect(run.messages[0]).toMatchObject({ incomplete: "truncated" });
    expect(run.messages[1]).toMatchObject({ status: 200, incomplete: "" });
  });
});

describe("upgrades", () => {
  test("101 Switching Protocols hands the stream over", () => {
    const p = createHttp1Parser("response", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.expectResponseTo("GET");
    p.push(enc("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00\x12\x04"), 1);
    p.push(enc("more frames"), 2);
    expect(msgs).toHaveLength(1);
    expect((msgs[0] as Http1Response).status).toBe(101);
    expect(p.upgraded).toBe(true);
    expect(p.upgradedBytes).toBe(4 + 11);
  });

  test("a 2xx to CONNECT is a tunnel", () => {
    const run = parse("response", enc("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01binary"), [], { methods: ["CONNECT"] });
    expect(run.messages).toHaveLength(1);
    expect(run.messages[0]).toMatchObject({ status: 200, bodySize: 0 });
  });

  test("handOver stops a request parser", () => {
    const p = createHttp1Parser("request", { onMessage: (m) => msgs.push(m) });
    const msgs: Http1Message[] = [];
    p.push(enc("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), 1);
    p.handOver();
    p.push(enc("GET / HTTP/1.1\r\n\r\n"), 2);
    expect(msgs).toHaveLength(1);
    expect((msgs[0] as Http1Request).target).toBe("h:443");
    expect(p.upgradedBytes).toBe(18);
  });
});

describe("fuzzing", () => {
  const valid = CASES.map((c) => c.bytes);

  test("arbitrary bytes, split anywhere, never throw and give sane messages", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<"request" | "response">("request", "response"),
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(...valid)), { maxLength: 8 }),
        fc.array(fc.nat(2000), { maxLength: 6 }),
        (kind, pieces, gaps) => {
          const msgs: Http1Message[] = [];
          const p = createHttp1Parser(kind, { maxBody: 256, onMessage: (m) => msgs.push(m) });
          pieces.forEach((piece, i) => {
            p.push(piece, i);
            if (gaps[i]) p.gap(gaps[i], i);
          });
          p.end(99);
          for (const m of msgs) {
            expect(m.body.length).toBeLessThanOrEqual(256);
            expect(m.bodySize).toBeGreaterThanOrEqual(0);
            expect(m.skippedBefore).toBeGreaterThanOrEqual(0);
            if (m.kind === "response") expect(m.status).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("valid messages with random splits parse as they do whole", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: CASES.length - 1 }), fc.array(fc.nat(), { maxLength: 10 }), (i, cuts) => {
        const c = CASES[i];
        const splits = [...new Set(cuts.map((x) => x % c.bytes.length))].filter((x) => x > 0).sort((a, b) => a - b);
        const whole = parse(c.kind, c.bytes, [], { methods: c.methods }).messages.map(shape);
        expect(parse(c.kind, c.bytes, splits, { methods: c.methods }).messages.map(shape)).toEqual(whole);
      }),
      { numRuns: 500 },
    );
  });
});
