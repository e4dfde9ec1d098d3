// Plaintext HTTP/1.x end to end: real curl and Python peers on loopback, real BPF, the real
// dist/tapwire; every field of every flow checked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import {
  PEERS,
  PYTHON,
  b64,
  freePort,
  fromB64,
  requireRoot,
  run,
  startPeer,
  startServer,
  startTapwire,
  type JsonFlow,
  type Peer,
  type Tapwire, NO_DROPS_END } from "./harness.ts";

const CURL = "/usr/bin/curl";
const PYTHON_EXE = realpathSync(PYTHON);
let curlVersion = "";

beforeAll(async () => {
  requireRoot();
  const v = await run([CURL, "--version"]);
  curlVersion = /^curl (\S+)/.exec(new TextDecoder().decode(v.stdout))![1];
});

const isClient = (f: JsonFlow) => f.connection.role === "ROLE_CLIENT";
const isServer = (f: JsonFlow) => f.connection.role === "ROLE_SERVER";
const names = (headers: { name: string }[]) => headers.map((h) => h.name);
const value = (headers: { name: string; value: string }[], name: string) => headers.find((h) => h.name === name)?.value;

/** curl's own view of the connection: local port and the body it received. */
async function curl(args: string[]) {
  const bodyFile = `${mkdtempSync(`${tmpdir()}/tapwire-curl-`)}/body`;
  const r = await run([CURL, "-sS", "-o", bodyFile, "-w", "%{local_port}", ...args]);
  if (r.exitCode !== 0) throw new Error(`curl failed: ${r.stderr}`);
  return { pid: r.pid, localPort: Number(new TextDecoder().decode(r.stdout)), body: new Uint8Array(await Bun.file(bodyFile).arrayBuffer()) };
}

function expectTimes(f: JsonFlow, since: number) {
  const start = Date.parse(f.startTime);
  const end = Date.parse(f.endTime);
  expect(start).toBeGreaterThanOrEqual(since - 5);
  expect(end).toBeGreaterThanOrEqual(start);
  expect(end).toBeLessThanOrEqual(Date.now() + 5);
}

describe("curl against python3 -m http.server", () => {
  let dir: string;
  let port: number;
  let server: Peer;
  let tapwire: Tapwire;
  const content = "tapwire test file\n".repeat(40);

  beforeAll(async () => {
    dir = mkdtempSync(`${tmpdir()}/tapwire-www-`);
    writeFileSync(`${dir}/hello.txt`, content);
    port = await freePort();
    server = await startServer([PYTHON, "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], "127.0.0.1", port);
    tapwire = await startTapwire(["--port", String(port)]);
  });
  afterAll(async () => {
    await tapwire?.stop();
    await server?.stop();
  });

  test("both sides' flows, field by field", async () => {
    const since = Date.now();
    const c = await curl([`http://127.0.0.1:${port}/hello.txt?x=1&y=two`]);
    expect(new TextDecoder().decode(c.body)).toBe(content);
    const flows = await tapwire.waitForFlows(() => true, 2);
    expect(flows).toHaveLength(2);
    const client = flows.find(isClient)!;
    const srv = flows.find(isServer)!;
    expect(client).toBeDefined();
    expect(srv).toBeDefined();

    for (const f of [client, srv]) {
      expect(f.id).toMatch(/^[0-9a-f]{8}-\d+$/);
      expect(f.protocol).toBe("PROTOCOL_HTTP1");
      expectTimes(f, since);
      expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: c.localPort });
      expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
      expect(f.connection.tls).toBeUndefined();
      expect(f.request).toEqual({
        method: "GET",
        path: "/hello.txt?x=1&y=two",
        authority: `127.0.0.1:${port}`,
        version: "HTTP/1.1",
        headers: [
          { name: "Host", value: `127.0.0.1:${port}` },
          { name: "User-Agent", value: `curl/${curlVersion}` },
          { name: "Accept", value: "*/*" },
        ],
      });
      const res = f.response;
      expect(res.status).toBe(200);
      expect(res.reason).toBe("OK");
      expect(res.version).toBe("HTTP/1.0");
      expect(names(res.headers)).toEqual(["Server", "Date", "Content-type", "Content-Length", "Last-Modified"]);
      expect(value(res.headers, "Server")).toMatch(/^SimpleHTTP\/[\d.]+ Python\/3\.\d+\.\d+$/);
      expect(value(res.headers, "Content-type")).toBe("text/plain");
      expect(value(res.headers, "Content-Length")).toBe(String(content.length));
      expect(fromB64(res.body).toString()).toBe(content);
      expect(res.bodySize).toBe(String(content.length));
      expect(res.bodyTruncated).toBeUndefined();
      expect(f.missing).toBeUndefined();
    }
    expect(client.connection.role).toBe("ROLE_CLIENT");
    expect(client.connection.process).toEqual({ pid: c.pid, comm: "curl", exe: CURL });
    expect(srv.connection.role).toBe("ROLE_SERVER");
    expect(srv.connection.process).toEqual({ pid: server.proc.pid, comm: "python3", exe: PYTHON_EXE });
    expect(client.connection.id).not.toBe(srv.connection.id);
  });

  test("a 404 is a flow too", async () => {
    const before = tapwire.flows.length;
    await run([CURL, "-s", "-o", "/dev/null", `http://127.0.0.1:${port}/missing`]);
    const flows = await tapwire.waitForFlows((f) => f.request?.path === "/missing", 2);
    for (const f of flows) {
      expect(f.response.status).toBe(404);
      expect(f.response.reason).toBe("File not found");
      expect(fromB64(f.response.body).toString()).toContain("404");
    }
    expect(tapwire.flows.length).toBe(before + 2);
  });
});

describe("the echo server: bodies, chunked, gzip, keep-alive, 1 MiB", () => {
  let port: number;
  let server: Peer;
  let tapwire: Tapwire;

  beforeAll(async () => {
    port = await freePort();
    server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port)], "127.0.0.1", port);
    tapwire = await startTapwire(["--port", String(port)]);
  });
  afterAll(async () => {
    await tapwire?.stop();
    await server?.stop();
  });

  test("a POST body and its echo, on both sides", async () => {
    const body = new Uint8Array(300 * 1024).map((_, i) => (i * 7 + 3) % 256);
    const file = `${mkdtempSync(`${tmpdir()}/tapwire-post-`)}/body`;
    writeFileSync(file, body);
    const c = await curl(["-H", "Content-Type: application/x-test", "--data-binary", `@${file}`, `http://127.0.0.1:${port}/echo`]);
    expect(c.body).toEqual(body);
    const flows = await tapwire.waitForFlows((f) => f.request?.path === "/echo", 2);
    for (const f of flows) {
      expect(f.request.method).toBe("POST");
      expect(names(f.request.headers)).toEqual(["Host", "User-Agent", "Accept", "Content-Type", "Content-Length"]);
      expect(value(f.request.headers, "Content-Type")).toBe("application/x-test");
      expect(f.request.body).toBe(b64(body));
      expect(f.request.bodySize).toBe(String(body.length));
      expect(f.response.status).toBe(200);
      expect(f.response.version).toBe("HTTP/1.1");
      expect(f.response.body).toBe(b64(body));
      expect(f.response.bodySize).toBe(String(body.length));
      expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: c.localPort });
      expect(f.missing).toBeUndefined();
    }
    expect(flows.find(isClient).connection.process.pid).toBe(c.pid);
    expect(flows.find(isServer).connection.process.pid).toBe(server.proc.pid);
  });

  test("a chunked response is de-chunked, its trailer kept", async () => {
    const c = await curl([`http://127.0.0.1:${port}/chunked?n=5`]);
    const expected = [0, 1, 2, 3, 4].map((i) => `chunk-${i}\n`).join("");
    expect(new TextDecoder().decode(c.body)).toBe(expected);
    const flows = await tapwire.waitForFlows((f) => f.request?.path === "/chunked?n=5", 2);
    for (const f of flows) {
      expect(value(f.response.headers, "Transfer-Encoding")).toBe("chunked");
      expect(fromB64(f.response.body).toString()).toBe(expected);
      expect(f.response.bodySize).toBe(String(expected.length));
      expect(f.response.trailers).toEqual([{ name: "X-Checksum", value: "done" }]);
      expect(f.missing).toBeUndefined();
    }
  });

  test("a gzip response is decoded; its size is the size sent", async () => {
    const c = await curl([`http://127.0.0.1:${port}/gzip?size=5000`]); // curl does not decode without --compressed
    const flows = await tapwire.waitForFlows((f) => f.request?.path === "/gzip?size=5000", 2);
    const line = "tapwire sees every request and response.\n";
    const text = line.repeat(200).slice(0, 5000);
    for (const f of flows) {
      expect(value(f.response.headers, "Content-Encoding")).toBe("gzip");
      expect(fromB64(f.response.body).toString()).toBe(text);
      expect(f.response.bodyDecodedEncoding).toBe("gzip");
      expect(f.response.bodySize).toBe(String(c.body.length));
    }
    expect(gzipSync(text).length).toBeGreaterThan(0);
  });

  test("keep-alive: three requests on one connection, in order", async () => {
    const urls = ["a", "b", "c"].map((x) => `http://127.0.0.1:${port}/text?${x}`);
    const r = await run([CURL, "-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{local_port}\n", ...urls]);
    const ports = new TextDecoder().decode(r.stdout).trim().split("\n").map(Number);
    expect(new Set(ports).size).toBe(1); // curl reused its connection
    const flows = await tapwire.waitForFlows((f) => f.request?.path?.startsWith("/text?"), 6);
    for (const side of [isClient, isServer]) {
      const mine = flows.filter(side);
      expect(mine.map((f: JsonFlow) => f.request.path)).toEqual(["/text?a", "/text?b", "/text?c"]);
      expect(new Set(mine.map((f: JsonFlow) => f.connection.id)).size).toBe(1);
      for (const f of mine) {
        expect(f.connection.source.port).toBe(ports[0]);
        expect(fromB64(f.response.body).toString()).toBe("hello from tapwire's test server\n");
        expect(f.missing).toBeUndefined();
      }
      const starts = mine.map((f: JsonFlow) => Date.parse(f.startTime));
      expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    }
  });

  test("a 1 MiB response arrives whole", async () => {
    const size = 1024 * 1024;
    const c = await curl([`http://127.0.0.1:${port}/big?size=${size}`]);
    expect(c.body.length).toBe(size);
    const flows = await tapwire.waitForFlows((f) => f.request?.path === `/big?size=${size}`, 2);
    for (const f of flows) {
      const body = fromB64(f.response.body);
      expect(body.length).toBe(size);
      expect(body.equals(Buffer.from(c.body))).toBe(true);
      expect(f.response.bodySize).toBe(String(size));
      expect(f.response.bodyTruncated).toBeUndefined();
      expect(f.missing).toBeUndefined();
    }
  });
});

describe("IPv6 loopback", () => {
  test("curl to [::1] against a server bound to ::1", async () => {
    const port = await freePort();
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port), "::1"], "::1", port);
    const tapwire = await startTapwire(["--port", String(port)]);
    try {
      const c = await curl(["-g", `http://[::1]:${port}/text`]);
      const flows = await tapwire.waitForFlows(() => true, 2);
      for (const f of flows) {
        expect(f.connection.source).toEqual({ ip: "::1", port: c.localPort });
        expect(f.connection.destination).toEqual({ ip: "::1", port });
        expect(f.request.authority).toBe(`[::1]:${port}`);
        expect(f.response.status).toBe(200);
      }
      expect(flows.find(isClient).connection.process.pid).toBe(c.pid);
      expect(flows.find(isServer).connection.process.pid).toBe(server.proc.pid);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  });
});

describe("a connection opened before tapwire started", () => {
  test("its next request is captured on both sides", async () => {
    const port = await freePort();
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port)], "127.0.0.1", port);
    const client = startPeer([PYTHON, `${PEERS}/held_client.py`, "127.0.0.1", String(port), "/text"]);
    let tapwire: Tapwire | undefined;
    try {
      const localPort = Number((await client.waitLine((l) => l.startsWith("port "))).split(" ")[1]);
      client.send("first");
      await client.waitLine((l) => l.startsWith("done"));
      tapwire = await startTapwire(["--port", String(port)]);
      client.send("second");
      await waitDone(client, 2);
      const flows = await tapwire.waitForFlows(() => true, 2);
      expect(flows).toHaveLength(2);
      for (const f of flows) {
        expect(f.request.method).toBe("GET");
        expect(f.request.path).toBe("/text");
        expect(value(f.request.headers, "X-Request")).toBe("second");
        expect(f.response.status).toBe(200);
        expect(fromB64(f.response.body).toString()).toBe("hello from tapwire's test server\n");
        expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: localPort });
        expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
        expect(f.missing).toEqual({ joinedMidStream: true, reason: "joined the connection mid-stream" });
      }
      const c = flows.find(isClient);
      const s = flows.find(isServer);
      expect(c.connection.process).toEqual({ pid: client.proc.pid, comm: "python3", exe: PYTHON_EXE });
      expect(s.connection.process).toEqual({ pid: server.proc.pid, comm: "python3", exe: PYTHON_EXE });
    } finally {
      client.send("");
      await tapwire?.stop();
      await client.stop();
      await server.stop();
    }
  });
});

async function waitDone(peer: Peer, n: number) {
  const { waitFor } = await import("./harness.ts");
  await waitFor(`${n} responses`, () => peer.lines.filter((l) => l.startsWith("done")).length >= n);
}

describe("sustained load", () => {
  // Thousands of events make the ring reader and the parsers run as optimised code; a fault
  // there (or a lost event) shows up only under load like this.
  test("6000 POSTs over 6 keep-alive connections: every flow, both sides, clean exit", async () => {
    const port = await freePort();
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port)], "127.0.0.1", port);
    const tapwire = await startTapwire(["--port", String(port)]);
    const conns = 6;
    const perConn = 1000;
    try {
      const r = await run([PYTHON, `${PEERS}/load_client.py`, "127.0.0.1", String(port), String(conns), String(perConn)]);
      expect(new TextDecoder().decode(r.stdout).trim()).toBe(`ok ${conns * perConn}`);
      const flows = await tapwire.waitForFlows(() => true, 2 * conns * perConn, 30000);
      const summary = await tapwire.stop();
      expect(flows).toHaveLength(2 * conns * perConn);
      expect(summary).toMatch(new RegExp(`^tapwire: ${2 * conns * perConn} flows from \\d+ events; ${NO_DROPS_END}`));
      for (const side of [isClient, isServer]) {
        const seen = new Set<string>();
        for (const f of flows.filter(side)) {
          const [, c, r] = /^\/echo\?c=(\d+)&r=(\d+)$/.exec(f.request.path)!;
          const body = `${c}-${r}`;
          expect(f.request.method).toBe("POST");
          expect(fromB64(f.request.body).toString()).toBe(body);
          expect(f.response.status).toBe(200);
          expect(fromB64(f.response.body).toString()).toBe(body);
          expect(f.missing).toBeUndefined();
          seen.add(body);
        }
        expect(seen.size).toBe(conns * perConn);
      }
    } finally {
      if (tapwire.proc.exitCode === null) tapwire.proc.kill("SIGKILL");
      await server.stop();
    }
  }, 90000);
});
