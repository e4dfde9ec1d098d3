// Streams read as their bytes arrive. gRPC: the envelope reader at every split point and on a
// peer announcing a huge message, and through the pipeline a call with more messages than its
// budget (kept up to it, the rest counted, every one seen live), a call whose messages
// together pass --max-body (each kept: the bound is per message), and a stream cut in the
// middle of a message; a call that never ends costs its budget, not more. An event stream:
// its events kept within the same budget, the rest counted, all seen live.
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { createEnvelopeReader } from "../../../src/protocols/grpc/envelope-reader.ts";
import { readGrpcMessages } from "../../../src/protocols/grpc/messages.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import type { Flow, FlowMessage } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { connectionWriter, feed } from "../../support/records.ts";
import { END_HEADERS, END_STREAM, H2, PREFACE, h2frame, plainBlock } from "../../support/h2.ts";

/** A length-prefixed message. */
function envelope(body: Uint8Array | string, compressed = false): Uint8Array {
  const b = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const out = new Uint8Array(5 + b.length);
  out[0] = compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(1, b.length);
  out.set(b, 5);
  return out;
}
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
/** A protobuf message with field 1 = s (length-delimited). */
const pb = (s: string) => cat(new Uint8Array([10, s.length]), new TextEncoder().encode(s));

describe("envelope reader", () => {
  const wire = cat(envelope(pb("one")), envelope(new Uint8Array(0)), envelope(pb("a longer message, three")), envelope(pb("x")));
  test("at every split point (and byte by byte), the messages readGrpcMessages finds in the whole", () => {
    const whole = readGrpcMessages(wire, "", 1 << 20);
    expect(whole).toHaveLength(4);
    for (let cut = 0; cut <= wire.length; cut++) {
      const r = createEnvelopeReader("", 1 << 20);
      const got = [...r.push(wire.subarray(0, cut)), ...r.push(wire.subarray(cut))];
      expect(got).toEqual(whole);
      expect(r.count).toBe(4);
    }
    const r = createEnvelopeReader("", 1 << 20);
    const got = [...wire].flatMap((b) => r.push(new Uint8Array([b])));
    expect(got).toEqual(whole);
  });

  test("a message longer than the bound is kept up to it, marked; a 4 GB announcement allocates the bound", () => {
    const r = createEnvelopeReader("", 10);
    const [m] = r.push(envelope(pb("twenty bytes long..")));
    expect(m).toMatchObject({ size: 21, truncated: true, error: "" });
    expect(m!.data).toEqual(pb("twenty bytes long..").subarray(0, 10));
    const huge = createEnvelopeReader("", 1024);
    expect(huge.push(new Uint8Array([0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]))).toEqual([]);
    const rest = huge.rest()!;
    expect(rest).toMatchObject({ size: 0xffffffff, truncated: true });
    expect(rest.data).toEqual(new Uint8Array([1, 2, 3]));
  });

  test("what a stream ended in the middle of: the cut message, or nothing before a whole prefix", () => {
    const r = createEnvelopeReader("", 100);
    r.push(envelope(pb("done")));
    expect(r.rest()).toBeUndefined();
    r.push(new Uint8Array([0, 0, 0]));
    expect(r.rest()).toBeUndefined();
    r.push(new Uint8Array([0, 8, 10, 6, 104]));
    expect(r.rest()).toMatchObject({ size: 8, truncated: true, data: new Uint8Array([10, 6, 104]) });
  });
});

describe("calls through the pipeline", () => {
  function setup(maxBody: number, limits = {}) {
    const flows: Flow[] = [];
    const live: FlowMessage[] = [];
    const started: Flow[] = [];
    const pipeline = createPipeline({
      onFlow: (f) => flows.push(f),
      live: { started: (f) => started.push(f), messages: (_id, ms) => live.push(...ms) },
      clockOffsetNs: 1_700_000_000 * 1e9,
      maxBody,
      processes: createProcessRegistry("/nonexistent"),
      limits,
    });
    const c = connectionWriter({ connId: 7, pid: 70, origin: 2, connClass: 2 });
    return { pipeline, flows, live, started, c };
  }
  const SETTINGS = h2frame(H2.SETTINGS, 0, 0, [0, 3, 0, 0, 0, 100]);
  const call = (path: string) =>
    h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":method", "POST"], [":scheme", "http"], [":path", path], [":authority", "a.test"], ["content-type", "application/grpc"], ["te", "trailers"]]));
  const replyHeaders = h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"], ["content-type", "application/grpc"]]));
  const trailers = h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, plainBlock([["grpc-status", "0"]]));
  /** The request's one message, ending its side. */
  const ask = h2frame(H2.DATA, END_STREAM, 1, envelope(pb("go")));

  test("100,000 messages on one call: 10,000 kept, 90,000 counted on the call and in the overflows, all 100,000 seen live", () => {
    const { pipeline, flows, live, started, c } = setup(1 << 20);
    feed(pipeline, [c.open(), c.data(0, cat(new TextEncoder().encode(PREFACE), SETTINGS, call("/s.Svc/Watch"), ask)), c.data(1, cat(SETTINGS, replyHeaders))]);
    expect(started).toHaveLength(1);
    for (let batch = 0; batch < 100; batch++) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 1000; i++) frames.push(h2frame(H2.DATA, 0, 1, envelope(pb(`event ${batch * 1000 + i}`))));
      feed(pipeline, [c.data(1, cat(...frames))]);
    }
    feed(pipeline, [c.data(1, trailers)]);
    expect(flows).toHaveLength(1);
    const g = flows[0]!.grpc!;
    expect(g.responseMessages).toHaveLength(10_000);
    expect(g.responseMessagesDropped).toBe(90_000);
    expect(g.requestMessagesDropped).toBe(0);
    expect(g.responseMessages[9_999]!.json).toBe(JSON.stringify({ "1": "event 9999" }));
    expect(pipeline.stats.overflows.streamBudget).toBe(90_000);
    const fromServer = live.filter((m) => m.sender === 2);
    expect(fromServer).toHaveLength(100_000);
    expect(fromServer.at(-1)!.index).toBe(99_999);
    const last = fromServer.at(-1)!.message;
    expect(last.case === "grpc" && last.value.json).toBe(JSON.stringify({ "1": "event 99999" }));
    expect(flows[0]!.id).toBe(started[0]!.id);
  });

  test("a call that never ends: 100,000 messages while it stays open cost the budget, not more", () => {
    const { pipeline, flows, live, c } = setup(1 << 20);
    feed(pipeline, [c.open(), c.data(0, cat(new TextEncoder().encode(PREFACE), SETTINGS, call("/s.Svc/Watch"), ask)), c.data(1, cat(SETTINGS, replyHeaders))]);
    const payload = "x".repeat(200);
    const batch = () => cat(...Array.from({ length: 1000 }, () => h2frame(H2.DATA, 0, 1, envelope(pb(payload)))));
    // Past the budget (10,000 messages of 202 bytes: ~2 MB kept), the heap stays where it is.
    for (let i = 0; i < 10; i++) feed(pipeline, [c.data(1, batch())]);
    live.length = 0;
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 90; i++) {
      feed(pipeline, [c.data(1, batch())]);
      live.length = 0; // a live watcher that keeps up
    }
    Bun.gc(true);
    const grown = process.memoryUsage().heapUsed - before;
    expect(grown).toBeLessThan(4 << 20); // 90,000 messages of 202 bytes passed: 18 MB
    expect(flows).toHaveLength(0); // still open
    expect(pipeline.stats.overflows.streamBudget).toBe(90_000);
  });

  test("the byte budget: messages kept while their bytes fit", () => {
    const { pipeline, flows, c } = setup(1 << 20, { maxStreamBody: 1000 });
    const frames = Array.from({ length: 50 }, (_, i) => h2frame(H2.DATA, 0, 1, envelope(pb(`${i}`.padStart(98, "x")))));
    feed(pipeline, [c.open(), c.data(0, cat(new TextEncoder().encode(PREFACE), SETTINGS, call("/s.Svc/Watch"), ask)), c.data(1, cat(SETTINGS, replyHeaders, ...frames, trailers))]);
    const g = flows[0]!.grpc!;
    expect(g.responseMessages).toHaveLength(10); // 100 bytes each
    expect(g.responseMessagesDropped).toBe(40);
  });

  test("messages that together pass --max-body are all kept: the bound is per message", () => {
    const { pipeline, flows, c } = setup(256);
    const frames = Array.from({ length: 30 }, (_, i) => h2frame(H2.DATA, 0, 1, envelope(pb(`message ${i}`.padEnd(100, ".")))));
    const big = h2frame(H2.DATA, 0, 1, envelope(pb("y".repeat(120)).subarray(0), false));
    feed(pipeline, [c.open(), c.data(0, cat(new TextEncoder().encode(PREFACE), SETTINGS, call("/s.Svc/List"), ask)), c.data(1, cat(SETTINGS, replyHeaders, ...frames, big, trailers))]);
    const g = flows[0]!.grpc!;
    expect(g.responseMessages).toHaveLength(31);
    expect(g.responseMessages.map((m) => m.truncated)).toEqual(Array(31).fill(false));
    expect(JSON.parse(g.responseMessages[29]!.json)).toEqual({ "1": "message 29".padEnd(100, ".") });
  });

  test("a call cut in the middle of a message: kept as far as it came, marked", () => {
    const { pipeline, flows, c } = setup(1 << 20);
    const msg = envelope(pb("a message that will be cut"));
    feed(pipeline, [
      c.open(),
      c.data(0, cat(new TextEncoder().encode(PREFACE), SETTINGS, call("/s.Svc/Watch"))),
      c.data(1, cat(SETTINGS, replyHeaders, h2frame(H2.DATA, 0, 1, envelope(pb("whole"))), h2frame(H2.DATA, 0, 1, msg.subarray(0, 12)))),
      c.close(),
    ]);
    pipeline.close(2_000_000_000);
    const g = flows[0]!.grpc!;
    expect(g.responseMessages.map((m) => [m.size, m.truncated, m.data.length])).toEqual([
      [7, false, 7],
      [28, true, 7],
    ]);
  });
});

describe("an event stream through the pipeline", () => {
  test("20,000 events: 10,000 kept on the flow, 10,000 counted, every one seen live, in order", () => {
    const flows: Flow[] = [];
    const live: FlowMessage[] = [];
    const pipeline = createPipeline({
      onFlow: (f) => flows.push(f),
      live: { started: () => {}, messages: (_id, ms) => live.push(...ms) },
      clockOffsetNs: 1_700_000_000 * 1e9,
      maxBody: 1 << 20,
      processes: createProcessRegistry("/nonexistent"),
    });
    const c = connectionWriter({ connId: 8, pid: 80, origin: 2, connClass: 1 });
    const te = new TextEncoder();
    feed(pipeline, [c.open(), c.data(0, "GET /events HTTP/1.1\r\nHost: a.test\r\n\r\n"), c.data(1, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")]);
    for (let b = 0; b < 20; b++) {
      let text = "";
      for (let i = 0; i < 1000; i++) text += `id: ${b * 1000 + i}\ndata: event ${b * 1000 + i}\n\n`;
      feed(pipeline, [c.data(1, te.encode(text))]);
    }
    feed(pipeline, [c.close()]);
    pipeline.close(9_000_000_000);
    expect(flows).toHaveLength(1);
    const f = flows[0]!;
    expect(f.messages).toHaveLength(10_000);
    expect(f.messagesDropped).toBe(10_000);
    expect(live).toHaveLength(20_000);
    expect(live.map((m) => m.index)).toEqual([...Array(20_000).keys()]);
    const last = live.at(-1)!.message;
    expect(last.case === "sse" && [last.value.id, last.value.data]).toEqual(["19999", "event 19999"]);
    expect(pipeline.stats.overflows.streamBudget).toBe(10_000);
  });
});

describe("event streams that are not read as events", () => {
  test("a gzip-compressed event stream: no events (its bytes are not lines), its body decoded at the end", () => {
    const flows: Flow[] = [];
    const live: FlowMessage[] = [];
    const pipeline = createPipeline({
      onFlow: (f) => flows.push(f),
      live: { started: () => {}, messages: (_id, ms) => live.push(...ms) },
      clockOffsetNs: 0,
      maxBody: 1 << 20,
      processes: createProcessRegistry("/nonexistent"),
    });
    const c = connectionWriter({ connId: 9, pid: 90, origin: 2, connClass: 1 });
    const body = gzipSync("data: one\n\ndata: two\n\n");
    feed(pipeline, [
      c.open(),
      c.data(0, "GET /events HTTP/1.1\r\nHost: a.test\r\n\r\n"),
      c.data(1, cat(new TextEncoder().encode(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\n\r\n`), body)),
    ]);
    expect(flows).toHaveLength(1);
    expect(flows[0]!.messages).toEqual([]);
    expect(live).toEqual([]);
    expect(new TextDecoder().decode(flows[0]!.response!.body)).toBe("data: one\n\ndata: two\n\n");
  });
});

