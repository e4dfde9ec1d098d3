// The user-side pipeline fed synthetic kernel records: connections, stream positions, gaps,
// roles, stitching and the Flow fields they produce.
import { describe, expect, test } from "bun:test";
import { toJson } from "@bufbuild/protobuf";
import { FlowSchema, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { connectionWriter, feed, procExitRecord, dataRecord, libOpenRecord } from "../../support/records.ts";

function setup() {
  const flows: Flow[] = [];
  const forgotten: [number, number][] = [];
  const libOpens: [number, string, number][] = [];
  const execs: number[] = [];
  const pipeline = createPipeline({
    onFlow: (f) => flows.push(f),
    clockOffsetNs: 1_700_000_000 * 1e9,
    maxBody: 1 << 20,
    processes: createProcessRegistry("/nonexistent"),
    forget: (pid, fd) => forgotten.push([pid, fd]),
    tlsLibrary: (id) => (id === 2 ? "OpenSSL 3.0.19" : "?"),
    onLibOpen: (pid, path, fd) => libOpens.push([pid, path, fd]),
    onExec: (pid) => execs.push(pid),
  });
  const json = () => flows.map((f) => toJson(FlowSchema, f) as any);
  return { pipeline, flows, json, forgotten, libOpens, execs };
}

const REQ = "GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n";
const RES = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

describe("pipeline", () => {
  test("a client connection: one flow with every field", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 7, pid: 42, comm: "curl", origin: 2, local: ["127.0.0.1", 50000], remote: ["127.0.0.2", 8080] });
    feed(pipeline, [c.open(), c.data(0, REQ), c.data(1, RES), c.close()]);
    const [f] = json();
    expect(f).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-1$/),
      startTime: expect.stringMatching(/^2023-11-14T22:13:20\.00\d+Z$/),
      endTime: expect.stringMatching(/^2023-11-14T22:13:20\.00\d+Z$/),
      protocol: "PROTOCOL_HTTP1",
      connection: {
        id: "7",
        role: "ROLE_CLIENT",
        source: { ip: "127.0.0.1", port: 50000 },
        destination: { ip: "127.0.0.2", port: 8080 },
        process: { pid: 42, comm: "curl" },
      },
      request: {
        method: "GET",
        path: "/a?b=c",
        authority: "example.test",
        version: "HTTP/1.1",
        headers: [
          { name: "Host", value: "example.test" },
          { name: "Accept", value: "*/*" },
        ],
      },
      response: {
        status: 200,
        reason: "OK",
        version: "HTTP/1.1",
        headers: [
          { name: "Content-Length", value: "5" },
          { name: "Content-Type", value: "text/plain" },
        ],
        body: Buffer.from("hello").toString("base64"),
        bodySize: "5",
      },
    });
  });

  test("a server connection: source is the remote client", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 1, pid: 9, origin: 1, local: ["::1", 8080], remote: ["::1", 51000] });
    feed(pipeline, [c.open(), c.data(1, REQ), c.data(0, RES), c.close()]);
    const [f] = json();
    expect(f.connection.role).toBe("ROLE_SERVER");
    expect(f.connection.source).toEqual({ ip: "::1", port: 51000 });
    expect(f.connection.destination).toEqual({ ip: "::1", port: 8080 });
  });

  test("a connection found open takes its role from who sends the request", () => {
    for (const [dir, role] of [
      [0, "ROLE_CLIENT"],
      [1, "ROLE_SERVER"],
    ] as const) {
      const { pipeline, json } = setup();
      const c = connectionWriter({ connId: 1, pid: 9, origin: 0, local: ["10.0.0.1", 40000], remote: ["10.0.0.2", 80] });
      feed(pipeline, [c.open(), c.data(dir, REQ), c.data((1 - dir) as 0 | 1, RES), c.close()]);
      const [f] = json();
      expect(f.connection.role).toBe(role);
      expect(f.missing).toEqual({ joinedMidStream: true, reason: "joined the connection mid-stream" });
    }
  });

  test("pipelined requests pair with responses in order", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 3, pid: 1 });
    const reqs = ["/1", "/2", "/3"].map((p) => `GET ${p} HTTP/1.1\r\nHost: h\r\n\r\n`).join("");
    const ress = ["one", "two", "three"].map((b) => `HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`).join("");
    feed(pipeline, [c.open(), c.data(0, reqs), c.data(1, ress), c.close()]);
    expect(json().map((f) => [f.request.path, Buffer.from(f.response.body, "base64").toString()])).toEqual([
      ["/1", "one"],
      ["/2", "two"],
      ["/3", "three"],
    ]);
  });

  test("events out of order inside a batch are put back in order", () => {
    const { pipeline, json, flows } = setup();
    const c = connectionWriter({ connId: 3, pid: 1 });
    const open = c.open();
    const a = c.data(0, REQ.slice(0, 10));
    const b = c.data(0, REQ.slice(10));
    const r = c.data(1, RES);
    feed(pipeline, [open, b, a, r, c.close()]);
    expect(flows).toHaveLength(1);
    expect(json()[0].missing).toBeUndefined();
    expect(pipeline.connections.stats.lostBytes).toBe(0);
  });

  test("bytes lost inside a response body are reported, the flow is kept", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 4, pid: 1 });
    const head = "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n";
    const recs = [c.open(), c.data(0, REQ), c.data(1, head + "0123456789")];
    c.lose(1, 10);
    recs.push(c.data(1, "abcdefghij"), c.data(0, REQ), c.data(1, RES), c.close());
    feed(pipeline, recs);
    const [first, second] = json();
    expect(first.response.bodySize).toBe("30");
    expect(first.response.bodyTruncated).toBe(true);
    expect(first.missing.lostBytes).toBe("10");
    expect(first.missing.responseIncomplete).toBe(true);
    // The next exchange on the connection is whole again.
    expect(Buffer.from(second.response.body, "base64").toString()).toBe("hello");
    expect(second.missing).toBeUndefined();
  });

  test("bytes lost at the end of a connection are found from the close event's positions", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 4, pid: 1 });
    const recs = [c.open(), c.data(0, REQ), c.data(1, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789")];
    c.lose(1, 10);
    recs.push(c.close());
    feed(pipeline, recs);
    const [f] = json();
    expect(f.response.bodyTruncated).toBe(true);
    expect(f.missing.lostBytes).toBe("10");
  });

  test("a request without a response is emitted when the connection closes", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 5, pid: 1 });
    feed(pipeline, [c.open(), c.data(0, REQ), c.close()]);
    const [f] = json();
    expect(f.request.path).toBe("/a?b=c");
    expect(f.response).toBeUndefined();
    expect(f.missing).toEqual({ noResponse: true, reason: "no response" });
  });

  test("sendfile bytes are counted as unseen, not lost", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 6, pid: 1, origin: 1 });
    feed(pipeline, [c.open(), c.data(1, REQ), c.data(0, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 100), c.close()]);
    const [f] = json();
    expect(f.response.bodySize).toBe("100");
    expect(f.response.bodyTruncated).toBe(true);
    expect(f.missing.unseenBodyBytes).toBe("100");
    expect(f.missing.lostBytes).toBeUndefined();
  });

  test("a process exit ends its connections and tells the kernel to forget them", () => {
    const { pipeline, json, forgotten } = setup();
    const c = connectionWriter({ connId: 8, pid: 77, fd: 12 });
    feed(pipeline, [c.open(), c.data(0, REQ), procExitRecord(77, 5_000_000)]);
    expect(json()).toHaveLength(1);
    expect(forgotten).toEqual([[77, 12]]);
    expect(pipeline.connections.stats.connections).toBe(0);
  });

  test("data for a connection never announced is counted, not guessed", () => {
    const { pipeline, flows } = setup();
    feed(pipeline, [dataRecord(99, 1, 0, 0, new TextEncoder().encode(REQ), 1)]);
    expect(flows).toHaveLength(0);
    expect(pipeline.connections.stats.orphanEvents).toBe(1);
  });

  test("a truncated record is counted as undecodable", () => {
    const { pipeline } = setup();
    const r = dataRecord(1, 1, 0, 0, new TextEncoder().encode(REQ), 1);
    pipeline.record(r, new DataView(r.buffer), 0, 60);
    expect(pipeline.stats.undecodable).toBe(1);
  });
});

describe("TLS connections", () => {
  test("plaintext from OpenSSL: tls and the library on the connection, every other field as for plaintext", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 9, pid: 42, comm: "curl", origin: 2, connClass: 3, tlsLib: 2, local: ["127.0.0.1", 50000], remote: ["127.0.0.1", 8443] });
    feed(pipeline, [c.open(), c.data(0, REQ), c.data(1, RES), c.close()]);
    const [f] = json();
    expect(f.connection).toEqual({
      id: "9",
      role: "ROLE_CLIENT",
      source: { ip: "127.0.0.1", port: 50000 },
      destination: { ip: "127.0.0.1", port: 8443 },
      process: { pid: 42, comm: "curl" },
      tls: true,
      tlsLibrary: "OpenSSL 3.0.19",
    });
    expect(f.request.path).toBe("/a?b=c");
    expect(Buffer.from(f.response.body, "base64").toString()).toBe("hello");
    expect(f.missing).toBeUndefined();
  });

  test("socket unknown, SSL object seen from its creation: no endpoints, side from the first bytes, not joined mid-stream", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 10, pid: 43, fd: -1, comm: "node", origin: 3, connClass: 3, tlsLib: 2, unknownSocket: true });
    feed(pipeline, [c.open(), c.data(1, REQ), c.data(0, RES), c.close()]);
    const [f] = json();
    expect(f.connection).toEqual({ id: "10", role: "ROLE_SERVER", process: { pid: 43, comm: "node" }, tls: true, tlsLibrary: "OpenSSL 3.0.19" });
    expect(f.missing).toBeUndefined();
  });

  test("socket unknown, SSL object found in use: joined mid-stream", () => {
    const { pipeline, json } = setup();
    const c = connectionWriter({ connId: 11, pid: 44, fd: -1, comm: "node", origin: 0, connClass: 3, tlsLib: 2, unknownSocket: true });
    feed(pipeline, [c.open(), c.data(0, REQ), c.data(1, RES), c.close()]);
    expect(json()[0].missing).toEqual({ joinedMidStream: true, reason: "joined the connection mid-stream" });
  });

  test("lib-open and exec records reach the TLS library finder", () => {
    const { pipeline, libOpens, execs } = setup();
    feed(pipeline, [libOpenRecord(50, 3, "/opt/ssl/libssl.so.3", 1)]);
    expect(libOpens).toEqual([[50, "/opt/ssl/libssl.so.3", 3]]);
    expect(execs).toEqual([]);
  });
});
