// The HTTP/1 parser on damaged streams: garbage, streams joined mid-message, bounds on what
// is buffered, streams cut short, bytes lost (gap) and invalid framing.
import { describe, expect, test } from "bun:test";
import type { Http1Request, Http1Response } from "../../../../src/protocols/http1/types.ts";
import { bytes, feed, feedSplit, shape } from "./harness.ts";

const at = (data: Uint8Array, s: string) => Buffer.from(data).indexOf(s, 0, "latin1");
const targets = (ms: unknown[]) => ms.map((m) => (m as Http1Request).target);

/** The stream read whole and at a few split points gives the same messages. */
function sameAtSplits(kind: "request" | "response", data: Uint8Array, opts = {}) {
  const once = feed(kind, [data], opts).messages.map(shape);
  for (const s of [1, 2, 7, 19, data.length >> 2, data.length >> 1, data.length - 3, data.length - 1]) {
    if (s > 0 && s < data.length) expect(feedSplit(kind, data, [s], opts).messages.map(shape)).toEqual(once);
  }
  return once;
}

describe("resynchronisation", () => {
  test("garbage before a request is skipped and counted", () => {
    const data = bytes("\x00\x01garbage here\r\nmore: junk\r\nGET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
    const ms = sameAtSplits("request", data);
    expect(ms).toMatchObject([{ method: "GET", target: "/ok", skippedBefore: at(data, "GET"), incomplete: "" }]);
  });

  test("garbage before a response is skipped and counted", () => {
    const data = bytes("\x16\x03\x01 HTTP/2 nope HTTP/1.1 20 HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    const ms = sameAtSplits("response", data);
    expect(ms).toMatchObject([{ status: 200, body: "x", skippedBefore: at(data, "HTTP/1.1 200") }]);
  });

  test("a response stream joined in the middle of a body", () => {
    const data = bytes("dle of a body\r\n and more</html>HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    expect(sameAtSplits("response", data)).toMatchObject([{ status: 200, body: "hi", skippedBefore: 31 }]);
  });

  test("a request stream joined mid-body: the next request is found with no line break before it", () => {
    const data = bytes("e of an upload...POST /next HTTP/1.1\r\nContent-Length: 1\r\n\r\nZ");
    expect(sameAtSplits("request", data)).toMatchObject([{ method: "POST", target: "/next", body: "Z", skippedBefore: 17 }]);
  });

  test("a request stream joined in the middle of a head", () => {
    const data = bytes("ent: curl/8.5.0\r\nAccept: */*\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    expect(sameAtSplits("request", data)).toMatchObject([{ target: "/b", skippedBefore: at(data, "GET") }]);
  });

  test("a known method glued to garbage is found; an unknown one only at a line start", () => {
    const glued = bytes("\x00xxGET / HTTP/1.1\r\n\r\n");
    expect(sameAtSplits("request", glued)).toMatchObject([{ method: "GET", skippedBefore: 3 }]);
    const lineStart = bytes("\x00junk\r\nPROPFIND /d HTTP/1.1\r\n\r\n");
    expect(sameAtSplits("request", lineStart)).toMatchObject([{ method: "PROPFIND", target: "/d", skippedBefore: 7 }]);
    const midLine = bytes("\x00junk xxMKCOL /e HTTP/1.1\r\n\r\nGET /f HTTP/1.1\r\n\r\n");
    expect(sameAtSplits("request", midLine)).toMatchObject([{ method: "GET", target: "/f", skippedBefore: at(midLine, "GET") }]);
  });

  test("a start that fails later in its line is garbage, and the search goes on", () => {
    const data = bytes("\x00GET nonsense\r\nPOST /x HTTP/2.0\r\nGET / HTTP/1.1\r\n\r\n");
    expect(sameAtSplits("request", data)).toMatchObject([{ method: "GET", target: "/", skippedBefore: at(data, "GET / ") }]);
  });

  test("any method token is read at a clean message boundary", () => {
    expect(feed("request", [bytes("BREW /pot HTTP/1.1\r\n\r\nM-SEARCH * HTTP/1.1\r\n\r\n")]).messages).toMatchObject([
      { method: "BREW", target: "/pot" },
      { method: "M-SEARCH", target: "*" },
    ]);
  });

  test("garbage across many pushes: all of it counted, only a small tail kept", () => {
    const lower = feed("request", Array.from({ length: 1000 }, () => bytes("z".repeat(64))), { end: false });
    expect(lower.parser.pendingSkipped).toBe(64000);
    // Capitals may begin a method: at most 20 of them wait for more.
    const upper = feed("request", Array.from({ length: 1000 }, () => bytes("Z".repeat(64))), { end: false });
    expect(upper.parser.pendingSkipped).toBeGreaterThanOrEqual(64000 - 20);
    upper.parser.push(bytes(" GE"), 2000);
    upper.parser.push(bytes("T / HTTP/1.1\r\n\r\n"), 2001);
    expect(upper.messages).toMatchObject([{ method: "GET", skippedBefore: 64001, startTs: 2000 }]);
  });

  test("garbage pushed does not stay referenced (only copies of a small tail are kept)", () => {
    const refs: WeakRef<Uint8Array>[] = [];
    const run = feed("response", [], { end: false });
    const pushGarbage = (i: number) => {
      const chunk = new Uint8Array(256 * 1024).fill(0x41); // "AAAA…"
      chunk[chunk.length - 1] = 0x48; // ends with "H", a possible start of "HTTP/1."
      refs.push(new WeakRef(chunk));
      run.parser.push(chunk, i);
    };
    for (let i = 0; i < 64; i++) pushGarbage(i);
    Bun.gc(true);
    // A parser holding views would keep all 64; the GC scans the stack conservatively, so a
    // stray one or two may survive a collection anyway.
    expect(refs.filter((r) => r.deref() !== undefined).length).toBeLessThanOrEqual(3);
    expect(run.parser.pendingSkipped).toBe(64 * 256 * 1024 - 1);
  });

  test("a start line longer than 8 KiB is garbage", () => {
    const data = bytes(`GET /${"a".repeat(9000)} HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n`);
    const ms = feed("request", [data]).messages;
    expect(targets(ms)).toEqual(["/ok"]);
    expect(ms[0].skippedBefore).toBe(at(data, "GET /ok"));
    expect(feedSplit("request", data, [4000, 8500, 9003]).messages.map(shape)).toEqual(ms.map(shape));
  });

  test("a head longer than 64 KiB is garbage", () => {
    const data = bytes(`GET /big HTTP/1.1\r\nX-Big: ${"a".repeat(70000)}\r\n\r\nGET /ok HTTP/1.1\r\n\r\n`);
    const ms = feed("request", [data]).messages;
    expect(targets(ms)).toEqual(["/ok"]);
    expect(ms[0].skippedBefore).toBe(at(data, "GET /ok"));
    const pieces = Array.from({ length: 70 }, (_, i) => i * 1031 + 1);
    expect(feedSplit("request", data, pieces).messages.map(shape)).toEqual(ms.map(shape));
  });

  test("a head of exactly 64 KiB is read", () => {
    const start = "GET /edge HTTP/1.1\r\nX-Fill: ";
    const fill = "f".repeat(64 * 1024 - start.length - 4);
    const data = bytes(`${start}${fill}\r\n\r\n`);
    expect(data.length).toBe(64 * 1024);
    expect(targets(feed("request", [data]).messages)).toEqual(["/edge"]);
    expect(targets(feed("request", [bytes(`${start}${fill}x\r\n\r\n`)]).messages)).toEqual([]);
  });
});

describe("streams cut short (end)", () => {
  test("inside a Content-Length body: truncated, with the true size so far", () => {
    const ms = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")]).messages;
    expect(ms.map(shape)).toMatchObject([{ status: 200, body: "only this", bodySize: 9, incomplete: "truncated", bodyTruncated: true }]);
  });

  test("inside a chunked body", () => {
    const ms = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n8\r\nwor")]).messages;
    expect(ms.map(shape)).toMatchObject([{ body: "hellowor", bodySize: 8, incomplete: "truncated", bodyTruncated: true }]);
  });

  test("inside trailers: the body is whole", () => {
    const ms = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nA: 1\r\nB: ")]).messages;
    expect(ms.map(shape)).toMatchObject([{ body: "ok", trailers: [{ name: "A", value: "1" }], incomplete: "truncated", bodyTruncated: false }]);
  });

  test("inside a head: the start line and whole header lines", () => {
    const ms = feed("request", [bytes("GET /cut HTTP/1.1\r\nHost: h\r\nUser-Ag")]).messages;
    expect(ms.map(shape)).toMatchObject([{ method: "GET", target: "/cut", headers: [{ name: "Host", value: "h" }], incomplete: "truncated", bodyTruncated: true }]);
  });

  test("a start line without its line end still makes a message", () => {
    expect(feed("request", [bytes("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1")]).messages.map(shape)).toMatchObject([
      { target: "/a", incomplete: "" },
      { target: "/b", headers: [], incomplete: "truncated" },
    ]);
    expect(feed("response", [bytes("HTTP/1.1 404 Not Fou")], { methods: ["GET"] }).messages.map(shape)).toMatchObject([
      { status: 404, reason: "Not Fou", incomplete: "truncated" },
    ]);
  });

  test("an empty or whitespace-only remainder emits nothing", () => {
    expect(feed("request", [bytes("GET / HTTP/1.1\r\n\r\n\r\n\r\n")]).messages).toHaveLength(1);
    expect(feed("request", [bytes("")]).messages).toHaveLength(0);
    expect(feed("response", [bytes("\r\n  \t\n")]).messages).toHaveLength(0);
  });

  test("a remainder that is not a start line emits nothing and is counted", () => {
    const run = feed("request", [bytes("GET / HTTP/1.1\r\n\r\nGET /x HTT")]);
    expect(run.messages).toHaveLength(1);
    expect(run.parser.pendingSkipped).toBe(10);
  });

  test("a close-delimited body is whole at end()", () => {
    const ms = feed("response", [bytes("HTTP/1.1 200 OK\r\n\r\nstream"), bytes(" on")]).messages;
    expect(ms.map(shape)).toMatchObject([{ body: "stream on", bodySize: 9, incomplete: "", bodyTruncated: false }]);
  });
});

describe("bytes lost (gap)", () => {
  test("inside a Content-Length body: skipped exactly; the body is what came before; the next message is whole", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789"), bytes("fghijHTTP/1.1 204 No Content\r\n\r\n")], {
      gaps: { 1: 5 },
    });
    expect(run.messages.map(shape)).toMatchObject([
      { status: 200, body: "0123456789", bodySize: 20, lostBytes: 5, incomplete: "lost-bytes", bodyTruncated: true },
      { status: 204, incomplete: "", skippedBefore: 0, lostBytes: 0 },
    ]);
    expect(run.messages[0].endTs).toBe(2);
  });

  test("exactly to the end of a body: the message ends at the gap", () => {
    const run = feed("request", [bytes("POST /a HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc"), bytes("GET /b HTTP/1.1\r\n\r\n")], { gaps: { 1: 3 }, end: false });
    expect(run.messages.map(shape)).toMatchObject([
      { target: "/a", body: "abc", bodySize: 6, lostBytes: 3, incomplete: "lost-bytes", bodyTruncated: true },
      { target: "/b", incomplete: "", skippedBefore: 0 },
    ]);
  });

  test("inside a chunk's data", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234"), bytes("89\r\n2\r\nxy\r\n0\r\n\r\n")], { gaps: { 1: 3 } });
    expect(run.messages.map(shape)).toMatchObject([{ body: "01234", bodySize: 12, lostBytes: 3, incomplete: "lost-bytes", bodyTruncated: true }]);
  });

  test("past the end of a body: the message ends, the next start line is searched for", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), bytes("xyzHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nq")], { gaps: { 1: 50 } });
    expect(run.messages.map(shape)).toMatchObject([
      { body: "ab", bodySize: 4, lostBytes: 50, incomplete: "lost-bytes", bodyTruncated: true },
      { body: "q", incomplete: "", skippedBefore: 3, lostBytes: 0 },
    ]);
  });

  test("inside a head: the message so far is emitted, then the next one is found", () => {
    const run = feed("request", [bytes("GET /a HTTP/1.1\r\nHost: h\r\nX-Par"), bytes("tial: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n")], { gaps: { 1: 40 } });
    expect(run.messages.map(shape)).toMatchObject([
      { target: "/a", headers: [{ name: "Host", value: "h" }], lostBytes: 40, incomplete: "lost-bytes", bodyTruncated: true },
      { target: "/b", incomplete: "", skippedBefore: at(bytes("tial: x\r\n\r\nGET"), "GET") },
    ]);
    expect(run.heads).toEqual(["GET", "GET"]);
  });

  test("inside a response head: the response still answers its request", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nConte"), bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")], { methods: ["HEAD", "GET"], gaps: { 1: 9 } });
    expect(run.messages.map(shape)).toMatchObject([
      { status: 200, incomplete: "lost-bytes", lostBytes: 9 },
      { status: 200, body: "ok", incomplete: "" },
    ]);
  });

  test("inside a chunk-size line or trailers", () => {
    const size = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1"), bytes("\r\nx\r\n0\r\n\r\n")], { gaps: { 1: 2 } });
    expect(size.messages.map(shape)).toMatchObject([{ body: "ok", bodySize: 2, lostBytes: 2, incomplete: "lost-bytes", bodyTruncated: true }]);
    const trailers = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nA: 1\r\n"), bytes("\r\n")], { gaps: { 1: 7 } });
    expect(trailers.messages.map(shape)).toMatchObject([{ body: "ok", trailers: [{ name: "A", value: "1" }], incomplete: "lost-bytes", bodyTruncated: false }]);
  });

  test("inside a close-delimited body: the message ends there", () => {
    const run = feed("response", [bytes("HTTP/1.0 200 OK\r\n\r\nfirst part"), bytes("second part")], { gaps: { 1: 100 } });
    expect(run.messages.map(shape)).toMatchObject([{ body: "first part", bodySize: 110, lostBytes: 100, incomplete: "lost-bytes", bodyTruncated: true }]);
    expect(run.parser.pendingSkipped).toBe(11);
  });

  test("between messages: nothing is emitted, the next start is searched for", () => {
    const run = feed("request", [bytes("GET /a HTTP/1.1\r\n\r\n"), bytes("ue\r\n\r\nGET /b HTTP/1.1\r\n\r\n")], { gaps: { 1: 30 } });
    expect(run.messages.map(shape)).toMatchObject([
      { target: "/a", incomplete: "" },
      { target: "/b", incomplete: "", skippedBefore: 6, lostBytes: 0 },
    ]);
  });

  test("a partial start line pending at a gap is skipped", () => {
    const run = feed("request", [bytes("GET /a HT"), bytes("GET /b HTTP/1.1\r\n\r\n")], { gaps: { 1: 8 } });
    expect(run.messages.map(shape)).toMatchObject([{ target: "/b", skippedBefore: 9 }]);
  });
});

describe("invalid framing", () => {
  test.each([
    ["not a number", "Content-Length: abc\r\n"],
    ["negative", "Content-Length: -1\r\n"],
    ["two numbers", "Content-Length: 1 2\r\n"],
    ["empty", "Content-Length: \r\n"],
    ["two that disagree", "Content-Length: 3\r\nContent-Length: 4\r\n"],
    ["a list that disagrees", "Content-Length: 4, 3\r\n"],
    ["too many digits", "Content-Length: 1234567890123456\r\n"],
    ["a request Transfer-Encoding not ending in chunked", "Transfer-Encoding: chunked, gzip\r\n"],
  ])("Content-Length / Transfer-Encoding %s: the head is emitted as bad-framing, then the next start is searched for", (_, fields) => {
    const data = bytes(`POST /a HTTP/1.1\r\n${fields}\r\nbodyPOST /b HTTP/1.1\r\nContent-Length: 1\r\n\r\nz`);
    const run = feed("request", [data]);
    expect(run.messages.map(shape)).toMatchObject([
      { target: "/a", body: "", bodySize: 0, incomplete: "bad-framing", bodyTruncated: true },
      { target: "/b", body: "z", incomplete: "", skippedBefore: 4 },
    ]);
    expect(run.heads).toEqual(["POST", "POST"]);
    expect(feedSplit("request", data, [20, data.length - 30]).messages.map(shape)).toEqual(run.messages.map(shape));
  });

  test("a response with a bad Content-Length still answers its request", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n...HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")], { methods: ["GET", "HEAD"] });
    expect(run.messages.map(shape)).toMatchObject([
      { incomplete: "bad-framing" },
      { incomplete: "", body: "", skippedBefore: 3 },
    ]);
  });

  test("a chunk-size line that is not hex", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")]);
    expect(run.messages.map(shape)).toMatchObject([
      { body: "ok", bodySize: 2, incomplete: "bad-framing", bodyTruncated: true },
      { status: 200, incomplete: "", skippedBefore: 4 },
    ]);
  });

  test("chunk data not followed by its line end", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n")]);
    expect(run.messages.map(shape)).toMatchObject([{ body: "abc", incomplete: "bad-framing", bodyTruncated: true }]);
  });

  test("a chunk size beyond 2^52, and a chunk-size line over 4 KiB", () => {
    const huge = feed("response", [bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000000000000\r\nabc")]);
    expect(huge.messages.map(shape)).toMatchObject([{ incomplete: "bad-framing" }]);
    const long = feed("response", [bytes(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;${"e".repeat(5000)}\r\nabc\r\n0\r\n\r\n`)]);
    expect(long.messages.map(shape)).toMatchObject([{ incomplete: "bad-framing" }]);
    const zeros = feed("response", [bytes(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${"0".repeat(20)}3\r\nabc\r\n0\r\n\r\n`)]);
    expect(zeros.messages.map(shape)).toMatchObject([{ body: "abc", incomplete: "" }]);
  });

  test("obs-fold at the very first field line is ignored, not a crash", () => {
    const ms = feed("request", [bytes("GET / HTTP/1.1\r\n folded: nothing\r\nHost: h\r\n\r\n")]).messages;
    expect(ms.map(shape)).toMatchObject([{ headers: [{ name: "Host", value: "h" }], incomplete: "" }]);
  });

  test("status codes must be three digits not starting with 0", () => {
    const run = feed("response", [bytes("HTTP/1.1 099 X\r\n\r\nHTTP/1.1 2000 X\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")]);
    expect(run.messages.map((m) => (m as Http1Response).status)).toEqual([200]);
  });
});
