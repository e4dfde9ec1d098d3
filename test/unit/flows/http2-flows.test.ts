// HTTP/2 connections through the pipeline, fed synthetic kernel records: one flow per
// stream with every field, multiplexing, trailers, content decoding, CONTINUATION, resets,
// GOAWAY, server push, gaps, h2c upgrade, and a connection joined mid-stream.
import { describe, expect, test } from "bun:test";
import { toJson } from "@bufbuild/protobuf";
import { gzipSync } from "node:zlib";
import { FlowSchema, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { connectionWriter, feed } from "../../support/records.ts";
import { END_HEADERS, END_STREAM, H2, PREFACE, h2frame, headerBlock, plainBlock } from "../../support/h2.ts";

function setup() {
  const flows: Flow[] = [];
  const pipeline = createPipeline({
    onFlow: (f) => flows.push(f),
    clockOffsetNs: 1_700_000_000 * 1e9,
    maxBody: 1 << 20,
    processes: createProcessRegistry("/nonexistent"),
    tlsLibrary: (id) => (id === 2 ? "OpenSSL 3.0.19" : "?"),
  });
  const json = () => flows.map((f) => toJson(FlowSchema, f) as any);
  return { pipeline, json };
}

const cat = (...parts: (Uint8Array | string)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));
const SETTINGS = h2frame(H2.SETTINGS, 0, 0, [0, 3, 0, 0, 0, 100]);
const GET = (stream: number, path: string) =>
  h2frame(H2.HEADERS, END_HEADERS | END_STREAM, stream, plainBlock([[":method", "GET"], [":scheme", "https"], [":path", path], [":authority", "example.test"], ["accept", "*/*"]]));
const RESPONSE = (stream: number, body: string, extra: [string, string][] = []) =>
  cat(h2frame(H2.HEADERS, END_HEADERS, stream, plainBlock([[":status", "200"], ["content-type", "text/plain"], ...extra])), h2frame(H2.DATA, END_STREAM, stream, Buffer.from(body)));
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

describe("HTTP/2 flows", () => {
  test("TLS client connection: one flow with every field", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 3, pid: 42, comm: "curl", origin: 2, connClass: 3, tlsLib: 2, local: ["127.0.0.1", 50000], remote: ["127.0.0.1", 8443] });
    feed(pipeline, [c.open(), c.data(0, cat(PREFACE, SETTINGS, GET(1, "/a?b=c"))), c.data(1, cat(SETTINGS, RESPONSE(1, "hello")))]);
    expect(json()).toEqual([
      {
        id: expect.stringMatching(/-1$/),
        startTime: expect.any(String),
        endTime: expect.any(String),
        protocol: "PROTOCOL_HTTP2",
        connection: {
          id: "3",
          role: "ROLE_CLIENT",
          source: { ip: "127.0.0.1", port: 50000 },
          destination: { ip: "127.0.0.1", port: 8443 },
          process: { pid: 42, comm: "curl" },
          tls: true,
          tlsLibrary: "OpenSSL 3.0.19",
        },
        request: {
          method: "GET",
          path: "/a?b=c",
          authority: "example.test",
          version: "HTTP/2",
          headers: [
            { name: ":method", value: "GET" },
            { name: ":scheme", value: "https" },
            { name: ":path", value: "/a?b=c" },
            { name: ":authority", value: "example.test" },
            { name: "accept", value: "*/*" },
          ],
        },
        response: {
          status: 200,
          version: "HTTP/2",
          headers: [
            { name: ":status", value: "200" },
            { name: "content-type", value: "text/plain" },
          ],
          body: b64("hello"),
          bodySize: "5",
        },
        http2: { streamId: 1 },
      },
    ]);
  });

  test("h2c server connection (class HTTP/2): interleaved streams end in any order, each is its own flow", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 4, pid: 7, origin: 1, connClass: 2, local: ["127.0.0.1", 80], remote: ["127.0.0.1", 40000] });
    const body3 = "three";
    feed(pipeline, [
      c.open(),
      c.data(1, cat(PREFACE, SETTINGS, GET(1, "/one"), GET(3, "/three"))),
      c.data(0, cat(SETTINGS, h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"]])), h2frame(H2.DATA, 0, 1, Buffer.from("on")))),
      c.data(0, RESPONSE(3, body3)),
      c.data(0, h2frame(H2.DATA, END_STREAM, 1, Buffer.from("e"))),
    ]);
    const flows = json();
    expect(flows.map((f) => [f.http2.streamId, f.request.path, Buffer.from(f.response.body, "base64").toString(), f.connection.role])).toEqual([
      [3, "/three", "three", "ROLE_SERVER"],
      [1, "/one", "one", "ROLE_SERVER"],
    ]);
    expect(flows[0].connection.source).toEqual({ ip: "127.0.0.1", port: 40000 });
  });

  test("a POST with a body, response trailers, gzip decoded, a header block in CONTINUATION frames", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 5, pid: 8, origin: 2, connClass: 2 });
    const block = plainBlock([[":method", "POST"], [":scheme", "http"], [":path", "/upload"], [":authority", "a.test"], ["content-type", "text/plain"]]);
    const gz = gzipSync(Buffer.from("decoded text"));
    feed(pipeline, [
      c.open(),
      c.data(0, cat(PREFACE, SETTINGS, h2frame(H2.HEADERS, 0, 1, block.subarray(0, 10)), h2frame(H2.CONTINUATION, END_HEADERS, 1, block.subarray(10)))),
      c.data(0, cat(h2frame(H2.DATA, 0, 1, Buffer.from("part1 ")), h2frame(H2.DATA, END_STREAM, 1, Buffer.from("part2")))),
      c.data(1, cat(h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "201"], ["content-encoding", "gzip"]])), h2frame(H2.DATA, 0, 1, gz))),
      c.data(1, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, plainBlock([["grpc-status", "0"], ["x-checksum", "abc"]]))),
    ]);
    const [f] = json();
    expect(f.request.method).toBe("POST");
    expect(f.request.headers.map((h: any) => h.name)).toEqual([":method", ":scheme", ":path", ":authority", "content-type"]);
    expect(Buffer.from(f.request.body, "base64").toString()).toBe("part1 part2");
    expect(f.request.bodySize).toBe("11");
    expect(f.response.status).toBe(201);
    expect(Buffer.from(f.response.body, "base64").toString()).toBe("decoded text");
    expect(f.response.bodyDecodedEncoding).toBe("gzip");
    expect(f.response.bodySize).toBe(String(gz.length));
    expect(f.response.trailers).toEqual([
      { name: "grpc-status", value: "0" },
      { name: "x-checksum", value: "abc" },
    ]);
    expect(f.missing).toBeUndefined();
  });

  test("RST_STREAM from the client ends its stream with the reason; GOAWAY ends streams above its last id", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 6, pid: 9, origin: 2, connClass: 2 });
    feed(pipeline, [
      c.open(),
      c.data(0, cat(PREFACE, SETTINGS, GET(1, "/slow"), GET(3, "/late"))),
      c.data(0, h2frame(H2.RST_STREAM, 0, 1, [0, 0, 0, 8])),
      c.data(1, h2frame(H2.GOAWAY, 0, 0, [0, 0, 0, 1, 0, 0, 0, 0])),
    ]);
    const flows = json();
    expect(flows.map((f) => [f.http2, f.missing])).toEqual([
      [
        { streamId: 1, reset: { error: "CANCEL", code: 8, sentBy: "ROLE_CLIENT" } },
        { noResponse: true, reason: "stream reset by the client: CANCEL" },
      ],
      [
        { streamId: 3, reset: { error: "NO_ERROR", sentBy: "ROLE_SERVER", goaway: true } },
        { noResponse: true, reason: "stream reset by the server: GOAWAY NO_ERROR" },
      ],
    ]);
  });

  test("server push: the promised request and the pushed response are a flow of their own", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 7, pid: 10, origin: 2, connClass: 2 });
    const promise = cat(Buffer.from([0, 0, 0, 2]), plainBlock([[":method", "GET"], [":scheme", "http"], [":path", "/style.css"], [":authority", "a.test"]]));
    feed(pipeline, [
      c.open(),
      c.data(0, cat(PREFACE, SETTINGS, GET(1, "/index.html"))),
      c.data(1, cat(SETTINGS, h2frame(H2.PUSH_PROMISE, END_HEADERS, 1, promise), RESPONSE(1, "<html>"), RESPONSE(2, "body{}"))),
    ]);
    const flows = json();
    expect(flows.map((f) => [f.http2, f.request.path, Buffer.from(f.response.body, "base64").toString()])).toEqual([
      [{ streamId: 1 }, "/index.html", "<html>"],
      [{ streamId: 2, promisedOnStream: 1 }, "/style.css", "body{}"],
    ]);
  });

  test("bytes lost inside a stream: that flow says so; the connection reads on from the next frame", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 8, pid: 11, origin: 2, connClass: 2 });
    const records = [c.open(), c.data(0, cat(PREFACE, SETTINGS, GET(1, "/a"))), c.data(1, cat(SETTINGS, h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"]]))))];
    c.lose(1, 50);
    records.push(c.data(1, h2frame(H2.DATA, END_STREAM, 1, Buffer.from("tail"))), c.data(0, GET(3, "/b")), c.data(1, RESPONSE(3, "fine")), c.close());
    feed(pipeline, records);
    const flows = json();
    // Which stream the lost bytes belonged to cannot be known: every stream open when the
    // loss happened says so. The events after the loss are held in arrival order until the
    // batch ends, so stream 3, begun after it, is not among them; the frames after the loss
    // are read as usual.
    expect(flows.map((f) => [f.http2.streamId, Buffer.from(f.response.body, "base64").toString(), f.missing])).toEqual([
      [1, "tail", { lostBytes: "50", reason: "50 bytes lost on the connection while the stream was open" }],
      [3, "fine", undefined],
    ]);
  });

  test("the connection closes with a stream open: the flow is emitted incomplete", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 9, pid: 12, origin: 2, connClass: 2 });
    feed(pipeline, [c.open(), c.data(0, cat(PREFACE, SETTINGS, GET(1, "/never"))), c.close()]);
    expect(json()[0].missing).toEqual({ noResponse: true, reason: "no response" });
  });

  test("joined mid-stream: found at a frame boundary; fields that refer to the unseen table are unknown; entries added after joining are known", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 10, pid: 13, origin: 0, connClass: 2 });
    // The tail of a DATA frame, then a request that refers to dynamic entry 62 (unseen) and
    // adds one of its own, then a request that refers to that new entry (now 62).
    const tail = h2frame(H2.DATA, 0, 5, new Uint8Array(200).fill(0x61)).subarray(50);
    const first = headerBlock([{ indexed: 2 }, { literalIndexedName: 4, value: "/first" }, { indexed: 62 }, { literal: ["x-trace", "t1"], index: true }]);
    const second = headerBlock([{ indexed: 2 }, { literalIndexedName: 4, value: "/second" }, { indexed: 62 }]);
    feed(pipeline, [
      c.open(),
      c.data(0, cat(tail, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 7, first))),
      c.data(1, RESPONSE(7, "one")),
      c.data(0, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 9, second)),
      c.data(1, RESPONSE(9, "two")),
    ]);
    const flows = json();
    expect(flows.map((f) => [f.http2.streamId, f.connection.role, f.request.headers])).toEqual([
      [7, "ROLE_CLIENT", [{ name: ":method", value: "GET" }, { name: ":path", value: "/first" }, { nameUnknown: true, valueUnknown: true }, { name: "x-trace", value: "t1" }]],
      [9, "ROLE_CLIENT", [{ name: ":method", value: "GET" }, { name: ":path", value: "/second" }, { name: "x-trace", value: "t1" }]],
    ]);
    expect(flows[0].missing).toEqual({ joinedMidStream: true, reason: "1 header fields refer to compression state sent before tapwire joined the connection" });
    expect(flows[1].missing).toBeUndefined();
  });

  test("bytes that only looked like a frame to the kernel never become flows", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 11, pid: 14, origin: 0, connClass: 2 });
    feed(pipeline, [c.open(), c.data(0, h2frame(H2.DATA, END_STREAM, 1, Buffer.from("not http"))), c.data(1, h2frame(H2.DATA, END_STREAM, 1, Buffer.from("at all"))), c.close()]);
    expect(json()).toEqual([]);
  });

  test("HTTP/1.1 Upgrade: h2c: the upgraded request and the HTTP/2 response are one flow on stream 1", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 12, pid: 15, origin: 2, connClass: 1 });
    feed(pipeline, [
      c.open(),
      c.data(0, "GET /up HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"),
      c.data(1, cat("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", SETTINGS, RESPONSE(1, "upgraded"))),
      c.data(0, cat(PREFACE, SETTINGS, GET(3, "/next"))),
      c.data(1, RESPONSE(3, "next")),
    ]);
    const flows = json();
    expect(flows.map((f) => [f.protocol, f.http2.streamId, f.request.method, f.request.path, f.request.version, f.response.informationalStatuses, Buffer.from(f.response.body, "base64").toString()])).toEqual([
      ["PROTOCOL_HTTP2", 1, "GET", "/up", "HTTP/1.1", [101], "upgraded"],
      ["PROTOCOL_HTTP2", 3, "GET", "/next", "HTTP/2", undefined, "next"],
    ]);
    expect(flows[0].request.authority).toBe("a.test");
  });
});
