// Flows as HAR 1.2 entries: every shape a flow takes (most made by the real pipeline from
// synthetic kernel records), each validated against the HAR schema and checked field by field.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { flowToHarEntry, harLog, HAR_HEAD, HAR_TAIL, type HarEntry } from "../../../src/sinks/har.ts";
import { connectionWriter, feed } from "../../support/records.ts";
import { END_HEADERS, END_STREAM, H2, PREFACE, h2frame, plainBlock } from "../../support/h2.ts";
import { harProblems } from "../../support/har-validate.ts";
import pkg from "../../../package.json" with { type: "json" };

const START_S = 1_700_000_000;

function pipelineFlows(maxBody = 1 << 20) {
  const flows: Flow[] = [];
  const pipeline = createPipeline({
    onFlow: (f) => flows.push(f),
    clockOffsetNs: START_S * 1e9,
    maxBody,
    processes: createProcessRegistry("/nonexistent"),
    tlsLibrary: (id) => (id === 2 ? "OpenSSL 3.0.19" : "?"),
  });
  return { pipeline, flows };
}

/** One entry, valid as a whole HAR document. */
function entryOf(flow: Flow): HarEntry {
  const entry = flowToHarEntry(flow);
  const doc = JSON.parse(JSON.stringify(harLog([entry])));
  expect(harProblems(doc)).toEqual([]);
  return doc.log.entries[0];
}

const cat = (...parts: (Uint8Array | string)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));
const b64 = (b: Uint8Array | string) => Buffer.from(b).toString("base64");
const SETTINGS = h2frame(H2.SETTINGS, 0, 0, [0, 3, 0, 0, 0, 100]);
const envelope = (msg: Uint8Array) => cat(Buffer.from([0, 0, 0, 0, msg.length]), msg);
const ts = (s: number, nanos = 0) => ({ seconds: BigInt(s), nanos });

describe("HAR entries", () => {
  test("HTTP/1: a JSON POST with a query and cookies; a chunked, gzip'ed response with a cookie and a trailer", () => {
    const { pipeline, flows } = pipelineFlows();
    const c = connectionWriter({ connId: 7, pid: 42, comm: "curl", origin: 2, local: ["127.0.0.1", 50000], remote: ["127.0.0.1", 8080] });
    const body = '{"name":"tapwire","n":1}';
    const text = "hello, gzip ".repeat(20);
    const gz = gzipSync(Buffer.from(text));
    const half = gz.length >> 1;
    const chunked = cat(`${half.toString(16)}\r\n`, gz.subarray(0, half), "\r\n", `${(gz.length - half).toString(16)}\r\n`, gz.subarray(half), "\r\n0\r\nX-Sum: 7\r\n\r\n");
    feed(pipeline, [
      c.open(),
      c.data(0, `POST /api/items?x=1&y=a%20b&y=c+d&flag HTTP/1.1\r\nHost: h.test:8080\r\nContent-Type: application/json\r\nCookie: a=1; b=two\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      c.data(1, cat("HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nSet-Cookie: s=abc; Path=/; Domain=h.test; HttpOnly; Secure; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\nLocation: /api/items/1\r\nTrailer: X-Sum\r\n\r\n", chunked)),
    ]);
    expect(flows).toHaveLength(1);
    const e = entryOf(flows[0]!);
    expect(e.request).toMatchObject({
      method: "POST",
      url: "http://h.test:8080/api/items?x=1&y=a%20b&y=c+d&flag",
      httpVersion: "HTTP/1.1",
      headersSize: -1,
      bodySize: body.length,
      postData: { mimeType: "application/json", text: body },
    });
    expect(e.request.postData!._encoding).toBeUndefined();
    expect(e.request.headers).toEqual([
      { name: "Host", value: "h.test:8080" },
      { name: "Content-Type", value: "application/json" },
      { name: "Cookie", value: "a=1; b=two" },
      { name: "Content-Length", value: String(body.length) },
    ]);
    expect(e.request.queryString).toEqual([
      { name: "x", value: "1" },
      { name: "y", value: "a b" },
      { name: "y", value: "c d" },
      { name: "flag", value: "" },
    ]);
    expect(e.request.cookies).toEqual([
      { name: "a", value: "1" },
      { name: "b", value: "two" },
    ]);
    expect(e.response).toMatchObject({ status: 201, statusText: "Created", httpVersion: "HTTP/1.1", redirectURL: "/api/items/1", bodySize: gz.length, headersSize: -1 });
    expect(e.response.content).toEqual({ size: text.length, compression: text.length - gz.length, mimeType: "text/plain; charset=utf-8", text, _decodedEncoding: "gzip" });
    expect(e.response.cookies).toEqual([{ name: "s", value: "abc", path: "/", domain: "h.test", httpOnly: true, secure: true, expires: "2026-10-21T07:28:00.000Z" }]);
    expect(e.response._trailers).toEqual([{ name: "X-Sum", value: "7" }]);
    expect(e.response.headers.map((h) => h.name)).toEqual(["Content-Type", "Content-Encoding", "Transfer-Encoding", "Set-Cookie", "Location", "Trailer"]);
    const f = flows[0]!;
    const startMs = Number(f.startTime!.seconds) * 1000 + f.startTime!.nanos / 1e6;
    expect(e.startedDateTime).toBe(new Date(startMs).toISOString());
    expect(e.time).toBeGreaterThan(0);
    expect(e.timings).toEqual({ blocked: -1, dns: -1, connect: -1, ssl: -1, send: 0, wait: e.time, receive: 0 });
    expect(e).toMatchObject({ serverIPAddress: "127.0.0.1", connection: "7", _flowId: f.id, _protocol: "http1", _role: "client", _clientAddress: "127.0.0.1:50000", _serverAddress: "127.0.0.1:8080", _process: { pid: 42, comm: "curl" } });
    expect(e.comment).toBeUndefined();
    expect(e._missing).toBeUndefined();
  });

  test("HTTP/2 over TLS: http/2.0, the request's pseudo-headers kept in order, no :status among the response's", () => {
    const { pipeline, flows } = pipelineFlows();
    const c = connectionWriter({ connId: 3, pid: 42, comm: "curl", origin: 2, connClass: 3, tlsLib: 2, local: ["::1", 50000], remote: ["::1", 8443] });
    const req = plainBlock([[":method", "GET"], [":scheme", "https"], [":path", "/a?b=c"], [":authority", "example.test"], ["accept", "*/*"], ["cookie", "x=1"], ["cookie", "y=2"]]);
    const res = plainBlock([[":status", "404"], ["content-type", "text/html"], ["set-cookie", "z=3"]]);
    feed(pipeline, [c.open(), c.data(0, cat(PREFACE, SETTINGS, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, req))), c.data(1, cat(SETTINGS, h2frame(H2.HEADERS, END_HEADERS, 1, res), h2frame(H2.DATA, END_STREAM, 1, Buffer.from("<p>no</p>"))))]);
    const e = entryOf(flows[0]!);
    expect(e.request.url).toBe("https://example.test/a?b=c");
    expect([e.request.httpVersion, e.response.httpVersion]).toEqual(["http/2.0", "http/2.0"]);
    expect(e.request.headers.map((h) => h.name)).toEqual([":method", ":scheme", ":path", ":authority", "accept", "cookie", "cookie"]);
    expect(e.request.cookies).toEqual([
      { name: "x", value: "1" },
      { name: "y", value: "2" },
    ]);
    expect(e.request.postData).toBeUndefined();
    expect(e.request.bodySize).toBe(0);
    expect(e.response.headers).toEqual([
      { name: "content-type", value: "text/html" },
      { name: "set-cookie", value: "z=3" },
    ]);
    expect([e.response.status, e.response.statusText, e.response.content]).toEqual([404, "", { size: 9, mimeType: "text/html", text: "<p>no</p>" }]);
    expect(e).toMatchObject({ serverIPAddress: "::1", _protocol: "http2", _clientAddress: "[::1]:50000", _serverAddress: "[::1]:8443", _tls: { library: "OpenSSL 3.0.19" }, _http2: { streamId: 1 } });
  });

  test("gRPC with trailers: POST with the envelopes as base64 postData, binary content, _trailers and _grpc", () => {
    const { pipeline, flows } = pipelineFlows();
    const c = connectionWriter({ connId: 9, pid: 50, comm: "client", origin: 2, connClass: 2, local: ["127.0.0.1", 40000], remote: ["127.0.0.1", 50051] });
    const reqMsg = Buffer.from([0x0a, 0x05, ...Buffer.from("hello")]);
    const resMsg = Buffer.from([0x0a, 0x02, ...Buffer.from("hi"), 0x10, 0x07]);
    const req = plainBlock([[":method", "POST"], [":scheme", "http"], [":path", "/echo.Echo/Say"], [":authority", "127.0.0.1:50051"], ["content-type", "application/grpc"], ["te", "trailers"]]);
    feed(pipeline, [
      c.open(),
      c.data(0, cat(PREFACE, SETTINGS, h2frame(H2.HEADERS, END_HEADERS, 1, req), h2frame(H2.DATA, END_STREAM, 1, envelope(reqMsg)))),
      c.data(1, cat(SETTINGS, h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"], ["content-type", "application/grpc"]])), h2frame(H2.DATA, 0, 1, envelope(resMsg)))),
      c.data(1, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, plainBlock([["grpc-status", "0"], ["grpc-message", ""]]))),
    ]);
    const f = flows[0]!;
    expect(f.protocol).toBe(Protocol.GRPC);
    const e = entryOf(f);
    expect(e.request).toMatchObject({ method: "POST", url: "http://127.0.0.1:50051/echo.Echo/Say", httpVersion: "http/2.0", bodySize: reqMsg.length + 5 });
    expect(e.request.postData).toEqual({ mimeType: "application/grpc", text: b64(envelope(reqMsg)), _encoding: "base64" });
    expect(e.response.content).toEqual({ size: resMsg.length + 5, mimeType: "application/grpc", text: b64(envelope(resMsg)), encoding: "base64" });
    expect(e.response._trailers).toEqual([
      { name: "grpc-status", value: "0" },
      { name: "grpc-message", value: "" },
    ]);
    expect(e._protocol).toBe("grpc");
    expect(e._grpc).toEqual({
      service: "echo.Echo",
      method: "Say",
      status: 0,
      statusName: "OK",
      requestMessages: [{ size: reqMsg.length, json: f.grpc!.requestMessages[0]!.json }],
      responseMessages: [{ size: resMsg.length, json: f.grpc!.responseMessages[0]!.json }],
    });
    expect(JSON.parse(f.grpc!.requestMessages[0]!.json)).toEqual({ "1": "hello" });
  });

  test("a body cut at --max-body: the true size, the text kept, _truncated", () => {
    const { pipeline, flows } = pipelineFlows(16);
    const c = connectionWriter({ connId: 11, pid: 42, origin: 2, local: ["127.0.0.1", 50001], remote: ["127.0.0.1", 80] });
    const body = "0123456789".repeat(10);
    feed(pipeline, [c.open(), c.data(0, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n"), c.data(1, `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`)]);
    const e = entryOf(flows[0]!);
    expect(e.response.content).toEqual({ size: 100, mimeType: "text/plain", text: body.slice(0, 16), _truncated: true });
    expect(e.response.bodySize).toBe(100);
  });

  test("a cut body that ends inside a UTF-8 character is still text, without that character's start", () => {
    const { pipeline, flows } = pipelineFlows(5);
    const c = connectionWriter({ connId: 12, pid: 42, origin: 2, local: ["127.0.0.1", 50002], remote: ["127.0.0.1", 80] });
    const body = Buffer.from("abcdé and more");
    feed(pipeline, [c.open(), c.data(0, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), c.data(1, cat(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`, body))]);
    const e = entryOf(flows[0]!);
    expect([e.response.content.text, e.response.content.encoding, e.response.content._truncated]).toEqual(["abcd", undefined, true]);
  });

  test("no response: status 0 as browsers write a failed request, _error and the comment say why", () => {
    const { pipeline, flows } = pipelineFlows();
    const c = connectionWriter({ connId: 13, pid: 42, origin: 2, local: ["127.0.0.1", 50003], remote: ["127.0.0.1", 80] });
    feed(pipeline, [c.open(), c.data(0, "GET /never HTTP/1.1\r\nHost: h\r\n\r\n"), c.close()]);
    const f = flows[0]!;
    expect(f.response).toBeUndefined();
    const e = entryOf(f);
    expect(e.response).toEqual({
      status: 0,
      statusText: "",
      httpVersion: "",
      cookies: [],
      headers: [],
      content: { size: 0, mimeType: "x-unknown" },
      redirectURL: "",
      headersSize: -1,
      bodySize: -1,
      _error: f.missing!.reason,
    });
    expect(f.missing!.reason).not.toBe("");
    expect(e.comment).toBe(f.missing!.reason);
    expect(e._missing).toMatchObject({ noResponse: true, reason: f.missing!.reason });
    expect(e.request.url).toBe("http://h/never");
  });

  test("a response only (joined mid-stream): the request unknown, its origin from the connection", () => {
    const flow = create(FlowSchema, {
      id: "r-1",
      startTime: ts(START_S),
      endTime: ts(START_S, 2_500_000),
      protocol: Protocol.HTTP1,
      connection: { id: 4n, role: Role.SERVER, source: { ip: "10.0.0.2", port: 40000 }, destination: { ip: "10.0.0.1", port: 8080 }, process: { pid: 7, comm: "nginx", exe: "/usr/sbin/nginx" }, container: { id: "c".repeat(64), name: "web", image: "nginx:1" } },
      response: { status: 200, reason: "OK", version: "HTTP/1.1", headers: [{ name: "Content-Length", value: "2" }], body: Buffer.from("ok"), bodySize: 2n },
      missing: { joinedMidStream: true, reason: "joined mid-stream: the request was not seen" },
    });
    const e = entryOf(flow);
    expect(e.request).toEqual({ method: "", url: "http://10.0.0.1:8080/", httpVersion: "HTTP/1.1", cookies: [], headers: [], queryString: [], headersSize: -1, bodySize: -1, _unknown: true });
    expect(e.response.content).toEqual({ size: 2, mimeType: "x-unknown", text: "ok" });
    expect([e.time, e.timings.wait, e.startedDateTime]).toEqual([2.5, 2.5, "2023-11-14T22:13:20.000Z"]);
    expect(e).toMatchObject({ _role: "server", _process: { pid: 7, comm: "nginx", exe: "/usr/sbin/nginx" }, _container: { id: "c".repeat(64), name: "web", image: "nginx:1" }, _missing: { joinedMidStream: true } });
  });

  test("binary bodies: the request's base64 with _encoding, the response's with encoding base64", () => {
    const { pipeline, flows } = pipelineFlows();
    const c = connectionWriter({ connId: 14, pid: 42, origin: 2, local: ["127.0.0.1", 50004], remote: ["127.0.0.1", 80] });
    const up = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    feed(pipeline, [
      c.open(),
      c.data(0, cat(`PUT /blob HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\nContent-Length: ${up.length}\r\n\r\n`, up)),
      // Binary by its bytes, whatever its type says.
      c.data(1, cat(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${png.length}\r\n\r\n`, png)),
    ]);
    const e = entryOf(flows[0]!);
    expect(e.request.postData).toEqual({ mimeType: "application/octet-stream", text: up.toString("base64"), _encoding: "base64" });
    expect(e.response.content).toEqual({ size: png.length, mimeType: "text/plain", text: png.toString("base64"), encoding: "base64" });
  });

  test("a form POST: its fields as params, the text too", () => {
    const { pipeline, flows } = pipelineFlows();
    const c = connectionWriter({ connId: 15, pid: 42, origin: 2, local: ["127.0.0.1", 50005], remote: ["127.0.0.1", 80] });
    const form = "user=ann+lee&note=a%26b";
    feed(pipeline, [c.open(), c.data(0, `POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`), c.data(1, "HTTP/1.1 204 No Content\r\n\r\n")]);
    const e = entryOf(flows[0]!);
    expect(e.request.postData).toEqual({ mimeType: "application/x-www-form-urlencoded", text: form, params: [{ name: "user", value: "ann lee" }, { name: "note", value: "a&b" }] });
    expect(e.response.content).toEqual({ size: 0, mimeType: "x-unknown" });
  });

  test("WebSocket: Chromium's _resourceType and _webSocketMessages, both ways, text, binary and close", () => {
    const msg = (sender: Role, sec: number, index: number, w: object) => ({ sender, time: ts(sec, 500_000_000), index, message: { case: "websocket" as const, value: w } });
    const flow = create(FlowSchema, {
      id: "ws-1",
      startTime: ts(START_S),
      endTime: ts(START_S + 3),
      protocol: Protocol.WEBSOCKET,
      connection: { id: 5n, role: Role.CLIENT, tls: true, tlsLibrary: "OpenSSL 3.0.19", destination: { ip: "127.0.0.1", port: 443 } },
      request: { method: "GET", path: "/chat", authority: "chat.test", version: "HTTP/1.1", headers: [{ name: "Upgrade", value: "websocket" }] },
      response: { status: 101, reason: "Switching Protocols", version: "HTTP/1.1", headers: [{ name: "Upgrade", value: "websocket" }] },
      messages: [
        msg(Role.CLIENT, START_S + 1, 0, { type: "text", text: "hi", size: 2n, fragments: 1 }),
        msg(Role.SERVER, START_S + 2, 0, { type: "binary", data: new Uint8Array([0, 255]), size: 2n, fragments: 2, compressed: true }),
        msg(Role.SERVER, START_S + 2, 1, { type: "close", size: 5n, fragments: 1, closeCode: 1000, closeReason: "bye" }),
      ],
      messagesDropped: 3,
    });
    const e = entryOf(flow);
    expect(e.request.url).toBe("wss://chat.test/chat");
    expect(e._resourceType).toBe("websocket");
    expect(e._webSocketMessages).toEqual([
      { type: "send", time: START_S + 1.5, opcode: 1, data: "hi" },
      { type: "receive", time: START_S + 2.5, opcode: 2, data: "AP8=", _compressed: true, _fragments: 2 },
      { type: "receive", time: START_S + 2.5, opcode: 8, data: "", _size: 5, _closeCode: 1000, _closeReason: "bye" },
    ]);
    expect(e._messagesDropped).toBe(3);
    expect(e.response.status).toBe(101);
  });

  test("an event stream: _eventSourceMessages as Chromium names them", () => {
    const flow = create(FlowSchema, {
      id: "sse-1",
      startTime: ts(START_S),
      endTime: ts(START_S + 1),
      protocol: Protocol.HTTP1,
      connection: { id: 6n, role: Role.CLIENT, destination: { ip: "127.0.0.1", port: 80 } },
      request: { method: "GET", path: "/events", authority: "h", version: "HTTP/1.1" },
      response: { status: 200, reason: "OK", version: "HTTP/1.1", headers: [{ name: "Content-Type", value: "text/event-stream" }], body: Buffer.from("data: a\n\n"), bodySize: 9n },
      messages: [
        { sender: Role.SERVER, time: ts(START_S, 250_000_000), index: 0, message: { case: "sse", value: { data: "a" } } },
        { sender: Role.SERVER, time: ts(START_S, 750_000_000), index: 1, message: { case: "sse", value: { id: "7", event: "tick", data: "b", retry: 100, truncated: true } } },
      ],
    });
    const e = entryOf(flow);
    expect(e._eventSourceMessages).toEqual([
      { time: START_S + 0.25, eventName: "message", eventId: "", data: "a" },
      { time: START_S + 0.75, eventName: "tick", eventId: "7", data: "b", _retry: 100, _truncated: true },
    ]);
    expect(e._webSocketMessages).toBeUndefined();
  });

  test("an open flow, an HTTP/2 reset and unknown HPACK fields; an empty flow still makes a valid entry", () => {
    const open = create(FlowSchema, {
      id: "o-1",
      open: true,
      startTime: ts(START_S),
      protocol: Protocol.HTTP2,
      connection: { id: 8n, role: Role.CLIENT, destination: { ip: "127.0.0.1", port: 80 } },
      request: { method: "GET", path: "/watch", authority: "h", version: "HTTP/2", headers: [{ name: "", value: "", nameUnknown: true, valueUnknown: true }] },
      http2: { streamId: 5, reset: { error: "CANCEL", code: 8, sentBy: Role.CLIENT } },
    });
    const e = entryOf(open);
    expect([e._open, e.time, e.response.status, e.response._error]).toEqual([true, 0, 0, "the exchange is still open"]);
    expect(e.request.headers).toEqual([{ name: "", value: "", _nameUnknown: true, _valueUnknown: true }]);
    expect(e._http2).toEqual({ streamId: 5, reset: { error: "CANCEL", code: 8, sentBy: "client", goaway: false } });
    const empty = entryOf(create(FlowSchema, {}));
    expect([empty.request.url, empty.response.status, empty.startedDateTime]).toEqual(["http://unknown/", 0, "1970-01-01T00:00:00.000Z"]);
  });

  test("any request target and authority gives a URL the schema takes", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `/${s}`), fc.webUrl()), fc.oneof(fc.string(), fc.domain()), fc.constantFrom("GET", "CONNECT", "OPTIONS"), (path, authority, method) => {
        const flow = create(FlowSchema, { protocol: Protocol.HTTP1, request: { method, path, authority, version: "HTTP/1.1" }, connection: { destination: { ip: "127.0.0.1", port: 80 } } });
        expect(harProblems(JSON.parse(JSON.stringify(harLog([flowToHarEntry(flow)]))))).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("the HAR log", () => {
  test("creator tapwire with package.json's version; head + entries + tail is the same document", () => {
    const entries = [flowToHarEntry(create(FlowSchema, { id: "a" })), flowToHarEntry(create(FlowSchema, { id: "b" }))];
    const doc = harLog(entries);
    expect(doc.log.creator).toEqual({ name: "tapwire", version: pkg.version });
    expect(doc.log.version).toBe("1.2");
    expect(JSON.parse(HAR_HEAD + entries.map((e) => JSON.stringify(e)).join(",\n") + HAR_TAIL)).toEqual(JSON.parse(JSON.stringify(doc)));
    expect(JSON.parse(HAR_HEAD + HAR_TAIL)).toEqual(harLog([]));
  });

  test("the validator refuses what is not HAR (so the tests above can fail)", () => {
    const good = JSON.parse(JSON.stringify(harLog([flowToHarEntry(create(FlowSchema, { id: "a", request: { method: "GET", path: "/" } }))])));
    expect(harProblems(good)).toEqual([]);
    const broken = structuredClone(good);
    delete broken.log.entries[0].response.content.mimeType;
    broken.log.entries[0].request.url = "not a url";
    broken.log.entries[0].timings.wait = -1;
    broken.log.entries[0].extra = 1;
    const problems = harProblems(broken);
    expect(problems.some((p) => p.includes("mimeType"))).toBe(true);
    expect(problems.some((p) => p.includes("/request/url"))).toBe(true);
    expect(problems.some((p) => p.includes("timings.wait"))).toBe(true);
    expect(problems.some((p) => p.includes("entries[0].extra"))).toBe(true);
  });
});
