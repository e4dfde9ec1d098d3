// Every buffer bounded, every overflow counted: one connection that pipelines requests and
// never answers, or opens HTTP/2 streams and never ends them, keeps at most its bound, and
// what went out early says so.
import { describe, expect, test } from "bun:test";
import type { Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { DEFAULT_LIMITS } from "../../../src/flows/flow-context.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { connectionWriter, feed } from "../../support/records.ts";
import { h2frame, plainBlock, PREFACE, H2, END_HEADERS, END_STREAM } from "../../support/h2.ts";

function setup() {
  const flows: Flow[] = [];
  const pipeline = createPipeline({ onFlow: (f) => flows.push(f), clockOffsetNs: 0, maxBody: 1 << 20, processes: createProcessRegistry("/nonexistent") });
  return { pipeline, flows };
}

const max = DEFAULT_LIMITS.maxPendingRequests;

describe("HTTP/1: requests waiting for responses", () => {
  test("10,000 pipelined requests without responses: at most the bound wait; the rest go out marked and counted; late responses pair right", () => {
    const { pipeline, flows } = setup();
    const c = connectionWriter({ connId: 1, pid: 10, comm: "client", origin: 2, local: ["127.0.0.1", 40000], remote: ["127.0.0.1", 80] });
    feed(pipeline, [c.open()]);
    const n = 10_000;
    for (let i = 0; i < n; i++) feed(pipeline, [c.data(0, `GET /r${i} HTTP/1.1\r\nHost: h\r\n\r\n`)]);
    expect(pipeline.stats.overflows.http1PendingRequests).toBe(n - max);
    expect(flows.length).toBe(n - max);
    const first = flows[0]!;
    expect(first.request?.path).toBe("/r0");
    expect(first.response).toBeUndefined();
    expect(first.missing?.noResponse).toBe(true);
    expect(first.missing?.joinedMidStream).toBe(false);
    expect(first.missing?.reason).toBe(`sent out without its response: more than ${max} requests were waiting for responses`);
    // The responses come at last, in order: the first n - max belong to requests already out.
    for (let i = 0; i < n; i++) feed(pipeline, [c.data(1, `HTTP/1.1 200 OK\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`)]);
    feed(pipeline, [c.close()]);
    expect(flows.length).toBe(2 * (n - max) + max);
    const alone = flows[n - max]!;
    expect([alone.request, Buffer.from(alone.response!.body).toString(), alone.missing?.reason]).toEqual([undefined, "0", `its request went out without it: more than ${max} requests were waiting for responses`]);
    // Every request still waiting met its own response.
    for (const f of flows.slice(2 * (n - max))) {
      expect(Buffer.from(f.response!.body).toString()).toBe(f.request!.path.slice(2));
      expect(f.missing).toBeUndefined();
    }
  });
});

describe("HTTP/2: open streams and header blocks", () => {
  test("10,000 streams opened and never ended: at most the bound open; the oldest go out marked and counted", () => {
    const { pipeline, flows } = setup();
    const c = connectionWriter({ connId: 2, pid: 11, comm: "h2c", origin: 2, connClass: 2, local: ["127.0.0.1", 40001], remote: ["127.0.0.1", 8080] });
    feed(pipeline, [c.open(), c.data(0, PREFACE)]);
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      feed(pipeline, [c.data(0, h2frame(H2.HEADERS, END_HEADERS, 2 * i + 1, plainBlock([[":method", "POST"], [":path", `/s${i}`], [":authority", "h"]])))]);
    }
    expect(pipeline.stats.overflows.http2OpenStreams).toBe(n - DEFAULT_LIMITS.maxOpenStreams);
    expect(flows.length).toBe(n - DEFAULT_LIMITS.maxOpenStreams);
    const f = flows[0]!;
    expect([f.http2?.streamId, f.request?.path, f.response, f.missing?.noResponse, f.missing?.requestIncomplete]).toEqual([1, "/s0", undefined, true, true]);
    expect(f.missing?.reason).toStartWith(`emitted before it ended: more than ${DEFAULT_LIMITS.maxOpenStreams} streams open on the connection`);
    feed(pipeline, [c.close()]);
    expect(flows.length).toBe(n);
  });

  test("a 1 MiB CONTINUATION run is a header error on its flow, counted", () => {
    const { pipeline, flows } = setup();
    const c = connectionWriter({ connId: 3, pid: 12, comm: "h2c", origin: 2, connClass: 2, local: ["127.0.0.1", 40002], remote: ["127.0.0.1", 8080] });
    feed(pipeline, [c.open(), c.data(0, PREFACE), c.data(0, h2frame(H2.HEADERS, END_STREAM, 1, plainBlock([[":method", "GET"], [":path", "/big"]])))]);
    for (let i = 0; i < 1024; i++) feed(pipeline, [c.data(0, h2frame(H2.CONTINUATION, 0, 1, new Uint8Array(1024)))]);
    feed(pipeline, [c.close()]);
    expect(pipeline.stats.overflows.headerBlocks).toBe(1);
    expect(flows.length).toBe(1);
    expect(flows[0]!.missing?.reason).toContain(`request header block longer than ${DEFAULT_LIMITS.maxHeaderBlock} bytes`);
  });
});
