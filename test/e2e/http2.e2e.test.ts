// HTTP/2 end to end under the real dist/tapwire: curl against nghttpd (Debian's nghttp2) over
// TLS and with prior knowledge, node's http2 server and client, h2load with thousands of
// streams, and a connection opened before tapwire started. Every flow field by field.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { PEERS, freePort, fromB64, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type Peer, NO_DROPS_END } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";

const CURL = "/usr/bin/curl";
const NGHTTPD = "/usr/sbin/nghttpd";
const H2LOAD = "/usr/bin/h2load";
const NGHTTPX = "/usr/sbin/nghttpx";
const NODE = "/usr/bin/node";
const NODE_EXE = realpathSync(NODE);
let cert: Cert;
let docroot: string;
let curlVersion = "";
const PAGE = "hello over h2\n".repeat(100); // 1400 bytes

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  docroot = mkdtempSync(`${tmpdir()}/tapwire-h2-`);
  writeFileSync(`${docroot}/page.txt`, PAGE);
  writeFileSync(`${docroot}/small.txt`, "ok\n");
  curlVersion = /^curl (\S+)/.exec(new TextDecoder().decode((await run([CURL, "--version"])).stdout))![1]!;
});

const isClient = (f: JsonFlow) => f.connection.role === "ROLE_CLIENT";
const isServer = (f: JsonFlow) => f.connection.role === "ROLE_SERVER";
const names = (headers: { name: string }[]) => headers.map((h) => h.name);
const value = (headers: { name: string; value: string }[], name: string) => headers.find((h) => h.name === name)?.value;

function parentPid(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]!.split(" ")[1]);
}

async function startNghttpd(port: number, tls: boolean): Promise<Peer> {
  const args = tls ? [NGHTTPD, "-d", docroot, "--address=127.0.0.1", String(port), cert.key, cert.cert] : [NGHTTPD, "--no-tls", "-d", docroot, "--address=127.0.0.1", String(port)];
  return startServer(args, "127.0.0.1", port);
}

/** The fields every HTTP/2 flow of a curl GET of `path` must have. */
function expectCurlGet(f: JsonFlow, e: { role: string; pid: number; comm: string; exe: string; port: number; clientPort: number; tls: boolean; path: string; body: string; streamId: number }) {
  expect(f.protocol).toBe("PROTOCOL_HTTP2");
  expect(f.connection.role).toBe(e.role);
  expect(f.connection.process).toEqual({ pid: e.pid, comm: e.comm, exe: e.exe });
  expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: e.clientPort });
  expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: e.port });
  expect(f.connection.tls ?? false).toBe(e.tls);
  if (e.tls) expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\./);
  expect(f.http2).toEqual({ streamId: e.streamId });
  const req = f.request;
  expect(req.method).toBe("GET");
  expect(req.path).toBe(e.path);
  expect(req.authority).toBe(`127.0.0.1:${e.port}`);
  expect(req.version).toBe("HTTP/2");
  expect(req.headers).toEqual([
    { name: ":method", value: "GET" },
    { name: ":path", value: e.path },
    { name: ":scheme", value: e.tls ? "https" : "http" },
    { name: ":authority", value: `127.0.0.1:${e.port}` },
    { name: "user-agent", value: `curl/${curlVersion}` },
    { name: "accept", value: "*/*" },
  ]);
  expect(req.body).toBeUndefined();
  expect(req.bodySize ?? "0").toBe("0");
  const res = f.response;
  expect(res.status).toBe(200);
  expect(res.version).toBe("HTTP/2");
  expect(names(res.headers)).toEqual([":status", "server", "cache-control", "date", "content-length", "last-modified", "content-type"]);
  expect(value(res.headers, "content-type")).toBe("text/plain");
  expect(value(res.headers, "content-length")).toBe(String(e.body.length));
  expect(value(res.headers, "server")).toMatch(/^nghttpd nghttp2\//);
  expect(fromB64(res.body).toString()).toBe(e.body);
  expect(res.bodySize).toBe(String(e.body.length));
  expect(f.missing).toBeUndefined();
}

describe("curl and nghttpd", () => {
  // curl 7.88 fails a second request on one h2c connection ("Error in the HTTP2 framing
  // layer", with or without tapwire): the cleartext case makes one.
  for (const tls of [true, false]) {
    const urls = tls ? ["/page.txt", "/small.txt?x=1"] : ["/page.txt"];
    test(tls ? "curl --http2 over TLS (ALPN h2): two requests on one connection, both sides" : "curl --http2-prior-knowledge (h2c), both sides", async () => {
      const port = await freePort();
      const tapwire = await startTapwire(["--port", String(port)]);
      const server = await startNghttpd(port, tls);
      try {
        const scheme = tls ? "https" : "http";
        const r = await run([
          CURL, "-sS", tls ? "--http2" : "--http2-prior-knowledge", ...(tls ? ["--cacert", cert.cert] : []),
          ...urls.flatMap(() => ["-o", "/dev/null"]), "-w", "%{local_port} %{http_version}\\n",
          ...urls.map((u) => `${scheme}://127.0.0.1:${port}${u}`),
        ]);
        expect(r.exitCode).toBe(0);
        const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
        expect(lines.map((l) => l.split(" ")[1])).toEqual(urls.map(() => "2"));
        const clientPort = Number(lines[0]!.split(" ")[0]);
        for (const l of lines) expect(Number(l.split(" ")[0])).toBe(clientPort); // one connection
        const flows = await tapwire.waitForFlows(() => true, 2 * urls.length);
        const common = { port, clientPort, tls };
        const curlSide = { role: "ROLE_CLIENT", pid: r.pid, comm: "curl", exe: CURL };
        const serverSide = { role: "ROLE_SERVER", pid: server.proc.pid, comm: "nghttpd", exe: NGHTTPD };
        for (const [side, pick] of [[curlSide, isClient], [serverSide, isServer]] as const) {
          const mine = flows.filter(pick).sort((a, b) => a.http2.streamId - b.http2.streamId);
          expect(mine.length).toBe(urls.length);
          expectCurlGet(mine[0], { ...common, ...side, path: "/page.txt", body: PAGE, streamId: 1 });
          if (tls) expectCurlGet(mine[1], { ...common, ...side, path: "/small.txt?x=1", body: "ok\n", streamId: 3 });
        }
      } finally {
        await tapwire.stop();
        await server.stop();
      }
    }, 60_000);
  }
});

describe("node's http2", () => {
  test("node client and node server (h2c): GET, POST with a body and trailers, both sides", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startServer([NODE, `${PEERS}/node_h2.mjs`, "server", String(port)], "127.0.0.1", port);
    const client = startPeer([NODE, `${PEERS}/node_h2.mjs`, "client", String(port)]);
    try {
      await client.waitLine((l) => l.startsWith("200 ping"));
      expect(client.lines.slice(0, 2)).toEqual(["200 hello from node h2", "200 ping from node"]);
      const flows = await tapwire.waitForFlows(() => true, 4);
      for (const [pick, pid] of [[isClient, client.proc.pid], [isServer, server.proc.pid]] as const) {
        const mine = flows.filter(pick).sort((a, b) => a.http2.streamId - b.http2.streamId);
        expect(mine.length).toBe(2);
        for (const f of mine) {
          expect(f.protocol).toBe("PROTOCOL_HTTP2");
          expect(f.connection.process).toEqual({ pid, comm: "node", exe: NODE_EXE });
          expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
          expect(f.missing).toBeUndefined();
        }
        const [get, post] = mine;
        expect(get.http2).toEqual({ streamId: 1 });
        expect(get.request.method).toBe("GET");
        expect(get.request.path).toBe("/hello");
        expect(get.request.authority).toBe(`127.0.0.1:${port}`);
        expect(value(get.request.headers, "x-client")).toBe("node");
        expect(get.response.status).toBe(200);
        expect(value(get.response.headers, "content-type")).toBe("text/plain");
        expect(fromB64(get.response.body).toString()).toBe("hello from node h2\n");
        expect(post.http2).toEqual({ streamId: 3 });
        expect(post.request.method).toBe("POST");
        expect(post.request.path).toBe("/echo");
        expect(fromB64(post.request.body).toString()).toBe("ping from node");
        expect(post.request.bodySize).toBe("14");
        expect(post.response.status).toBe(200);
        expect(value(post.response.headers, "x-echo-length")).toBe("14");
        expect(fromB64(post.response.body).toString()).toBe("ping from node");
        expect(post.response.trailers).toEqual([{ name: "x-done", value: "yes" }]);
      }
    } finally {
      await client.stop();
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);

  test("curl --http2-prior-knowledge against node's http2 server: a POST with its body, and the response trailers", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startServer([NODE, `${PEERS}/node_h2.mjs`, "server", String(port)], "127.0.0.1", port);
    try {
      const r = await run([CURL, "-sS", "--http2-prior-knowledge", "-H", "Content-Type: text/plain", "--data-binary", "curl to node", `http://127.0.0.1:${port}/echo`]);
      expect(new TextDecoder().decode(r.stdout)).toBe("curl to node");
      const flows = await tapwire.waitForFlows(() => true, 2);
      for (const [pick, pid, exe] of [[isClient, r.pid, CURL], [isServer, server.proc.pid, NODE_EXE]] as const) {
        const f = flows.find(pick);
        expect(f.protocol).toBe("PROTOCOL_HTTP2");
        expect(f.connection.process).toEqual({ pid, comm: exe.split("/").at(-1), exe });
        expect(f.http2).toEqual({ streamId: 1 });
        expect(f.request.headers).toEqual([
          { name: ":method", value: "POST" },
          { name: ":path", value: "/echo" },
          { name: ":scheme", value: "http" },
          { name: ":authority", value: `127.0.0.1:${port}` },
          { name: "user-agent", value: `curl/${curlVersion}` },
          { name: "accept", value: "*/*" },
          { name: "content-type", value: "text/plain" },
          { name: "content-length", value: "12" },
        ]);
        expect(fromB64(f.request.body).toString()).toBe("curl to node");
        expect(f.response.status).toBe(200);
        expect(value(f.response.headers, "x-echo-length")).toBe("12");
        expect(fromB64(f.response.body).toString()).toBe("curl to node");
        expect(f.response.trailers).toEqual([{ name: "x-done", value: "yes" }]);
        expect(f.missing).toBeUndefined();
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);

  test("a connection opened before tapwire: later streams are captured, fields from compression state never seen are marked unknown", async () => {
    const port = await freePort();
    const server = await startServer([NODE, `${PEERS}/node_h2.mjs`, "server", String(port)], "127.0.0.1", port);
    const client = startPeer([NODE, `${PEERS}/node_h2.mjs`, "client", String(port)]);
    await client.waitLine((l) => l.startsWith("200 ping"));
    const tapwire = await startTapwire(["--port", String(port)]);
    try {
      client.send("1");
      await client.waitLine((l) => l === "200 hello from node h2" && client.lines.length >= 3);
      client.send("2");
      await waitFor("the fourth response", () => client.lines.length >= 4);
      const flows = await tapwire.waitForFlows(() => true, 4);
      for (const [pick, pid] of [[isClient, client.proc.pid], [isServer, server.proc.pid]] as const) {
        const mine = flows.filter(pick).sort((a, b) => a.http2.streamId - b.http2.streamId);
        expect(mine.map((f) => f.http2.streamId)).toEqual([5, 7]);
        for (const [i, f] of mine.entries()) {
          expect(f.protocol).toBe("PROTOCOL_HTTP2");
          expect(f.connection.process.pid).toBe(pid);
          expect(f.connection.role).toBe(pick === isClient ? "ROLE_CLIENT" : "ROLE_SERVER");
          expect(f.request.method).toBe("GET");
          expect(f.request.path).toBe(`/hello?n=${i + 1}`);
          expect(f.response.status).toBe(200);
          expect(fromB64(f.response.body).toString()).toBe("hello from node h2\n");
          // Whatever was decoded is what was sent; what referred to the unseen table is
          // marked, with nothing made up in its place.
          for (const h of [...f.request.headers, ...f.response.headers]) {
            if (h.nameUnknown) expect(h.name ?? "").toBe("");
            if (h.valueUnknown) expect(h.value ?? "").toBe("");
          }
          const known = f.request.headers.filter((h: JsonFlow) => !h.nameUnknown && !h.valueUnknown);
          for (const h of known) expect(["GET", `/hello?n=${i + 1}`, "http", `127.0.0.1:${port}`, "node"]).toContain(h.value);
          expect(f.missing.joinedMidStream).toBe(true);
        }
        // The first stream after joining refers to entries made before: some are unknown.
        const unknown = mine[0].request.headers.filter((h: JsonFlow) => h.nameUnknown || h.valueUnknown);
        expect(unknown.length).toBeGreaterThan(0);
        expect(mine[0].missing.reason).toContain("header fields refer to compression state sent before tapwire joined the connection");
      }
    } finally {
      await client.stop();
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("h2load", () => {
  test("2,000 requests over 4 connections, 10 streams at a time: every stream accounted for on both sides", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startNghttpd(port, false);
    try {
      const n = 2000;
      const r = await run([H2LOAD, "-n", String(n), "-c", "4", "-m", "10", `http://127.0.0.1:${port}/small.txt`]);
      expect(r.exitCode).toBe(0);
      expect(new TextDecoder().decode(r.stdout)).toContain(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded, 0 failed, 0 errored`);
      const flows = await tapwire.waitForFlows(() => true, 2 * n, 60_000);
      expect(flows.length).toBe(2 * n);
      for (const pick of [isClient, isServer]) {
        const mine = flows.filter(pick);
        expect(mine.length).toBe(n);
        // Four connections, each with streams 1, 3, 5, ... 999.
        const byConn = new Map<string, number[]>();
        for (const f of mine) {
          expect(f.protocol).toBe("PROTOCOL_HTTP2");
          expect(f.request.path).toBe("/small.txt");
          expect(f.response.status).toBe(200);
          expect(fromB64(f.response.body).toString()).toBe("ok\n");
          expect(f.missing).toBeUndefined();
          byConn.set(f.connection.id, [...(byConn.get(f.connection.id) ?? []), f.http2.streamId]);
        }
        expect(byConn.size).toBe(4);
        for (const ids of byConn.values()) expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: n / 4 }, (_, i) => 2 * i + 1));
      }
      expect(await tapwire.stop()).toMatch(new RegExp(NO_DROPS_END));
    } finally {
      if (tapwire.proc.exitCode === null) await tapwire.stop();
      await server.stop();
    }
  }, 120_000);
});

describe("HTTP/1.1 Upgrade: h2c", () => {
  test("curl --http2 in cleartext upgrades through nghttpx; the request and its HTTP/2 response are one flow on stream 1", async () => {
    const port = await freePort();
    const backend = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const origin = await startServer(["/usr/bin/python3", "-m", "http.server", String(backend), "--bind", "127.0.0.1", "-d", docroot], "127.0.0.1", backend);
    const proxy = await startServer([NGHTTPX, `-f127.0.0.1,${port};no-tls`, `-b127.0.0.1,${backend}`, "--workers=1", "--no-ocsp", "--errorlog-file=/dev/null"], "127.0.0.1", port);
    try {
      const r = await run([CURL, "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version}", `http://127.0.0.1:${port}/page.txt`]);
      expect(new TextDecoder().decode(r.stdout)).toBe("2");
      const flows = await tapwire.waitForFlows(() => true, 2);
      // nghttpx serves from a worker process it forks.
      const worker = flows.find(isServer).connection.process.pid;
      expect(parentPid(worker)).toBe(proxy.proc.pid);
      for (const [pick, pid, exe] of [[isClient, r.pid, CURL], [isServer, worker, NGHTTPX]] as const) {
        const f = flows.find(pick);
        expect(f.protocol).toBe("PROTOCOL_HTTP2");
        expect(f.connection.process).toEqual({ pid, comm: exe.split("/").at(-1), exe });
        expect(f.http2).toEqual({ streamId: 1 });
        expect(f.request.method).toBe("GET");
        expect(f.request.path).toBe("/page.txt");
        expect(f.request.version).toBe("HTTP/1.1");
        expect(f.request.authority).toBe(`127.0.0.1:${port}`);
        expect(value(f.request.headers, "Upgrade")).toBe("h2c");
        expect(f.response.version).toBe("HTTP/2");
        expect(f.response.status).toBe(200);
        expect(f.response.informationalStatuses).toEqual([101]);
        expect(fromB64(f.response.body).toString()).toBe(PAGE);
        expect(f.missing).toBeUndefined();
      }
    } finally {
      await tapwire.stop();
      await proxy.stop();
      await origin.stop();
    }
  }, 60_000);
});
