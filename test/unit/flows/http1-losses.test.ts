// HTTP/1 stitching when bytes are lost between messages (the ring buffer was full): whole
// responses may go with them, and the requests after must still get their own responses;
// the flows that lost a side say so, with the bytes.
import { describe, expect, test } from "bun:test";
import { toJson } from "@bufbuild/protobuf";
import { FlowSchema } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { connectionWriter, feed } from "../../support/records.ts";

const REQ = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
const RES = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const IN = 1; // a server reads requests (ingress) and writes responses (egress)
const OUT = 0;

/** A server connection; `script` feeds or loses messages in order. Returns each flow as
 * [path, response body, missing] for reading, and the flows' JSON. */
function run(script: (c: ReturnType<typeof connectionWriter>, rec: Uint8Array[]) => void) {
  const flows: any[] = [];
  const pipeline = createPipeline({ onFlow: (f) => flows.push(toJson(FlowSchema, f)), clockOffsetNs: 0, maxBody: 1 << 20, processes: createProcessRegistry("/nonexistent") });
  const c = connectionWriter({ connId: 7, pid: 42, comm: "nginx", origin: 1, local: ["127.0.0.1", 8080], remote: ["127.0.0.1", 50000] });
  const rec: Uint8Array[] = [c.open()];
  script(c, rec);
  rec.push(c.close());
  feed(pipeline, rec);
  return flows.map((f) => [f.request?.path ?? null, f.response?.body ? atob(f.response.body) : null, f.missing ?? null]);
}

describe("HTTP/1 pairing across lost bytes", () => {
  test("a whole response lost between messages: its request says so, and every later request keeps its own response", () => {
    const lost = RES("two").length;
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")), c.data(IN, REQ("/2")));
      c.lose(OUT, lost);
      r.push(c.data(IN, REQ("/3")), c.data(OUT, RES("three")), c.data(IN, REQ("/4")), c.data(OUT, RES("four")));
    });
    expect(flows).toEqual([
      ["/1", "one", null],
      ["/2", null, { lostBytes: String(lost), noResponse: true, reason: `response lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/3", "three", null],
      ["/4", "four", null],
    ]);
  });

  test("two responses lost in one gap: both requests marked, the bytes counted once", () => {
    const lost = RES("two").length + RES("three").length;
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")), c.data(IN, REQ("/2")));
      c.lose(OUT, RES("two").length);
      r.push(c.data(IN, REQ("/3")));
      c.lose(OUT, RES("three").length);
      r.push(c.data(IN, REQ("/4")), c.data(OUT, RES("four")));
    });
    expect(flows).toEqual([
      ["/1", "one", null],
      ["/2", null, { lostBytes: String(lost), noResponse: true, reason: `response lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/3", null, { noResponse: true, reason: "response lost with bytes tapwire did not receive" }],
      ["/4", "four", null],
    ]);
  });

  test("whole exchanges lost on both sides: no flow for them, the next exchange whole and unmarked", () => {
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")));
      c.lose(IN, REQ("/2").length);
      c.lose(OUT, RES("two").length);
      r.push(c.data(IN, REQ("/3")), c.data(OUT, RES("three")));
    });
    expect(flows).toEqual([
      ["/1", "one", null],
      ["/3", "three", null],
    ]);
  });

  test("a loss that ends inside an exchange: the response alone says its request was lost, with the bytes", () => {
    const lost = RES("two").length + REQ("/2").length + REQ("/3").length; // both sides' bytes
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")));
      c.lose(IN, REQ("/2").length + REQ("/3").length);
      c.lose(OUT, RES("two").length);
      r.push(c.data(OUT, RES("three")), c.data(IN, REQ("/4")), c.data(OUT, RES("four")));
    });
    expect(flows).toEqual([
      ["/1", "one", null],
      [null, "three", { lostBytes: String(lost), reason: `request lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/4", "four", null],
    ]);
  });

  test("a lost request: its response, coming alone, says so at once (the kernel says how far requests had gone)", () => {
    const lost = REQ("/2").length;
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")));
      c.lose(IN, lost);
      r.push(c.data(OUT, RES("two")), c.data(IN, REQ("/3")), c.data(OUT, RES("three")));
    });
    expect(flows).toEqual([
      ["/1", "one", null],
      [null, "two", { lostBytes: String(lost), reason: `request lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/3", "three", null],
    ]);
  });

  test("lost on both sides, the loss ending with a response: the waiting request lost its response, that response lost its request", () => {
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")), c.data(IN, REQ("/2")));
      c.lose(OUT, RES("two").length);
      c.lose(IN, REQ("/3").length);
      r.push(c.data(OUT, RES("three")), c.data(IN, REQ("/4")), c.data(OUT, RES("four")));
    });
    const [lostResponse, lostRequest] = [RES("two").length, REQ("/3").length];
    expect(flows).toEqual([
      ["/1", "one", null],
      ["/2", null, { lostBytes: String(lostResponse), noResponse: true, reason: `response lost with bytes tapwire did not receive; ${lostResponse} bytes lost` }],
      [null, "three", { lostBytes: String(lostRequest), reason: `request lost with bytes tapwire did not receive; ${lostRequest} bytes lost` }],
      ["/4", "four", null],
    ]);
  });

  test("after a lost request, the responses that follow in the batch wait for their requests (held in arrival order)", () => {
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")));
      c.lose(IN, REQ("/2").length);
      r.push(c.data(OUT, RES("two")), c.data(IN, REQ("/3")), c.data(OUT, RES("three")), c.data(IN, REQ("/4")), c.data(OUT, RES("four")));
    });
    const lost = REQ("/2").length;
    expect(flows).toEqual([
      ["/1", "one", null],
      [null, "two", { lostBytes: String(lost), reason: `request lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/3", "three", null],
      ["/4", "four", null],
    ]);
  });

  test("a response cut by a gap that also took the next response: each request gets what was its own", () => {
    const res1 = RES("x".repeat(100));
    const half = 60;
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, res1.slice(0, half)), c.data(IN, REQ("/2")));
      c.lose(OUT, res1.length - half + RES("two").length);
      r.push(c.data(IN, REQ("/3")), c.data(OUT, RES("three")));
    });
    const lost = res1.length - half + RES("two").length;
    expect(flows[0]![0]).toBe("/1");
    expect(flows[0]![2]).toMatchObject({ lostBytes: String(lost), responseIncomplete: true });
    expect(flows.slice(1)).toEqual([
      ["/2", null, { noResponse: true, reason: "response lost with bytes tapwire did not receive" }],
      ["/3", "three", null],
    ]);
  });

  test("pipelined requests with the first response lost: the second response pairs with its own request", () => {
    const lost = RES("two").length;
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")), c.data(IN, REQ("/2") + REQ("/3")));
      c.lose(OUT, lost);
      r.push(c.data(OUT, RES("three")));
    });
    // Sent in one write, /2 and /3 began at the same moment: the later one takes the response.
    expect(flows).toEqual([
      ["/1", "one", null],
      ["/2", null, { lostBytes: String(lost), noResponse: true, reason: `response lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/3", "three", null],
    ]);
  });

  test("requests lost one at a time, each response coming alone: each flow counts its own request's bytes, once", () => {
    const lost = REQ("/2").length;
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")));
      c.lose(IN, lost);
      r.push(c.data(OUT, RES("two")));
      c.lose(IN, REQ("/3").length);
      r.push(c.data(OUT, RES("three")), c.data(IN, REQ("/4")), c.data(OUT, RES("four")));
    });
    const reason = `request lost with bytes tapwire did not receive; ${lost} bytes lost`;
    expect(flows).toEqual([
      ["/1", "one", null],
      [null, "two", { lostBytes: String(lost), reason }],
      [null, "three", { lostBytes: String(lost), reason }],
      ["/4", "four", null],
    ]);
  });

  test("the first request of an accepted connection lost: its response says so, with the bytes", () => {
    const lost = REQ("/1").length;
    const flows = run((c, r) => {
      c.lose(IN, lost);
      r.push(c.data(OUT, RES("one")), c.data(IN, REQ("/2")), c.data(OUT, RES("two")));
    });
    expect(flows).toEqual([
      [null, "one", { lostBytes: String(lost), reason: `request lost with bytes tapwire did not receive; ${lost} bytes lost` }],
      ["/2", "two", null],
    ]);
  });

  test("an upload cut by a gap keeps its response though the 100 Continue before it was lost", () => {
    const head = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    const flows = run((c, r) => {
      r.push(c.data(IN, head));
      c.lose(OUT, "HTTP/1.1 100 Continue\r\n\r\n".length);
      r.push(c.data(IN, "5\r\nhello\r\n"));
      c.lose(IN, "5\r\nworld\r\n".length);
      r.push(c.data(IN, "0\r\n\r\n"), c.data(OUT, RES("ok")), c.data(IN, REQ("/2")), c.data(OUT, RES("two")));
    });
    expect(flows.map(([path, body]) => [path, body])).toEqual([
      ["/up", "ok"],
      ["/2", "two"],
    ]);
    expect(flows[0]![2]).toMatchObject({ requestIncomplete: true, lostBytes: "10" });
  });

  test("a 101 whose request was lost hands the connection over: what follows is not read as HTTP/1", () => {
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")), c.data(OUT, RES("one")));
      c.lose(IN, 120);
      r.push(c.data(OUT, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), c.data(IN, "\x81\x05hello GET /x HTTP/1.1\r\nHost: y\r\n\r\n"));
    });
    expect(flows).toEqual([
      ["/1", "one", null],
      [null, null, { lostBytes: "120", reason: "request lost with bytes tapwire did not receive; 120 bytes lost" }],
    ]);
  });

  test("a request that lost its response goes out before a later h2c upgrade, not at close", () => {
    const up = "GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")));
      c.lose(OUT, RES("one").length);
      r.push(c.data(IN, up), c.data(OUT, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"));
    });
    expect(flows.map(([path]) => path)).toEqual(["/1", "/u"]);
    expect(flows[0]![2]).toMatchObject({ noResponse: true, reason: expect.stringContaining("response lost") });
  });

  test("a HEAD response right after a lost response is read as HEAD's (no body), and the ones after stay in step", () => {
    const flows = run((c, r) => {
      r.push(c.data(IN, REQ("/1")));
      c.lose(OUT, RES("one").length);
      r.push(
        c.data(IN, "HEAD /2 HTTP/1.1\r\nHost: x\r\n\r\n"),
        c.data(OUT, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        c.data(IN, REQ("/3")),
        c.data(OUT, RES("three")),
        c.data(IN, REQ("/4")),
        c.data(OUT, RES("four")),
      );
    });
    expect(flows.map(([path, body, missing]) => [path, body, missing?.reason ?? null])).toEqual([
      ["/1", null, `response lost with bytes tapwire did not receive; ${RES("one").length} bytes lost`],
      ["/2", null, null],
      ["/3", "three", null],
      ["/4", "four", null],
    ]);
  });
});
