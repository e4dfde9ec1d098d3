// Content-Encoding undone where flows are made: HTTP/1 bodies fed through the whole user-side
// pipeline as kernel records, checked on the Flow a user sees (body, body_size,
// body_truncated, body_decoded_encoding).
import { describe, expect, test } from "bun:test";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import type { Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { connectionWriter, feed } from "../../support/records.ts";

/** Compressible text, not too repetitive (so compressed sizes are realistic). */
function text(n: number): string {
  let s = "";
  for (let i = 0; s.length < n; i++) s += `line ${i}: tapwire reads HTTP bodies, value=${(i * 7919) % 1000}\n`;
  return s.slice(0, n);
}

const plain = text(20000);
const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const concat = (...parts: (string | Uint8Array)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));

type Step = { send: 0 | 1; bytes: Uint8Array | string } | { lose: 0 | 1; n: number };

/** One client connection carrying `steps` (0: the request direction, 1: the response). */
function flowsOf(steps: Step[], maxBody = 1 << 20): Flow[] {
  const flows: Flow[] = [];
  const pipeline = createPipeline({
    onFlow: (f) => flows.push(f),
    clockOffsetNs: 0,
    maxBody,
    processes: createProcessRegistry("/nonexistent"),
    forget: () => {},
    tlsLibrary: () => "?",
    onLibOpen: () => {},
    onExec: () => {},
  });
  const c = connectionWriter({ connId: 1, pid: 42, origin: 2 });
  const records = [c.open()];
  for (const s of steps) {
    if ("send" in s) records.push(c.data(s.send, s.bytes));
    else c.lose(s.lose, s.n);
  }
  records.push(c.close());
  feed(pipeline, records);
  return flows;
}

const GET = { send: 0, bytes: "GET / HTTP/1.1\r\nHost: t\r\n\r\n" } as const;
const encodedResponse = (encoding: string, encoded: Uint8Array) =>
  concat(`HTTP/1.1 200 OK\r\nContent-Encoding: ${encoding}\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded);

function onlyResponse(steps: Step[], maxBody?: number) {
  const flows = flowsOf(steps, maxBody);
  expect(flows).toHaveLength(1);
  return flows[0]!.response!;
}

describe("HTTP/1 bodies with a Content-Encoding", () => {
  test.each([
    ["gzip", "gzip", gzipSync(plain)],
    ["x-gzip", "gzip", gzipSync(plain)],
    ["GZIP", "gzip", gzipSync(plain)],
    ["deflate", "deflate", deflateSync(plain)],
    ["deflate", "deflate", deflateRawSync(plain)],
    ["br", "br", brotliCompressSync(plain)],
    ["gzip, br", "gzip, br", brotliCompressSync(gzipSync(plain))],
    ["identity, gzip", "gzip", gzipSync(plain)],
  ])("%s is decoded (as %s); body_size is the size sent", (header, decoded, encoded) => {
    const data = encodedResponse(header, encoded);
    for (const splits of [[data.length], [data.length >> 1, data.length], [70, 71, 72, data.length - 1, data.length]]) {
      const steps: Step[] = [GET];
      let at = 0;
      for (const end of splits) steps.push({ send: 1, bytes: data.subarray(at, (at = end)) });
      const r = onlyResponse(steps);
      expect(latin1(r.body)).toBe(plain);
      expect({ bodySize: r.bodySize, bodyTruncated: r.bodyTruncated, bodyDecodedEncoding: r.bodyDecodedEncoding }).toEqual({
        bodySize: BigInt(encoded.length),
        bodyTruncated: false,
        bodyDecodedEncoding: decoded,
      });
    }
  });

  test("two Content-Encoding fields stack in order", () => {
    const encoded = brotliCompressSync(gzipSync(plain));
    const r = onlyResponse([GET, { send: 1, bytes: concat(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${encoded.length}\r\nContent-Encoding: br\r\n\r\n`, encoded) }]);
    expect([latin1(r.body), r.bodyDecodedEncoding]).toEqual([plain, "gzip, br"]);
  });

  test("a chunked gzip body is de-chunked, then decoded", () => {
    const encoded = gzipSync(plain);
    const parts: (string | Uint8Array)[] = ["HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"];
    for (let i = 0; i < encoded.length; i += 333) {
      const piece = encoded.subarray(i, i + 333);
      parts.push(`${piece.length.toString(16)}\r\n`, piece, "\r\n");
    }
    parts.push("0\r\n\r\n");
    const r = onlyResponse([GET, { send: 1, bytes: concat(...parts) }]);
    expect([latin1(r.body), r.bodySize, r.bodyDecodedEncoding]).toEqual([plain, BigInt(encoded.length), "gzip"]);
  });

  test("request bodies are decoded too", () => {
    const encoded = gzipSync('{"a":1}');
    const [f] = flowsOf([
      { send: 0, bytes: concat(`POST /api HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: ${encoded.length}\r\n\r\n`, encoded) },
      { send: 1, bytes: "HTTP/1.1 204 No Content\r\n\r\n" },
    ]);
    const q = f!.request!;
    expect([latin1(q.body), q.bodySize, q.bodyDecodedEncoding, q.bodyTruncated]).toEqual(['{"a":1}', BigInt(encoded.length), "gzip", false]);
  });

  test("a body that does not decode is shown as sent", () => {
    const r = onlyResponse([GET, { send: 1, bytes: "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnope!" }]);
    expect([latin1(r.body), r.bodyDecodedEncoding, r.bodyTruncated]).toEqual(["nope!", "", false]);
  });

  test("an unsupported coding leaves the body as sent", () => {
    const r = onlyResponse([GET, { send: 1, bytes: concat("HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 4\r\n\r\n\x28\xb5\x2f\xfd") }]);
    expect([latin1(r.body), r.bodyDecodedEncoding]).toEqual(["\x28\xb5\x2f\xfd", ""]);
  });

  test("no body, nothing to decode: a response to HEAD, an empty body", () => {
    const flows = flowsOf([
      { send: 0, bytes: "HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n" },
      { send: 1, bytes: "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 30\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n" },
    ]);
    expect(flows.map((f) => [f.request!.method, f.response!.body.length, f.response!.bodyDecodedEncoding, f.response!.bodyTruncated])).toEqual([
      ["HEAD", 0, "", false],
      ["GET", 0, "", false],
    ]);
  });

  test.each([
    ["gzip", gzipSync(plain)],
    ["deflate", deflateSync(plain)],
    ["br", brotliCompressSync(plain)],
  ])("%s cut short by the connection's end: the part sent decodes as far as it goes", (encoding, encoded) => {
    const sent = Math.floor(encoded.length * 0.6);
    const data = encodedResponse(encoding, encoded);
    const r = onlyResponse([GET, { send: 1, bytes: data.subarray(0, data.length - (encoded.length - sent)) }]);
    expect({ bodySize: r.bodySize, bodyTruncated: r.bodyTruncated, bodyDecodedEncoding: r.bodyDecodedEncoding }).toEqual({
      bodySize: BigInt(sent),
      bodyTruncated: true,
      bodyDecodedEncoding: encoding,
    });
    expect(r.body.length).toBeGreaterThan(0);
    expect(plain.startsWith(latin1(r.body))).toBe(true);
  });

  test("an encoded body longer than the body limit: its kept prefix decodes, to at most the limit", () => {
    const encoded = gzipSync(plain);
    const maxBody = Math.floor(encoded.length / 2);
    const r = onlyResponse([GET, { send: 1, bytes: encodedResponse("gzip", encoded) }], maxBody);
    expect(r.body.length).toBeLessThanOrEqual(maxBody);
    expect(r.body.length).toBeGreaterThan(maxBody / 2);
    expect(plain.startsWith(latin1(r.body))).toBe(true);
    expect([r.bodySize, r.bodyTruncated, r.bodyDecodedEncoding]).toEqual([BigInt(encoded.length), true, "gzip"]);
  });

  test.each([
    ["gzip", gzipSync(plain)],
    ["br", brotliCompressSync(plain)],
    ["deflate", deflateRawSync(plain)],
  ])("%s decoding to more than the body limit: the output is cut near the limit", (encoding, encoded) => {
    const maxBody = 4096;
    expect(encoded.length).toBeLessThan(maxBody);
    const r = onlyResponse([GET, { send: 1, bytes: encodedResponse(encoding, encoded) }], maxBody);
    expect(r.body.length).toBeLessThanOrEqual(maxBody);
    expect(r.body.length).toBeGreaterThan(maxBody * 0.9);
    expect(plain.startsWith(latin1(r.body))).toBe(true);
    expect([r.bodySize, r.bodyTruncated, r.bodyDecodedEncoding]).toEqual([BigInt(encoded.length), true, encoding]);
  });

  test("bytes lost inside an encoded body: what came before the gap decodes", () => {
    const encoded = gzipSync(plain);
    const data = encodedResponse("gzip", encoded);
    const first = data.length - encoded.length + 2000;
    const flows = flowsOf([GET, { send: 1, bytes: data.subarray(0, first) }, { lose: 1, n: 100 }, { send: 1, bytes: data.subarray(first + 100) }]);
    expect(flows).toHaveLength(1);
    const r = flows[0]!.response!;
    expect([r.bodySize, r.bodyTruncated, r.bodyDecodedEncoding]).toEqual([BigInt(encoded.length), true, "gzip"]);
    expect(plain.startsWith(latin1(r.body))).toBe(true);
    expect(r.body.length).toBeGreaterThan(2000);
    expect(flows[0]!.missing).toMatchObject({ lostBytes: 100n, responseIncomplete: true, requestIncomplete: false });
  });
});
