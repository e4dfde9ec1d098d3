// gRPC pieces: length-prefixed messages (whole, cut, compressed, bad), the schemaless JSON
// of a message checked against messages encoded with @bufbuild/protobuf's writer, status
// names and grpc-message decoding, and a gRPC call through the pipeline.
import { describe, expect, test } from "bun:test";
import { toJson } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { gzipSync } from "node:zlib";
import { decodeGrpcMessage, grpcStatusName, readGrpcMessages, splitGrpcPath } from "../../../../src/protocols/grpc/messages.ts";
import { wireToJson } from "../../../../src/protocols/grpc/wire-json.ts";
import { FlowSchema, type Flow } from "../../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../../src/procs/process-registry.ts";
import { connectionWriter, feed } from "../../../support/records.ts";
import { END_HEADERS, END_STREAM, H2, PREFACE, h2frame, plainBlock } from "../../../support/h2.ts";

const prefixed = (msg: Uint8Array, compressed = false) => Buffer.concat([Buffer.from([compressed ? 1 : 0, msg.length >> 24, (msg.length >> 16) & 0xff, (msg.length >> 8) & 0xff, msg.length & 0xff]), msg]);

describe("length-prefixed messages", () => {
  test("several messages, one compressed with gzip, the last cut short", () => {
    const a = new Uint8Array([0x0a, 0x01, 0x61]);
    const b = new TextEncoder().encode("hello hello hello");
    const raw = Buffer.concat([prefixed(a), prefixed(gzipSync(b), true), prefixed(new Uint8Array(10)).subarray(0, 8)]);
    const got = readGrpcMessages(raw, "gzip", 1 << 20);
    expect(got.map((m) => [m.compressed, m.size, Buffer.from(m.data).toString("latin1"), m.truncated, m.error])).toEqual([
      [false, 3, "\x0a\x01a", false, ""],
      [true, gzipSync(b).length, "hello hello hello", false, ""],
      [false, 10, "\0\0\0", true, ""],
    ]);
  });

  test("a compressed message that does not inflate, or an unknown encoding: kept as sent, with the reason", () => {
    const got = readGrpcMessages(Buffer.concat([prefixed(new Uint8Array([1, 2, 3]), true)]), "gzip", 100);
    expect(got[0]!.error).toMatch(/^gzip: /);
    expect([...got[0]!.data]).toEqual([1, 2, 3]);
    expect(readGrpcMessages(prefixed(new Uint8Array([1]), true), "snappy", 100)[0]!.error).toBe("snappy: unsupported message encoding");
  });

  test("a message over the limit is kept up to it and marked truncated", () => {
    const [m] = readGrpcMessages(prefixed(new Uint8Array(50).fill(7)), "", 20);
    expect([m!.size, m!.data.length, m!.truncated]).toEqual([50, 20, true]);
  });
});

describe("messages without their schema", () => {
  test("every wire type, nesting, repeated fields, text and bytes", () => {
    const inner = new BinaryWriter().uint32((1 << 3) | 0).int32(7).uint32((2 << 3) | 2).string("inner text").finish();
    const w = new BinaryWriter();
    w.uint32((1 << 3) | 0).uint64(12345678901234n);
    w.uint32((2 << 3) | 1).fixed64(0x0102030405060708n);
    w.uint32((3 << 3) | 5).fixed32(0xdeadbeef);
    w.uint32((4 << 3) | 2).string("a string");
    w.uint32((5 << 3) | 2).bytes(inner);
    w.uint32((6 << 3) | 2).bytes(new Uint8Array([0xff, 0x00, 0xfe]));
    w.uint32((7 << 3) | 2).string("x");
    w.uint32((7 << 3) | 2).string("y");
    w.uint32((7 << 3) | 2).string("z");
    expect(JSON.parse(wireToJson(w.finish())!)).toEqual({
      "1": "12345678901234",
      "2": "0x0102030405060708",
      "3": "0xdeadbeef",
      "4": "a string",
      "5": { "1": "7", "2": "inner text" },
      "6": "base64:/wD+",
      "7": ["x", "y", "z"],
    });
  });

  test("bytes that are not protobuf give no JSON, never an exception", () => {
    expect(wireToJson(new Uint8Array([0x0f, 0xff, 0xff]))).toBeUndefined();
    expect(wireToJson(new Uint8Array([0x0a, 0x05, 0x61]))).toBeUndefined(); // length past the end
    expect(wireToJson(new Uint8Array(0))).toBe("{}");
  });
});

describe("status and path", () => {
  test("names, percent-decoded messages, service and method", () => {
    expect([0, 5, 16, 42].map(grpcStatusName)).toEqual(["OK", "NOT_FOUND", "UNAUTHENTICATED", "code 42"]);
    expect(decodeGrpcMessage("no%20such%20user%3A%20%C3%BC")).toBe("no such user: ü");
    expect(decodeGrpcMessage("100%")).toBe("100%");
    expect(splitGrpcPath("/pkg.v1.Users/Get")).toEqual({ service: "pkg.v1.Users", method: "Get" });
    expect(splitGrpcPath("/odd")).toEqual({ service: "", method: "/odd" });
  });
});

describe("a gRPC call through the pipeline", () => {
  function run(responseFrames: Uint8Array) {
    const flows: Flow[] = [];
    const pipeline = createPipeline({ onFlow: (f) => flows.push(f), clockOffsetNs: 0, maxBody: 1 << 20, processes: createProcessRegistry("/nonexistent") });
    const c = connectionWriter({ connId: 1, pid: 5, origin: 2, connClass: 2 });
    const request = h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":method", "POST"], [":scheme", "http"], [":path", "/pkg.Svc/Do"], [":authority", "a"], ["content-type", "application/grpc+proto"], ["te", "trailers"]]));
    const body = h2frame(H2.DATA, END_STREAM, 1, prefixed(new Uint8Array([0x0a, 0x02, 0x68, 0x69])));
    feed(pipeline, [c.open(), c.data(0, Buffer.concat([Buffer.from(PREFACE), request, body])), c.data(1, responseFrames)]);
    return flows.map((f) => toJson(FlowSchema, f) as any);
  }

  test("a response with a message and trailers", () => {
    const [f] = run(
      Buffer.concat([
        h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"], ["content-type", "application/grpc+proto"]])),
        h2frame(H2.DATA, 0, 1, prefixed(new Uint8Array([0x0a, 0x02, 0x6f, 0x6b]))),
        h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, plainBlock([["grpc-status", "0"], ["grpc-message", ""]])),
      ]),
    );
    expect(f.protocol).toBe("PROTOCOL_GRPC");
    expect(f.grpc).toEqual({
      service: "pkg.Svc",
      method: "Do",
      requestMessages: [{ size: 4, data: Buffer.from([0x0a, 0x02, 0x68, 0x69]).toString("base64"), json: '{"1":"hi"}' }],
      responseMessages: [{ size: 4, data: Buffer.from([0x0a, 0x02, 0x6f, 0x6b]).toString("base64"), json: '{"1":"ok"}' }],
      status: 0,
      statusName: "OK",
    });
  });

  test("Trailers-Only: the status in the response headers", () => {
    const [f] = run(h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, plainBlock([[":status", "200"], ["content-type", "application/grpc"], ["grpc-status", "7"], ["grpc-message", "denied%21"]])));
    expect([f.grpc.status, f.grpc.statusName, f.grpc.statusMessage, f.grpc.trailersOnly, f.grpc.responseMessages]).toEqual([7, "PERMISSION_DENIED", "denied!", true, undefined]);
  });

  test("reset before a status: no status, the reset says why", () => {
    const [f] = run(Buffer.concat([h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"], ["content-type", "application/grpc"]])), h2frame(H2.RST_STREAM, 0, 1, [0, 0, 0, 8])]));
    expect(f.grpc.status).toBeUndefined();
    expect(f.http2.reset).toEqual({ error: "CANCEL", code: 8, sentBy: "ROLE_SERVER" });
    expect(f.missing.responseIncomplete).toBe(true);
  });
});
