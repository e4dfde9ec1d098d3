// A program's very first request, as a new user meets tapwire: tapwire is started first, then
// a program nothing has run before (a binary built or copied into a fresh directory in the
// test itself) makes one request at once and exits. Its exec waits until tapwire has probed
// its file and the libssl it loads; both sides are then captured, every field exact.
import { beforeAll, describe, expect, test } from "bun:test";
import { realpathSync } from "node:fs";
import { PEERS, PYTHON, freePort, freshCopy, fromB64, requireRoot, run, startServer, startTapwire, type JsonFlow, type Tapwire } from "./harness.ts";
import { makeCert, tlsClientInContainer, type Cert } from "./tls-setup.ts";
import { goBinary, type GoVariant } from "../support/go-build.ts";
import { ensurePodman, type Podman } from "../support/podman.ts";

const NODE = realpathSync("/usr/bin/node");
const CURL = "/usr/bin/curl";
const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const TEXT = "hello from tapwire's test server\n";
let cert: Cert;
let goVersion = "";
let curlVersion = "";

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  for (const v of ["plain", "stripped", "pie"] as GoVariant[]) goBinary(v);
  goVersion = /go version (go\S+)/.exec(Bun.spawnSync(["go", "version"]).stdout.toString())![1]!;
  curlVersion = /^curl (\S+)/.exec(Bun.spawnSync([CURL, "--version"]).stdout.toString())![1]!;
}, 300_000);

const isClient = (f: JsonFlow) => f.connection.role === "ROLE_CLIENT";
const isServer = (f: JsonFlow) => f.connection.role === "ROLE_SERVER";
const value = (headers: { name: string; value: string }[] | undefined, name: string) => headers?.find((h) => h.name.toLowerCase() === name)?.value;

/** The client and the server flow of one exchange, each exactly once. */
async function bothSides(tapwire: Tapwire, pred: (f: JsonFlow) => boolean): Promise<{ client: JsonFlow; server: JsonFlow }> {
  const flows = await tapwire.waitForFlows(pred, 2);
  await Bun.sleep(200); // nothing more arrives
  const all = tapwire.flows.filter(pred);
  expect(all.map((f) => f.connection.role).sort()).toEqual(["ROLE_CLIENT", "ROLE_SERVER"]);
  return { client: flows.find(isClient), server: flows.find(isServer) };
}

describe("Go 1.19: a client that makes one request and exits, against a server also started after tapwire", () => {
  for (const variant of ["plain", "stripped", "pie"] as GoVariant[]) {
    test(`${variant} build`, async () => {
      const port = await freePort();
      const tapwire = await startTapwire(["--port", String(port), "-v"]);
      const serverBin = freshCopy(goBinary(variant), "gosrv");
      const clientBin = freshCopy(goBinary(variant), "gocli");
      const server = await startServer([serverBin, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
      try {
        const r = await run([clientBin, "client", `https://127.0.0.1:${port}/text?first=1`, cert.cert, "1"]);
        expect(new TextDecoder().decode(r.stdout)).toBe("200 14\n");
        const { client, server: srv } = await bothSides(tapwire, (f) => f.request?.path === "/text?first=1");
        const library = `Go ${goVersion} crypto/tls`;
        for (const [f, pid, exe] of [[client, r.pid, clientBin], [srv, server.proc.pid, serverBin]] as const) {
          expect(f.protocol).toBe("PROTOCOL_HTTP1");
          expect(f.connection.process).toEqual({ pid, comm: exe.split("/").at(-1), exe });
          expect(f.connection.tls).toBe(true);
          expect(f.connection.tlsLibrary).toBe(library);
          expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
          expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: client.connection.source.port });
          expect(f.request.method).toBe("GET");
          expect(f.request.version).toBe("HTTP/1.1");
          expect(f.request.authority).toBe(`127.0.0.1:${port}`);
          expect(value(f.request.headers, "user-agent")).toBe("Go-http-client/1.1");
          expect(f.request.body).toBeUndefined();
          expect(f.response.status).toBe(200);
          expect(f.response.reason).toBe("OK");
          expect(fromB64(f.response.body).toString()).toBe("hello from go\n");
          expect(f.response.bodySize).toBe("14");
          expect(f.missing).toBeUndefined();
        }
        // Each file was probed while its exec waited: before the program ran at all.
        for (const bin of [serverBin, clientBin]) expect(tapwire.stderr.filter((l) => l.startsWith(`hold: ${bin} `))).toEqual([expect.stringMatching(/: probed .* in [\d.]+ ms$/)]);
        const summary = await tapwire.stop();
        expect(summary).toMatch(/execs? held \(longest [\d.]+ ms\)$/);
      } finally {
        if (tapwire.proc.exitCode === null) await tapwire.stop();
        await server.stop();
      }
    }, 120_000);
  }
});

describe("node (its own OpenSSL): server and client both started after tapwire, from fresh copies", () => {
  /** node's TLS runs over memory buffers; its endpoints are the sockets it moves the ciphertext on. */
  function expectNodeFlow(f: JsonFlow, e: { pid: number; exe: string; protocol: string; version: string; port: number }) {
    expect(f.protocol).toBe(e.protocol);
    expect(f.connection.process).toEqual({ pid: e.pid, comm: "node", exe: e.exe });
    expect(f.connection.tls).toBe(true);
    expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+$/);
    expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: e.port });
    expect(f.connection.source.ip).toBe("127.0.0.1");
    expect(f.request.method).toBe(e.protocol === "PROTOCOL_GRPC" ? "POST" : "GET");
    expect(f.request.version).toBe(e.version);
    expect(f.response.status).toBe(200);
    expect(f.missing).toBeUndefined();
  }

  for (const [name, mode, version, protocol] of [["HTTPS (HTTP/1.1)", "h1", "HTTP/1.1", "PROTOCOL_HTTP1"], ["HTTP/2 over TLS", "h2", "HTTP/2", "PROTOCOL_HTTP2"]] as const) {
    test(`${name}: the server's first request, and the client's only one`, async () => {
      const port = await freePort();
      const tapwire = await startTapwire(["--comm", "node", "-v"]);
      const serverNode = freshCopy(NODE, "node");
      const clientNode = freshCopy(NODE, "node");
      const server = await startServer([serverNode, `${PEERS}/node_once.mjs`, `${mode}-server`, String(port), cert.cert, cert.key], "127.0.0.1", port);
      try {
        const r = await run([clientNode, `${PEERS}/node_once.mjs`, `${mode}-client`, String(port), cert.cert]);
        expect(new TextDecoder().decode(r.stdout)).toBe("200 first from node\n");
        const { client, server: srv } = await bothSides(tapwire, (f) => f.request?.path === "/first");
        expectNodeFlow(client, { pid: r.pid, exe: clientNode, protocol, version, port });
        expectNodeFlow(srv, { pid: server.proc.pid, exe: serverNode, protocol, version, port });
        expect(srv.connection.source).toEqual(client.connection.source);
        for (const f of [client, srv]) {
          expect(f.request.authority).toBe(`127.0.0.1:${port}`);
          expect(fromB64(f.response.body).toString()).toBe("first from node\n");
          expect(value(f.response.headers, "content-type")).toBe("text/plain");
          if (mode === "h2") expect(f.http2).toEqual({ streamId: 1 });
        }
        for (const bin of [serverNode, clientNode]) expect(tapwire.stderr.filter((l) => l.startsWith(`hold: ${bin} `))).toEqual([expect.stringMatching(/: probed OpenSSL 3\..* in [\d.]+ ms$/)]);
      } finally {
        await tapwire.stop();
        await server.stop();
      }
    }, 60_000);
  }

  test("grpc-js: one unary call over TLS", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--comm", "node", "-v"]);
    const serverNode = freshCopy(NODE, "node");
    const clientNode = freshCopy(NODE, "node");
    const server = await startServer([serverNode, `${PEERS}/grpc_peer.mjs`, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
    try {
      const r = await run([clientNode, `${PEERS}/grpc_peer.mjs`, "unary", String(port), cert.cert]);
      expect(new TextDecoder().decode(r.stdout)).toBe("hello first\n");
      const { client, server: srv } = await bothSides(tapwire, (f) => f.grpc?.method === "Say");
      for (const [f, pid, exe] of [[client, r.pid, clientNode], [srv, server.proc.pid, serverNode]] as const) {
        expectNodeFlow(f, { pid, exe, protocol: "PROTOCOL_GRPC", version: "HTTP/2", port });
        expect(f.connection.source).toEqual(client.connection.source);
        expect(f.request.path).toBe("/tapwire.test.Echo/Say");
        expect(f.grpc.service).toBe("tapwire.test.Echo");
        expect(f.grpc.requestMessages.map((m: JsonFlow) => JSON.parse(m.json))).toEqual([{ "1": "first", "2": "0" }]);
        expect(f.grpc.responseMessages.map((m: JsonFlow) => JSON.parse(m.json))).toEqual([{ "1": "hello first", "2": "0" }]);
        expect(f.grpc.statusName).toBe("OK");
        expect(f.http2).toEqual({ streamId: 1 });
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("OpenSSL that nothing has loaded before, loaded as the program starts", () => {
  test("a new curl with LD_LIBRARY_PATH to a fresh copy of libssl: its first request, through the copy", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    const curl = freshCopy(CURL, "curl");
    const lib = freshCopy(LIBSSL, "libssl.so.3");
    const libdir = lib.slice(0, lib.lastIndexOf("/"));
    try {
      const r = await run(["/usr/bin/env", `LD_LIBRARY_PATH=${libdir}`, curl, "-sS", "--cacert", cert.cert, "-o", "-", `https://127.0.0.1:${port}/text?copy=1`]);
      expect(new TextDecoder().decode(r.stdout)).toBe(TEXT);
      const { client, server: srv } = await bothSides(tapwire, (f) => f.request?.path === "/text?copy=1");
      // env execs curl in place: the same pid.
      expect(client.connection.process).toEqual({ pid: r.pid, comm: "curl", exe: curl });
      expect(srv.connection.process).toEqual({ pid: server.proc.pid, comm: "python3", exe: realpathSync(PYTHON) });
      for (const f of [client, srv]) {
        expect(f.connection.tls).toBe(true);
        expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+$/);
        expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
        expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: client.connection.source.port });
        expect(f.request.method).toBe("GET");
        expect(value(f.request.headers, "user-agent")).toBe(`curl/${curlVersion}`);
        expect(f.response.status).toBe(200);
        expect(fromB64(f.response.body).toString()).toBe(TEXT);
        expect(f.missing).toBeUndefined();
      }
      // Probed while curl's exec waited, found through the search path it was given.
      const probed = tapwire.stderr.findIndex((l) => l.startsWith("tls: probing OpenSSL") && l.includes(` in ${lib} `));
      const held = tapwire.stderr.findIndex((l) => l.startsWith(`hold: ${curl} `));
      expect([probed >= 0, held > probed]).toEqual([true, true]);
      expect(tapwire.stderr[held]).toMatch(/: probed OpenSSL 3\.\d+\.\d+ in [\d.]+ ms$/);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("opens through procfs are not loads", () => {
  test("a process reading a fresh libssl through /proc/PID/root (as another tapwire does) is not a program loading it", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    const curl = freshCopy(CURL, "curl");
    const lib = freshCopy(LIBSSL, "libssl.so.3");
    const libdir = lib.slice(0, lib.lastIndexOf("/"));
    try {
      const peek = await run([PYTHON, "-c", `open('/proc/self/root${lib}', 'rb').read(64)`]);
      expect(peek.exitCode).toBe(0);
      await Bun.sleep(300);
      expect(tapwire.stderr.filter((l) => l.startsWith("tls: probing") && l.includes("/proc/"))).toEqual([]);
      const r = await run(["/usr/bin/env", `LD_LIBRARY_PATH=${libdir}`, curl, "-sS", "--cacert", cert.cert, "-o", "/dev/null", `https://127.0.0.1:${port}/text?peeked=1`]);
      expect(r.exitCode).toBe(0);
      const { client } = await bothSides(tapwire, (f) => f.request?.path === "/text?peeked=1");
      expect(client.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+$/);
      expect(tapwire.stderr.some((l) => l.startsWith("tls: probing OpenSSL 3.") && l.includes(` in ${lib} `))).toBe(true);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("a one-shot container started after tapwire", () => {
  let pm: Podman;
  beforeAll(async () => {
    pm = await ensurePodman();
  }, 600_000);

  test("curl in the container, with the image's own libssl, against a host HTTPS server: both sides", async () => {
    const { client, out } = await tlsClientInContainer(pm, cert, "OpenSSL", (port) => ["curl", "-sS", "--cacert", "/tls/cert.pem", `https://127.0.0.1:${port}/text?container=1`]);
    expect(out).toBe(TEXT);
    expect(client.connection.process).toMatchObject({ comm: "curl", exe: "/usr/bin/curl" });
    expect(client.request.authority).toBe(client.connection.destination.ip + ":" + client.connection.destination.port);
  }, 120_000);
});
