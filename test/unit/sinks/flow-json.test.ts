// The hand-written Flow JSON writer against @bufbuild/protobuf's toJsonString: byte for byte,
// on every shape a flow takes and on fuzzed flows.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { create, toJsonString } from "@bufbuild/protobuf";
import { FlowEventSchema, FlowSchema, Protocol, Role, type Flow, type FlowEvent } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { writeFlowEventJson, writeFlowJson } from "../../../src/sinks/flow-json.ts";
import { JsonBytes } from "../../../src/sinks/json-bytes.ts";

// One writer for every flow, as the JSON lines sink uses it: reuse must not leak between flows.
const bytes = new JsonBytes();
const decoder = new TextDecoder("utf-8", { fatal: true });
function flowJson(f: Flow): string {
  bytes.reset();
  writeFlowJson(bytes, f);
  const text = decoder.decode(bytes.view());
  bytes.shrink();
  return text;
}
const same = (f: Flow) => expect(flowJson(f)).toBe(toJsonString(FlowSchema, f));
function sameEvent(e: FlowEvent) {
  bytes.reset();
  writeFlowEventJson(bytes, e);
  expect(decoder.decode(bytes.view())).toBe(toJsonString(FlowEventSchema, e));
  bytes.shrink();
}
const ts = (seconds: number, nanos: number) => ({ seconds: BigInt(seconds), nanos });

describe("flow JSON", () => {
  test("an empty flow, and empty messages", () => {
    same(create(FlowSchema, {}));
    same(create(FlowSchema, { connection: {}, request: {}, response: {}, missing: {}, http2: {}, grpc: {} }));
    same(create(FlowSchema, { connection: { process: {}, source: {}, container: {} }, http2: { reset: {} } }));
  });

  test("every field of an HTTP/1 flow, timestamps at every precision", () => {
    for (const nanos of [0, 1, 10, 999, 1000, 123_000, 1_000_000, 120_000_000, 999_999_999, 5_000]) {
      same(
        create(FlowSchema, {
          id: "abc-1",
          startTime: ts(1_700_000_000, nanos),
          endTime: ts(1_700_000_001, 0),
          protocol: Protocol.HTTP1,
          connection: {
            id: 18446744073709551615n,
            role: Role.SERVER,
            source: { ip: "::1", port: 65535 },
            destination: { ip: "127.0.0.1", port: 1 },
            process: { pid: 4_000_000_000, comm: "python3", exe: "/usr/bin/python3.11" },
            tls: true,
            tlsLibrary: "OpenSSL 3.0.19",
            container: { id: "a".repeat(64), name: "web", image: "localhost/x:latest" },
          },
          request: {
            method: "POST",
            path: "/a?b=c&d=\"e\"",
            authority: "example.test",
            version: "HTTP/1.1",
            headers: [{ name: "Host", value: "example.test" }, { name: "X-Empty", value: "" }, { name: "", value: "" }],
            body: new Uint8Array([0, 1, 2, 250, 251, 252, 253]),
            bodySize: 7n,
            bodyTruncated: true,
            trailers: [{ name: "X-Checksum", value: "done" }],
            bodyDecodedEncoding: "gzip, br",
          },
          response: { status: 200, reason: "OK", version: "HTTP/1.1", headers: [{ name: "A", value: "b" }], body: new TextEncoder().encode("hello"), bodySize: 5n, informationalStatuses: [100, 103] },
          missing: { lostBytes: 10n, noResponse: true, joinedMidStream: true, requestIncomplete: true, responseIncomplete: true, skippedBytes: 3n, unseenBodyBytes: 4n, reason: "a; b" },
        }),
      );
    }
  });

  test("HTTP/2 and gRPC: resets, unknown header fields, messages, a status of 0 that is there", () => {
    same(
      create(FlowSchema, {
        protocol: Protocol.GRPC,
        request: { headers: [{ name: "", value: "x", nameUnknown: true }, { name: "y", value: "", valueUnknown: true }, { name: "", value: "", nameUnknown: true, valueUnknown: true }] },
        http2: { streamId: 5, reset: { error: "CANCEL", code: 8, sentBy: Role.CLIENT, goaway: true }, promisedOnStream: 3 },
        grpc: {
          service: "tapwire.test.Echo",
          method: "Say",
          requestMessages: [{ compressed: true, size: 17, data: new Uint8Array([10, 13]), truncated: true, json: '{"1":"x"}', type: "t.M", error: "bad" }, {}],
          responseMessages: [{ size: 0 }],
          status: 0,
          statusName: "OK",
          statusMessage: "ü",
          requestEncoding: "gzip",
          responseEncoding: "identity",
          trailersOnly: true,
        },
      }),
    );
    same(create(FlowSchema, { grpc: { service: "s" } })); // no status: left out
    same(create(FlowSchema, { grpc: { requestMessagesDropped: 3, responseMessagesDropped: 70000 }, open: true }));
    sameEvent(create(FlowEventSchema, { flowId: "a-1", event: { case: "messages", value: { messages: [{ sender: Role.SERVER, time: ts(1, 5), index: 0, message: { case: "grpc", value: { size: 3, data: new Uint8Array([1, 2, 3]), json: "{}" } } }] } } }));
    sameEvent(create(FlowEventSchema, { flowId: "a-1", event: { case: "messages", value: {} } }));
    sameEvent(create(FlowEventSchema, { flowId: "a-2", event: { case: "started", value: { id: "a-2", open: true } } }));
    same(create(FlowSchema, { protocol: 9 as Protocol, connection: { role: 7 as Role } })); // unknown enum values
  });

  test("strings that need escaping: quotes, backslashes, control characters, non-ASCII, lone surrogates", () => {
    for (const s of ['a"b', "a\\b", "\n\r\t\b\f\u0000\u001f\u007f", "ü€😀", "\ud800", "x\udc00y", "</script>", "\u2028\u2029"]) {
      same(create(FlowSchema, { id: s, request: { path: s, headers: [{ name: s, value: s }] }, missing: { reason: s } }));
    }
  });

  test("flows of many connections, interleaved: each with its own connection", () => {
    const connections = Array.from({ length: 20 }, (_, i) =>
      create(FlowSchema, { connection: { id: BigInt(i + 1), role: Role.CLIENT, process: { pid: 100 + i, comm: `c${i}` }, tls: i % 2 === 0, tlsLibrary: i % 2 ? "" : "Go go1.19.8 crypto/tls" } }).connection!,
    );
    for (let round = 0; round < 3; round++) {
      for (const connection of connections) same(create(FlowSchema, { id: `f${round}`, connection }));
    }
  });

  test("bodies of every length up to 200 bytes, and a large one (two ways of writing base64)", () => {
    for (let n = 0; n <= 200; n++) {
      const body = new Uint8Array(n).map((_, i) => (i * 37 + n) & 255);
      same(create(FlowSchema, { request: { body }, grpc: { requestMessages: [{ data: body }] } }));
    }
    same(create(FlowSchema, { response: { body: new Uint8Array(100_001).map((_, i) => (i * 131) & 255) } }));
  });

  test("fuzzed flows", () => {
    const text = fc.string({ unit: fc.constantFrom("a", "Z", "0", " ", '"', "\\", "\n", "\u0001", "é", "😀", "\ud800", "/", ":") , maxLength: 12 });
    const u32 = fc.integer({ min: 0, max: 4_294_967_295 });
    const u64 = fc.bigInt({ min: 0n, max: 18446744073709551615n });
    const bytes = fc.uint8Array({ maxLength: 40 });
    const header = fc.record({ name: text, value: text, nameUnknown: fc.boolean(), valueUnknown: fc.boolean() });
    const headers = fc.array(header, { maxLength: 4 });
    const time = fc.record({ seconds: fc.bigInt({ min: 0n, max: 253402300799n }), nanos: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999 }).map((n) => n * 1_000_000), fc.integer({ min: 0, max: 999_999 }).map((n) => n * 1000), fc.integer({ min: 0, max: 999_999_999 })) });
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const grpcMessage = fc.record({ compressed: fc.boolean(), size: u32, data: bytes, truncated: fc.boolean(), json: text, type: text, error: text });
    const flow = fc.record({
      id: text,
      startTime: opt(time),
      endTime: opt(time),
      protocol: fc.integer({ min: 0, max: 5 }),
      connection: opt(
        fc.record({
          id: u64,
          role: fc.integer({ min: 0, max: 3 }),
          source: opt(fc.record({ ip: text, port: u32 })),
          destination: opt(fc.record({ ip: text, port: u32 })),
          process: opt(fc.record({ pid: u32, comm: text, exe: text })),
          tls: fc.boolean(),
          tlsLibrary: text,
          container: opt(fc.record({ id: text, name: text, image: text })),
        }),
      ),
      request: opt(fc.record({ method: text, path: text, authority: text, version: text, headers, body: bytes, bodySize: u64, bodyTruncated: fc.boolean(), trailers: headers, bodyDecodedEncoding: text })),
      response: opt(fc.record({ status: u32, reason: text, version: text, headers, body: bytes, bodySize: u64, bodyTruncated: fc.boolean(), trailers: headers, bodyDecodedEncoding: text, informationalStatuses: fc.array(u32, { maxLength: 3 }) })),
      missing: opt(fc.record({ lostBytes: u64, noResponse: fc.boolean(), joinedMidStream: fc.boolean(), requestIncomplete: fc.boolean(), responseIncomplete: fc.boolean(), skippedBytes: u64, unseenBodyBytes: u64, reason: text })),
      http2: opt(fc.record({ streamId: u32, reset: opt(fc.record({ error: text, code: u32, sentBy: fc.integer({ min: 0, max: 3 }), goaway: fc.boolean() })), promisedOnStream: u32 })),
      grpc: opt(
        fc.record({
          service: text,
          method: text,
          requestMessages: fc.array(grpcMessage, { maxLength: 3 }),
          responseMessages: fc.array(grpcMessage, { maxLength: 3 }),
          status: opt(u32),
          statusName: text,
          statusMessage: text,
          requestEncoding: text,
          responseEncoding: text,
          trailersOnly: fc.boolean(),
          requestMessagesDropped: u32,
          responseMessagesDropped: u32,
        }),
      ),
      open: fc.boolean(),
      messagesDropped: u32,
    });
    fc.assert(fc.property(flow, (f) => same(create(FlowSchema, f as never))), { numRuns: 3000 });
    // Live events: a started or ended flow, or messages.
    const flowMessage = fc.record({
      sender: fc.integer({ min: 0, max: 3 }),
      time: opt(time),
      index: u32,
      message: fc.oneof(
        fc.constant({ case: undefined }),
        grpcMessage.map((value) => ({ case: "grpc" as const, value })),
        fc.record({ id: text, event: text, data: text, retry: opt(u32), truncated: fc.boolean() }).map((value) => ({ case: "sse" as const, value })),
        fc
          .record({ type: text, data: bytes, text, size: u64, fragments: u32, compressed: fc.boolean(), truncated: fc.boolean(), closeCode: u32, closeReason: text, error: text })
          .map((value) => ({ case: "websocket" as const, value })),
      ),
    });
    const event = fc.record({
      flowId: text,
      event: fc.oneof(
        fc.constant({ case: undefined }),
        flow.map((value) => ({ case: "started" as const, value })),
        flow.map((value) => ({ case: "ended" as const, value })),
        fc.array(flowMessage, { maxLength: 3 }).map((messages) => ({ case: "messages" as const, value: { messages } })),
      ),
    });
    fc.assert(fc.property(event, (e) => sameEvent(create(FlowEventSchema, e as never))), { numRuns: 2000 });
    // Flows with messages of their own (Server-Sent Events).
    fc.assert(fc.property(flow, fc.array(flowMessage, { maxLength: 3 }), (f, messages) => same(create(FlowSchema, { ...f, messages } as never))), { numRuns: 1000 });
  });
});
