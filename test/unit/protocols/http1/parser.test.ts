// The HTTP/1 parser on well-formed streams: a table of exchanges, each also read at every
// split point, byte by byte and at every pair of split points; every prefix of a message
// emits nothing; pipelining, 1xx, upgrades and CONNECT.
import { describe, expect, test } from "bun:test";
import { createHttp1Parser } from "../../../../src/protocols/http1/parser.ts";
import { SMALL_PIECE } from "../../../../src/protocols/http1/body-capture.ts";
import type { Http1Message, Http1Request, Http1Response } from "../../../../src/protocols/http1/types.ts";
import { CASES, type Case } from "./cases.ts";
import { bytes, feed, feedSplit, latin1, shape } from "./harness.ts";

function expectCase(c: Case, messages: Http1Message[]) {
  expect(messages).toHaveLength(c.expect.length);
  messages.forEach((m, i) => expect(shape(m)).toMatchObject(c.expect[i]));
}

const shapes = (c: Case, splits: number[]) => feedSplit(c.kind, c.data, splits, { methods: c.methods }).messages.map(shape);

describe("well-formed messages", () => {
  for (const c of CASES) {
    test(c.name, () => expectCase(c, feed(c.kind, [c.data], { methods: c.methods }).messages));
  }
});

describe("any split of the stream gives the same messages", () => {
  for (const c of CASES) {
    test(`every split point: ${c.name}`, () => {
      const once = shapes(c, []);
      for (let i = 1; i < c.data.length; i++) expect(shapes(c, [i])).toEqual(once);
    });
  }

  test("byte by byte", () => {
    for (const c of CASES) {
      const every = Array.from({ length: c.data.length - 1 }, (_, i) => i + 1);
      expect(shapes(c, every)).toEqual(shapes(c, []));
    }
  });

  test("every pair of split points (the shorter fixtures)", () => {
    for (const c of CASES.filter((x) => x.data.length <= 120)) {
      const once = shapes(c, []);
      for (let i = 1; i < c.data.length; i++) {
        for (let j = i + 1; j < c.data.length; j++) expect(shapes(c, [i, j])).toEqual(once);
      }
    }
  });

  test("the same stream pushed as views of one larger buffer", () => {
    for (const c of CASES) {
      const big = new Uint8Array(c.data.length + 64);
      big.set(c.data, 32);
      const view = big.subarray(32, 32 + c.data.length);
      const half = view.length >> 1;
      const run = feed(c.kind, [view.subarray(0, half), view.subarray(half)], { methods: c.methods });
      expect(run.messages.map(shape)).toEqual(shapes(c, []));
    }
  });
});

describe("every prefix of a valid message emits nothing and skips nothing", () => {
  for (const c of CASES.filter((x) => !x.untilClose)) {
    test(c.name, () => {
      const count = feed(c.kind, [c.data], { methods: c.methods, end: false }).messages.length;
      expect(count).toBe(c.expect.length);
      // The stream up to each byte, without end(): the messages emitted grow one at a time, in
      // order, each the same as when read whole; nothing is ever skipped as garbage.
      const final = shapes(c, []);
      let seen = 0;
      for (let i = 0; i < c.data.length; i++) {
        const run = feed(c.kind, [c.data.subarray(0, i)], { methods: c.methods, end: false });
        expect(run.messages.length).toBeGreaterThanOrEqual(seen);
        expect(run.messages.length).toBeLessThan(count + 1);
        run.messages.forEach((m, k) => expect(shape(m)).toEqual(final[k]));
        expect(run.parser.pendingSkipped).toBe(0);
        seen = run.messages.length;
      }
    });
  }

  test("a single message: nothing at all before its last byte", () => {
    const data = bytes("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n");
    for (let i = 0; i < data.length; i++) expect(feed("request", [data.subarray(0, i)], { end: false }).messages).toHaveLength(0);
    expect(feed("request", [data], { end: false }).messages).toHaveLength(1);
  });
});

describe("timestamps", () => {
  test("startTs is the push of the first byte, endTs that of the last", () => {
    const data = bytes("POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    for (let a = 1; a < data.length; a++) {
      for (const b of [a + 1, data.length - 1]) {
        if (b <= a || b >= data.length) continue;
        const [m] = feedSplit("request", data, [a, b]).messages;
        expect([m.startTs, m.endTs]).toEqual([1, 3]);
      }
    }
  });

  test("a message starting inside a pending tail gets the timestamp of its first byte", () => {
    // "xxG" arrives at 1 ("G" kept as a possible method start), "ET / ..." at 2.
    const run = feed("request", [bytes("\x00xxG"), bytes("ET / HTTP/1.1\r\n"), bytes("\r\n")]);
    expect(run.messages).toHaveLength(1);
    expect(run.messages[0]).toMatchObject({ method: "GET", startTs: 1, endTs: 3, skippedBefore: 3 });
  });

  test("a close-delimited body ends with end()'s timestamp", () => {
    const [m] = feed("response", [bytes("HTTP/1.0 200 OK\r\n\r\nab"), bytes("cd")]).messages;
    expect([m.startTs, m.endTs]).toEqual([1, 3]);
  });
});

describe("requests and responses together", () => {
  /** A request parser whose heads feed a response parser, as a connection's two directions. */
  function pair() {
    const requests: Http1Request[] = [];
    const responses: Http1Response[] = [];
    const res = createHttp1Parser("response", { onMessage: (m) => responses.push(m as Http1Response) });
    const req = createHttp1Parser("request", { onMessage: (m) => requests.push(m as Http1Request), onRequestHead: (method) => res.expectResponseTo(method) });
    return { req, res, requests, responses };
  }

  test("pipelined requests and responses pair with expectResponseTo (HEAD in the middle)", () => {
    const { req, res, requests, responses } = pair();
    req.push(bytes("GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"), 1);
    res.push(
      bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nC"),
      2,
    );
    expect(requests.map((r) => r.target)).toEqual(["/a", "/b", "/c"]);
    expect(responses.map((r) => [r.status, latin1(r.body)])).toEqual([
      [200, "A"],
      [200, ""],
      [201, "C"],
    ]);
  });

  test("Expect: 100-continue: request head, 100 on the other side, then the body, then the response", () => {
    const { req, res, requests, responses } = pair();
    req.push(bytes("PUT /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n"), 1);
    expect(requests).toHaveLength(0);
    res.push(bytes("HTTP/1.1 100 Continue\r\n\r\n"), 2);
    expect(responses.map((r) => [r.status, r.informational])).toEqual([[100, true]]);
    req.push(bytes("abc"), 3);
    req.push(bytes("def"), 4);
    expect(requests).toHaveLength(1);
    expect(latin1(requests[0].body)).toBe("abcdef");
    expect([requests[0].startTs, requests[0].endTs]).toEqual([1, 4]);
    res.push(bytes("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), 5);
    expect(responses.map((r) => r.status)).toEqual([100, 201]);
  });

  test("onRequestHead is called before the body arrives, once per request, in order", () => {
    const run = feedSplit("request", bytes("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcHEAD /2 HTTP/1.1\r\n\r\n"), [40], { end: false });
    expect(run.heads).toEqual(["POST", "HEAD"]);
    const early = feed("request", [bytes("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\na")], { end: false });
    expect(early.heads).toEqual(["POST"]);
    expect(early.messages).toHaveLength(0);
  });
});

describe("upgrades and hand-over", () => {
  test("after 101, later bytes are counted, not read; gap and end add nothing", () => {
    const run = feed("response", [bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00\x12\x04"), bytes("more frames")], {
      methods: ["GET"],
      gaps: { 1: 10 },
    });
    expect(run.messages).toHaveLength(1);
    expect(run.parser.upgraded).toBe(true);
    expect(run.parser.upgradedBytes).toBe(4 + 10 + 11);
  });

  test("a 2xx to CONNECT upgrades the response parser", () => {
    const run = feed("response", [bytes("HTTP/1.1 200 OK\r\n\r\nTLS")], { methods: ["CONNECT"] });
    expect(run.parser.upgraded).toBe(true);
    expect(run.parser.upgradedBytes).toBe(3);
  });

  test("handOver: the request parser stops reading; bytes are counted", () => {
    const run = feed("request", [bytes("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")], { end: false });
    expect(run.parser.upgraded).toBe(false);
    run.parser.handOver();
    expect(run.parser.upgraded).toBe(true);
    run.parser.push(bytes("GET / HTTP/1.1\r\n\r\n"), 9);
    run.parser.end(10);
    expect(run.messages.map((m) => (m as Http1Request).target)).toEqual(["h:443"]);
    expect(run.parser.upgradedBytes).toBe(18);
  });

  test("handOver emits the message in progress, and counts bytes pending between messages", () => {
    const inBody = feed("request", [bytes("POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")], { end: false });
    inBody.parser.handOver();
    expect(inBody.messages.map(shape)).toMatchObject([{ body: "abc", bodySize: 3, incomplete: "truncated", bodyTruncated: true }]);

    const inHead = feed("request", [bytes("GET /x HTTP/1.1\r\nHost: h\r\nUpgr")], { end: false });
    inHead.parser.handOver();
    expect(inHead.messages.map(shape)).toMatchObject([{ target: "/x", headers: [{ name: "Host", value: "h" }], incomplete: "truncated" }]);

    const between = feed("request", [bytes("GET / HTTP/1.1\r\n\r\nGET /ne")], { end: false });
    between.parser.handOver();
    expect(between.messages).toHaveLength(1);
    expect(between.parser.upgradedBytes).toBe(7);
  });

  test("handOver from inside onMessage, during a push: the rest of that push is counted", () => {
    const messages: Http1Message[] = [];
    const p = createHttp1Parser("request", {
      onMessage: (m) => {
        messages.push(m);
        p.handOver();
      },
    });
    p.push(bytes("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"), 1);
    expect(messages).toHaveLength(1);
    expect(p.upgraded).toBe(true);
    expect(p.upgradedBytes).toBe(19);
  });

  test("handOver from inside onRequestHead ends that request there", () => {
    const messages: Http1Message[] = [];
    const p = createHttp1Parser("request", { onMessage: (m) => messages.push(m), onRequestHead: () => p.handOver() });
    p.push(bytes("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 1);
    expect(messages.map(shape)).toMatchObject([{ target: "/1", incomplete: "truncated", body: "" }]);
    expect(p.upgradedBytes).toBe(3);
  });
});

describe("bodies are views of the pushed bytes", () => {
  test("a large body within one push is not copied", () => {
    const n = SMALL_PIECE + 1;
    const data = bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n${"y".repeat(n)}`);
    const [m] = feed("response", [data]).messages;
    expect(m.body.buffer).toBe(data.buffer);
    expect(m.body.byteOffset).toBe(data.byteOffset + data.length - n);
  });
});
