// Property tests of the HTTP/1 parser with fast-check: any bytes, split anywhere, with gaps,
// never throw and give sane messages; any stream (garbage included) gives the same messages
// however it is split; valid messages are found after garbage, and whole around gaps.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { Http1Message } from "../../../../src/protocols/http1/types.ts";
import { CASES } from "./cases.ts";
import { bytes, cut, feed, shape } from "./harness.ts";

const MAX_BODY = 256;
const INCOMPLETE = new Set(["", "truncated", "lost-bytes", "bad-framing"]);

/** Pieces that make parsers go places: start lines, framing fields, line ends, bodies. */
const TOKENS = [
  "GET / HTTP/1.1\r\n",
  "HEAD /h HTTP/1.1\r\n",
  "POST /p HTTP/1.0\r\n",
  "CONNECT h:443 HTTP/1.1\r\n",
  "PROPFIND /x HTTP/1.1\n",
  "HTTP/1.1 200 OK\r\n",
  "HTTP/1.1 100 Continue\r\n\r\n",
  "HTTP/1.1 101 Switching\r\n\r\n",
  "HTTP/1.1 204 \r\n",
  "HTTP/1.0 304\n",
  "Content-Length: 5\r\n",
  "Content-Length: 0\r\n",
  "Content-Length: x\r\n",
  "Transfer-Encoding: chunked\r\n",
  "Content-Encoding: gzip\r\n",
  "Content-Encoding: br, gzip\r\n",
  "X-Fold: a\r\n b\r\n",
  "\r\n",
  "\n",
  "\r",
  " ",
  "5\r\nhello\r\n",
  "0\r\n\r\n",
  "1;ext=1\r\nx\r\n",
  "ff\r\n",
  "Trailer: t\r\n\r\n",
  "\x1f\x8b\x08\x00",
  "hello",
  "GE",
  "HTTP/1.",
].map((t) => bytes(t));

const piece = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TOKENS) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(...CASES.map((c) => c.data)) },
);
const stream = fc.array(piece, { maxLength: 24 }).map((pieces) => bytes(...pieces));
const kind = fc.constantFrom<"request" | "response">("request", "response");
const methods = fc.array(fc.constantFrom("GET", "HEAD", "POST", "CONNECT"), { maxLength: 6 });
/** Split points for data of length n. */
const splitsOf = (n: number, raw: number[]) => [...new Set(raw.map((x) => x % Math.max(1, n)))].filter((x) => x > 0).sort((a, b) => a - b);

function expectSane(m: Http1Message, kindWanted: string) {
  expect(m.kind).toBe(kindWanted as never);
  expect(INCOMPLETE.has(m.incomplete)).toBe(true);
  for (const n of [m.bodySize, m.lostBytes, m.skippedBefore]) {
    expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
  }
  expect(m.body).toBeInstanceOf(Uint8Array);
  expect(m.body.length).toBeLessThanOrEqual(MAX_BODY);
  expect(m.body.length).toBeLessThanOrEqual(m.bodySize);
  if (!m.bodyTruncated) expect(m.body.length).toBe(m.bodySize);
  // Lost bytes make a message incomplete; a later cut (end, bad framing) is the reason given.
  if (m.lostBytes > 0) expect(m.incomplete).not.toBe("");
  expect(m.startTs).toBeLessThanOrEqual(m.endTs);
  expect(m.version).toMatch(/^HTTP\/1\.\d$/);
  for (const h of [...m.headers, ...m.trailers]) {
    expect(h.name.length).toBeGreaterThan(0);
    expect(h.name.includes("\n") || h.name.includes(":")).toBe(false);
    expect(h.value.includes("\n")).toBe(false);
    expect(/^[ \t]|[ \t]$/.test(h.value)).toBe(false);
  }
  if (m.kind === "response") {
    expect(m.status >= 100 && m.status <= 999).toBe(true);
    expect(m.informational).toBe(m.status < 200 && m.status !== 101);
  } else {
    expect(m.method).toMatch(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/);
    expect(m.target.length).toBeGreaterThan(0);
    expect(m.target.includes(" ")).toBe(false);
  }
}

describe("fuzzing", () => {
  test("any bytes, split anywhere, with gaps: no throw, sane messages, bytes accounted for", () => {
    fc.assert(
      fc.property(kind, stream, fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat(300), { maxLength: 9 }), methods, (k, data, rawSplits, lost, ms) => {
        const chunks = cut(data, splitsOf(data.length, rawSplits));
        const gaps: Record<number, number> = {};
        lost.forEach((n, i) => (gaps[i] = n));
        const run = feed(k, chunks, { maxBody: MAX_BODY, gaps, methods: ms });
        let skipped = run.parser.pendingSkipped;
        for (const m of run.messages) {
          expectSane(m, k);
          skipped += m.skippedBefore;
        }
        expect(skipped).toBeLessThanOrEqual(data.length);
        const lostTotal = Object.values(gaps).reduce((a, b) => a + b, 0);
        expect(run.parser.upgradedBytes).toBeLessThanOrEqual(data.length + lostTotal);
      }),
      { numRuns: 3000 },
    );
  });

  test("any stream, garbage included, gives the same messages however it is split", () => {
    fc.assert(
      fc.property(kind, stream, fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), methods, (k, data, rawSplits, ms) => {
        const once = feed(k, [data], { maxBody: MAX_BODY, methods: ms });
        const split = feed(k, cut(data, splitsOf(data.length, rawSplits)), { maxBody: MAX_BODY, methods: ms });
        expect(split.messages.map(shape)).toEqual(once.messages.map(shape));
        expect(split.heads).toEqual(once.heads);
        expect(split.parser.pendingSkipped).toBe(once.parser.pendingSkipped);
        expect(split.parser.upgradedBytes).toBe(once.parser.upgradedBytes);
      }),
      { numRuns: 3000 },
    );
  });

  test("pipelined valid messages, split anywhere: each read as when alone", () => {
    const requests = CASES.filter((c) => c.kind === "request");
    const responses = CASES.filter((c) => c.kind === "response" && !c.untilClose && !c.name.startsWith("101") && !c.name.includes("CONNECT"));
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (isRequest, picks, rawSplits) => {
        const pool = isRequest ? requests : responses;
        const chosen = picks.map((i) => pool[i % pool.length]);
        const data = bytes(...chosen.map((c) => c.data));
        const ms = chosen.flatMap((c) => c.methods ?? c.expect.filter((e) => e.informational !== true).map(() => "GET"));
        const k = isRequest ? "request" : "response";
        const alone = chosen.flatMap((c) => feed(k, [c.data], { methods: c.methods }).messages.map(shape));
        const together = feed(k, cut(data, splitsOf(data.length, rawSplits)), { methods: ms }).messages.map(shape);
        expect(together).toEqual(alone);
      }),
      { numRuns: 500 },
    );
  });

  // Bytes that can neither begin nor complete a start line: no SP, LF, capitals, "-" or "_".
  const inert = fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => {
    const out = a.filter((b) => b !== 0x20 && b !== 0x0a && b !== 0x2d && b !== 0x5f && !(b >= 0x41 && b <= 0x5a));
    return bytes("\x00", out);
  });

  test("garbage before valid messages: all of it skipped, the messages found", () => {
    const plainCases = CASES.filter((c) => !c.methods || c.methods.length === 0);
    fc.assert(
      fc.property(inert, fc.integer({ min: 0, max: plainCases.length - 1 }), fc.array(fc.nat(), { maxLength: 6 }), (garbage, i, rawSplits) => {
        const c = plainCases[i];
        const data = bytes(garbage, c.data);
        const found = feed(c.kind, cut(data, splitsOf(data.length, rawSplits))).messages.map(shape);
        const alone = feed(c.kind, [c.data]).messages.map(shape);
        alone[0].skippedBefore = garbage.length;
        expect(found).toEqual(alone);
      }),
      { numRuns: 500 },
    );
  });

  test("a gap inside a Content-Length body: that message is marked, the next is whole", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), (size, a, b) => {
        const first = bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
        const body = new Uint8Array(size).fill(0x62);
        const next = bytes("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
        const where = a % size; // body bytes before the gap
        const lost = 1 + (b % (size - where)); // up to the end of the body
        const run = feed("response", [bytes(first, body.subarray(0, where)), bytes(body.subarray(where + lost), next)], { gaps: { 1: lost } });
        expect(run.messages.map(shape)).toMatchObject([
          { status: 200, bodySize: size, lostBytes: lost, incomplete: "lost-bytes", bodyTruncated: true, body: "b".repeat(where) },
          { status: 201, body: "ok", incomplete: "", skippedBefore: 0 },
        ]);
      }),
      { numRuns: 500 },
    );
  });
});
