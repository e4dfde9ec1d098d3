// HTTPS through OpenSSL end to end: curl, Python, Ruby, nginx and node (its own OpenSSL) on
// loopback under the real dist/tapwire; both sides of every exchange, field by field.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { realpathSync, writeFileSync, mkdirSync, copyFileSync, readFileSync } from "node:fs";
import {
  PEERS,
  PYTHON,
  freePort,
  fromB64,
  requireRoot,
  run,
  startPeer,
  startServer,
  startTapwire,
  waitFor,
  type JsonFlow,
  type Peer,
  type Tapwire,
} from "./harness.ts";
import { makeCert, startNginxTls, type Cert } from "./tls-setup.ts";

const CURL = "/usr/bin/curl";
const RUBY = "/usr/bin/ruby";
const NODE = "/usr/bin/node";
const PYTHON_EXE = realpathSync(PYTHON);
const RUBY_EXE = realpathSync(RUBY);
const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
let cert: Cert;
let curlVersion = "";

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  curlVersion = /^curl (\S+)/.exec(new TextDecoder().decode((await run([CURL, "--version"])).stdout))![1]!;
});

const isClient = (f: JsonFlow) => f.connection.role === "ROLE_CLIENT";
const isServer = (f: JsonFlow) => f.connection.role === "ROLE_SERVER";
const value = (headers: { name: string; value: string }[], name: string) => headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;

interface Expected {
  role: "ROLE_CLIENT" | "ROLE_SERVER";
  process: { pid: number; comm: string; exe: string };
  /** The client's port, when the test knows it. */
  clientPort?: number;
  serverPort: number;
  method: string;
  path: string;
  requestBody?: Uint8Array | string;
  status: number;
  reason: string;
  responseBody: Uint8Array | string;
}

/** Every field a user would check, for a TLS flow. */
function expectTlsFlow(f: JsonFlow, e: Expected) {
  expect(f.protocol).toBe("PROTOCOL_HTTP1");
  expect(f.connection.role).toBe(e.role);
  expect(f.connection.process).toEqual(e.process);
  expect(f.connection.tls).toBe(true);
  expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+/);
  expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: e.serverPort });
  expect(f.connection.source.ip).toBe("127.0.0.1");
  if (e.clientPort !== undefined) expect(f.connection.source.port).toBe(e.clientPort);
  expect(f.request.method).toBe(e.method);
  expect(f.request.path).toBe(e.path);
  expect(f.request.version).toBe("HTTP/1.1");
  const reqBody = Buffer.from(e.requestBody ?? "");
  expect(fromB64(f.request.body)).toEqual(reqBody);
  expect(f.request.bodySize ?? "0").toBe(String(reqBody.length));
  expect(f.response.status).toBe(e.status);
  expect(f.response.reason).toBe(e.reason);
  const resBody = Buffer.from(e.responseBody);
  expect(fromB64(f.response.body)).toEqual(resBody);
  expect(f.response.bodySize ?? "0").toBe(String(resBody.length));
  expect(f.missing).toBeUndefined();
  expect(Date.parse(f.endTime)).toBeGreaterThanOrEqual(Date.parse(f.startTime));
}

describe("curl and Python's ssl", () => {
  let port: number;
  let server: Peer;
  let tapwire: Tapwire;
  beforeAll(async () => {
    port = await freePort();
    server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    tapwire = await startTapwire(["--port", String(port)]);
  });
  afterAll(async () => {
    await tapwire?.stop();
    await server?.stop();
  });

  test("curl against a Python TLS server: both sides' flows, field by field", async () => {
    const r = await run([CURL, "-sS", "--cacert", cert.cert, "-o", "/dev/null", "-w", "%{local_port}", `https://127.0.0.1:${port}/text?q=1`]);
    expect(r.exitCode).toBe(0);
    const clientPort = Number(new TextDecoder().decode(r.stdout));
    const flows = await tapwire.waitForFlows((f) => f.request?.path === "/text?q=1", 2);
    expect(flows).toHaveLength(2);
    const common = { clientPort, serverPort: port, method: "GET", path: "/text?q=1", status: 200, reason: "OK", responseBody: "hello from tapwire's test server\n" };
    expectTlsFlow(flows.find(isClient), { ...common, role: "ROLE_CLIENT", process: { pid: r.pid, comm: "curl", exe: CURL } });
    expectTlsFlow(flows.find(isServer), { ...common, role: "ROLE_SERVER", process: { pid: server.proc.pid, comm: "python3", exe: PYTHON_EXE } });
    for (const f of flows) {
      expect(f.request.authority).toBe(`127.0.0.1:${port}`);
      expect(f.request.headers.map((h: { name: string }) => h.name)).toEqual(["Host", "User-Agent", "Accept"]);
      expect(value(f.request.headers, "User-Agent")).toBe(`curl/${curlVersion}`);
      expect(f.response.version).toBe("HTTP/1.1");
    }
  });

  test("a 256 KiB POST over TLS arrives whole on both sides", async () => {
    const body = new Uint8Array(256 * 1024).map((_, i) => (i * 7) % 256);
    const file = `${cert.dir}/post.bin`;
    writeFileSync(file, body);
    const r = await run([CURL, "-sS", "--cacert", cert.cert, "-o", "/dev/null", "--data-binary", `@${file}`, "-H", "Content-Type: application/octet-stream", `https://127.0.0.1:${port}/echo?big=1`]);
    expect(r.exitCode).toBe(0);
    const flows = await tapwire.waitForFlows((f) => f.request?.path === "/echo?big=1", 2);
    const common = { serverPort: port, method: "POST", path: "/echo?big=1", requestBody: body, status: 200, reason: "OK", responseBody: body };
    expectTlsFlow(flows.find(isClient), { ...common, role: "ROLE_CLIENT", process: { pid: r.pid, comm: "curl", exe: CURL } });
    expectTlsFlow(flows.find(isServer), { ...common, role: "ROLE_SERVER", process: { pid: server.proc.pid, comm: "python3", exe: PYTHON_EXE } });
  });

  test("20 short-lived curl runs in a row: 20 flows on each side", async () => {
    const pids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await run([CURL, "-sS", "--cacert", cert.cert, "-o", "/dev/null", `https://127.0.0.1:${port}/text?run=${i}`]);
      expect(r.exitCode).toBe(0);
      pids.push(r.pid);
    }
    const flows = await tapwire.waitForFlows((f) => /^\/text\?run=\d+$/.test(f.request?.path ?? ""), 40);
    expect(flows).toHaveLength(40);
    for (let i = 0; i < 20; i++) {
      const mine = flows.filter((f) => f.request.path === `/text?run=${i}`);
      const common = { serverPort: port, method: "GET", path: `/text?run=${i}`, status: 200, reason: "OK", responseBody: "hello from tapwire's test server\n" };
      expectTlsFlow(mine.find(isClient), { ...common, role: "ROLE_CLIENT", process: { pid: pids[i]!, comm: "curl", exe: CURL } });
      expectTlsFlow(mine.find(isServer), { ...common, role: "ROLE_SERVER", process: { pid: server.proc.pid, comm: "python3", exe: PYTHON_EXE } });
    }
  });

  test("a Python http.client over TLS: GET and a POST on one connection", async () => {
    const client = startPeer([PYTHON, `${PEERS}/https_client.py`, String(port), cert.cert, "5000"]);
    const clientPort = Number((await client.waitLine((l) => l.startsWith("port "))).split(" ")[1]);
    await waitFor("two responses", () => client.lines.length >= 3);
    expect(client.lines.slice(1)).toEqual(["200 33", "200 5000"]);
    const flows = await tapwire.waitForFlows((f) => f.connection.source?.port === clientPort, 4);
    const pattern = new Uint8Array(5000).map((_, i) => i % 251);
    for (const [role, proc] of [["ROLE_CLIENT", { pid: client.proc.pid, comm: "python3", exe: PYTHON_EXE }], ["ROLE_SERVER", { pid: server.proc.pid, comm: "python3", exe: PYTHON_EXE }]] as const) {
      const mine = flows.filter((f) => f.connection.role === role);
      expect(mine.map((f) => f.request.method)).toEqual(["GET", "POST"]);
      expectTlsFlow(mine[0], { role, process: proc, clientPort, serverPort: port, method: "GET", path: "/text", status: 200, reason: "OK", responseBody: "hello from tapwire's test server\n" });
      expectTlsFlow(mine[1], { role, process: proc, clientPort, serverPort: port, method: "POST", path: "/echo", requestBody: pattern, status: 200, reason: "OK", responseBody: pattern });
      expect(value(mine[0].request.headers, "X-Client")).toBe("python");
    }
    await client.stop();
  });
});

describe("Ruby: Net::HTTP against OpenSSL::SSL::SSLServer", () => {
  test("both sides' flows, field by field", async () => {
    const port = await freePort();
    const server = await startServer([RUBY, `${PEERS}/ruby_https.rb`, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
    const tapwire = await startTapwire(["--port", String(port)]);
    try {
      const client = startPeer([RUBY, `${PEERS}/ruby_https.rb`, "client", String(port), cert.cert]);
      const clientPort = Number((await client.waitLine((l) => l.startsWith("port "))).split(" ")[1]);
      await waitFor("two responses", () => client.lines.length >= 3);
      expect(client.lines.slice(1)).toEqual(["200 hello from ruby", "200 ruby says hi"]);
      const flows = await tapwire.waitForFlows(() => true, 4);
      for (const [role, proc] of [["ROLE_CLIENT", { pid: client.proc.pid, comm: "ruby", exe: RUBY_EXE }], ["ROLE_SERVER", { pid: server.proc.pid, comm: "ruby", exe: RUBY_EXE }]] as const) {
        const mine = flows.filter((f) => f.connection.role === role);
        expect(mine).toHaveLength(2);
        expectTlsFlow(mine[0], { role, process: proc, clientPort, serverPort: port, method: "GET", path: "/text", status: 200, reason: "OK", responseBody: "hello from ruby\n" });
        expectTlsFlow(mine[1], { role, process: proc, clientPort, serverPort: port, method: "POST", path: "/echo", requestBody: "ruby says hi", status: 200, reason: "OK", responseBody: "ruby says hi" });
      }
      await client.stop();
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  });
});

describe("openssl s_server -www: a server that reads and writes through OpenSSL's SSL BIO", () => {
  test("both sides, the body as curl received it", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    let server: Peer | undefined;
    try {
      // Started after tapwire, as a user would. Its BIO calls reach the same internal
      // functions SSL_read and SSL_write use, where tapwire's probes are.
      server = await startServer(["/usr/bin/openssl", "s_server", "-www", "-quiet", "-accept", String(port), "-cert", cert.cert, "-key", cert.key], "127.0.0.1", port);
      const out = `${cert.dir}/s_server.html`;
      const r = await run([CURL, "-sS", "--cacert", cert.cert, "-o", out, "-w", "%{local_port}", `https://127.0.0.1:${port}/status`]);
      expect(r.exitCode).toBe(0);
      const clientPort = Number(new TextDecoder().decode(r.stdout));
      const page = readFileSync(out);
      expect(page.toString()).toStartWith("<HTML><BODY");
      const flows = await tapwire.waitForFlows(() => true, 2);
      for (const [f, role, proc] of [
        [flows.find(isClient), "ROLE_CLIENT", { pid: r.pid, comm: "curl", exe: CURL }],
        [flows.find(isServer), "ROLE_SERVER", { pid: server.proc.pid, comm: "openssl", exe: realpathSync("/usr/bin/openssl") }],
      ] as const) {
        expect(f.connection.role).toBe(role);
        expect(f.connection.process).toEqual(proc);
        expect(f.connection.tls).toBe(true);
        expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+/);
        expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
        expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: clientPort });
        expect(f.request.method).toBe("GET");
        expect(f.request.path).toBe("/status");
        expect(f.response.status).toBe(200);
        expect(f.response.reason).toBe("ok");
        expect(f.response.version).toBe("HTTP/1.0");
        expect(f.response.headers).toEqual([{ name: "Content-type", value: "text/html" }]);
        expect(fromB64(f.response.body)).toEqual(page);
        expect(f.missing).toBeUndefined();
      }
    } finally {
      await server?.stop();
      await tapwire.stop();
    }
  });
});

describe("nginx with TLS serving a static file", () => {
  test("curl and nginx: both sides", async () => {
    const port = await freePort();
    const page = "<!DOCTYPE html><title>tapwire</title>\n" + "static over TLS\n".repeat(100);
    const nginx = await startNginxTls(port, cert, { "index.html": page });
    const tapwire = await startTapwire(["--port", String(port)]);
    try {
      const r = await run([CURL, "-sS", "--cacert", cert.cert, "-o", "/dev/null", "-w", "%{local_port}", `https://127.0.0.1:${port}/index.html`]);
      expect(r.exitCode).toBe(0);
      const clientPort = Number(new TextDecoder().decode(r.stdout));
      const flows = await tapwire.waitForFlows(() => true, 2);
      const common = { clientPort, serverPort: port, method: "GET", path: "/index.html", status: 200, reason: "OK", responseBody: page };
      expectTlsFlow(flows.find(isClient), { ...common, role: "ROLE_CLIENT", process: { pid: r.pid, comm: "curl", exe: CURL } });
      const s = flows.find(isServer);
      expect(s.connection.process.comm).toBe("nginx");
      expect(s.connection.process.exe).toBe("/usr/sbin/nginx");
      expectTlsFlow(s, { ...common, role: "ROLE_SERVER", process: s.connection.process });
      expect(s.connection.process.pid).not.toBe(nginx.proc.pid); // a worker, not the master
      expect(value(s.response.headers, "Server")).toMatch(/^nginx/);
    } finally {
      await tapwire.stop();
      await nginx.stop();
    }
  });
});

describe("node: its own OpenSSL, socket I/O outside it", () => {
  test("https client and server: whole flows, endpoints exact (the sockets node moves the ciphertext on)", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--comm", "node"]);
    const server = await startServer([NODE, `${PEERS}/node_https.mjs`, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
    try {
      const r = await run([NODE, `${PEERS}/node_https.mjs`, "client", String(port), cert.cert]);
      expect(new TextDecoder().decode(r.stdout).trim().split("\n")).toEqual(["200 hello from node", "200 node says hi"]);
      const flows = await tapwire.waitForFlows(() => true, 4);
      for (const [role, pid] of [["ROLE_CLIENT", r.pid], ["ROLE_SERVER", server.proc.pid]] as const) {
        const mine = flows.filter((f) => f.connection.role === role);
        expect(mine).toHaveLength(2);
        const proc = { pid, comm: "node", exe: NODE };
        // One keep-alive connection: both sides name the client's one port.
        const clientPort = flows[0].connection.source.port;
        expectTlsFlow(mine[0], { role, process: proc, clientPort, serverPort: port, method: "GET", path: "/text", status: 200, reason: "OK", responseBody: "hello from node\n" });
        expectTlsFlow(mine[1], { role, process: proc, clientPort, serverPort: port, method: "POST", path: "/echo", requestBody: "node says hi", status: 200, reason: "OK", responseBody: "node says hi" });
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  });
});

describe("node: concurrent connections, each flow on its own socket", () => {
  for (const mode of ["h1", "h2"] as const) {
    test(`${mode === "h1" ? "HTTPS" : "HTTP/2 over TLS"}: 24 connections at once, both sides of every request name its client's own port`, async () => {
      const port = await freePort();
      const n = 24;
      const tapwire = await startTapwire(["--port", String(port)]);
      const server = await startServer([NODE, `${PEERS}/node_tls_many.mjs`, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
      try {
        const r = await run([NODE, `${PEERS}/node_tls_many.mjs`, mode, String(port), cert.cert, String(n)]);
        const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
        expect(lines.at(-1)).toBe("done");
        // What node itself says: request i went out from this local port.
        const portOf = new Map(lines.slice(0, -1).map((l) => l.split(" ")).map(([i, local, status, ...body]) => (expect([status, body.join(" ")]).toEqual(["200", `reply ${i}`]), [`/n?i=${i}`, Number(local)])));
        expect(new Set(portOf.values()).size).toBe(n);
        const flows = await tapwire.waitForFlows(() => true, 2 * n);
        await Bun.sleep(200);
        expect(tapwire.flows).toHaveLength(2 * n);
        for (const f of tapwire.flows) {
          expect(f.protocol).toBe(mode === "h1" ? "PROTOCOL_HTTP1" : "PROTOCOL_HTTP2");
          expect(f.connection.process.pid).toBe(f.connection.role === "ROLE_CLIENT" ? r.pid : server.proc.pid);
          expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
          expect([f.request.path, f.connection.source]).toEqual([f.request.path, { ip: "127.0.0.1", port: portOf.get(f.request.path) }]);
          expect(fromB64(f.response.body).toString()).toBe(`reply ${f.request.path.slice("/n?i=".length)}\n`);
          expect(f.missing).toBeUndefined();
        }
        expect(flows.length).toBeGreaterThanOrEqual(2 * n);
      } finally {
        await tapwire.stop();
        await server.stop();
      }
    }, 60_000);
  }
});

describe("libraries found as they load, and --no-tls", () => {
  test("a running Python that imports ssl later, from a libssl copy nothing had loaded: captured", async () => {
    const port = await freePort();
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    // A copy is another file (device + inode) that tapwire has not probed at start.
    const libdir = `${cert.dir}/lib-${port}`;
    mkdirSync(libdir);
    copyFileSync(LIBSSL, `${libdir}/libssl.so.3`);
    copyFileSync("/usr/lib/x86_64-linux-gnu/libcrypto.so.3", `${libdir}/libcrypto.so.3`);
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const client = startPeer(["/usr/bin/env", `LD_LIBRARY_PATH=${libdir}`, PYTHON, `${PEERS}/lazy_ssl_client.py`, String(port), cert.cert]);
    try {
      await client.waitLine((l) => l === "ready");
      expect(readFileSync(`/proc/${client.proc.pid}/maps`, "latin1")).not.toContain("libssl");
      client.send("go");
      await client.waitLine((l) => l.startsWith("done"));
      expect(readFileSync(`/proc/${client.proc.pid}/maps`, "latin1")).toContain(`${libdir}/libssl.so.3`);
      const flows = await tapwire.waitForFlows(isClient, 1);
      expectTlsFlow(flows[0], { role: "ROLE_CLIENT", process: { pid: client.proc.pid, comm: "python3", exe: PYTHON_EXE }, serverPort: port, method: "GET", path: "/text", status: 200, reason: "OK", responseBody: "hello from tapwire's test server\n" });
      expect(tapwire.stderr.some((l) => l.includes(`probing OpenSSL`) && l.includes(`${libdir}/libssl.so.3`))).toBe(true);
    } finally {
      client.send("");
      await client.stop();
      await tapwire.stop();
      await server.stop();
    }
  });

  test("--no-tls: no flow for HTTPS, plaintext still captured", async () => {
    const tlsPort = await freePort();
    const plainPort = await freePort();
    const tlsServer = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(tlsPort), cert.cert, cert.key], "127.0.0.1", tlsPort);
    const plainServer = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(plainPort)], "127.0.0.1", plainPort);
    const tapwire = await startTapwire(["--no-tls", "--port", String(tlsPort), "--port", String(plainPort)]);
    try {
      expect(tapwire.stderr.find((l) => l.startsWith("ready"))).toContain("TLS off");
      expect((await run([CURL, "-sS", "--cacert", cert.cert, "-o", "/dev/null", `https://127.0.0.1:${tlsPort}/text`])).exitCode).toBe(0);
      expect((await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${plainPort}/text`])).exitCode).toBe(0);
      await tapwire.waitForFlows(() => true, 2);
      await Bun.sleep(300);
      const summary = await tapwire.stop();
      expect(tapwire.flows.map((f: JsonFlow) => [f.connection.destination.port, f.connection.tls ?? false])).toEqual([
        [plainPort, false],
        [plainPort, false],
      ]);
      expect(summary).toMatch(/^tapwire: 2 flows/);
    } finally {
      if (tapwire.proc.exitCode === null) await tapwire.stop();
      await tlsServer.stop();
      await plainServer.stop();
    }
  });
});
