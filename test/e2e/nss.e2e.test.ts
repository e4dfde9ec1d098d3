// NSS (libssl3.so over NSPR) with its own peers from libnss3-tools, started after tapwire:
// tstclnt against selfserv (NSS both sides; selfserv answers with PR_Writev), curl (OpenSSL)
// against selfserv, and tstclnt sending a 256 KiB POST to Python's OpenSSL server. Both
// sides, every field a user reads, endpoints exact.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { PEERS, PYTHON, freePort, fromB64, requireRoot, run, startServer, startTapwire } from "./harness.ts";
import { bothSidesOf, makeCert, sameTlsConnection, tlsClientInContainer, TEST_TEXT, type Cert } from "./tls-setup.ts";
import { ensurePodman, type Podman } from "../support/podman.ts";

const TSTCLNT = "/usr/bin/tstclnt";
const SELFSERV = "/usr/bin/selfserv";
const CURL = "/usr/bin/curl";
const NSS = /^NSS 3\.\d+(\.\d+)*$/;
const OPENSSL = /^OpenSSL 3\.\d+\.\d+$/;
let cert: Cert;
let db: string;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  // An NSS database holding the server's certificate and key (selfserv -n server).
  db = `${cert.dir}/nssdb`;
  mkdirSync(db);
  const steps = [
    ["/usr/bin/certutil", "-N", "-d", `sql:${db}`, "--empty-password"],
    ["/usr/bin/openssl", "pkcs12", "-export", "-in", cert.cert, "-inkey", cert.key, "-out", `${cert.dir}/server.p12`, "-passout", "pass:", "-name", "server"],
    ["/usr/bin/pk12util", "-i", `${cert.dir}/server.p12`, "-d", `sql:${db}`, "-W", ""],
  ];
  for (const step of steps) {
    const r = await run(step);
    if (r.exitCode !== 0) throw new Error(`${step.join(" ")}: ${r.stderr}`);
  }
});

const value = (headers: { name: string; value: string }[] | undefined, name: string) => headers?.find((h) => h.name.toLowerCase() === name)?.value;



/** tstclnt sends the request in `file` and prints what comes back until the server closes. */
async function tstclnt(port: number, request: string) {
  const file = `${cert.dir}/request-${port}-${Math.random().toString(36).slice(2)}.txt`;
  writeFileSync(file, request);
  const r = await run([TSTCLNT, "-h", "127.0.0.1", "-p", String(port), "-D", "-o", "-A", file]);
  expect(r.exitCode).toBe(0);
  return r;
}

const startSelfserv = (port: number) => startServer([SELFSERV, "-d", `sql:${db}`, "-n", "server", "-p", String(port), "-V", "tls1.2:tls1.3"], "127.0.0.1", port);

describe("NSS", () => {
  test("tstclnt against selfserv: NSS on both sides, the reply written with PR_Writev", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startSelfserv(port);
    try {
      const request = "GET /nss?both=1 HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Test: nss\r\n\r\n";
      const r = await tstclnt(port, request);
      const { client, server: srv } = await bothSidesOf(tapwire, "/nss?both=1");
      sameTlsConnection(client, srv, port);
      expect(client.connection.process).toEqual({ pid: r.pid, comm: "tstclnt", exe: TSTCLNT });
      expect(srv.connection.process).toEqual({ pid: server.proc.pid, comm: "selfserv", exe: realpathSync(SELFSERV) });
      for (const f of [client, srv]) {
        expect(f.connection.tlsLibrary).toMatch(NSS);
        expect([f.request.method, f.request.version, f.request.authority, value(f.request.headers, "x-test")]).toEqual(["GET", "HTTP/1.0", "127.0.0.1", "nss"]);
        // selfserv answers with a canned head, then the request it got, then "EOF".
        expect([f.response.status, f.response.version]).toEqual([200, "HTTP/1.0"]);
        expect(fromB64(f.response.body).toString()).toStartWith(request + "EOF");
      }
      expect(new TextDecoder().decode(r.stdout)).toContain(fromB64(client.response.body).toString());
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);

  test("curl (OpenSSL) against selfserv: the server's side read from NSS", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startSelfserv(port);
    try {
      const out = `${cert.dir}/curl-${port}.txt`;
      const r = await run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, "-o", out, `https://127.0.0.1:${port}/from-curl`]);
      expect(r.exitCode).toBe(0);
      const { client, server: srv } = await bothSidesOf(tapwire, "/from-curl");
      sameTlsConnection(client, srv, port);
      expect(client.connection.tlsLibrary).toMatch(OPENSSL);
      expect(srv.connection.tlsLibrary).toMatch(NSS);
      for (const f of [client, srv]) {
        expect(value(f.request.headers, "user-agent")).toStartWith("curl/");
        expect(f.response.status).toBe(200);
        expect(fromB64(f.response.body).toString()).toBe(readFileSync(out, "utf8"));
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);

  test("tstclnt POSTs 256 KiB to Python's OpenSSL server: all of it, both ways", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    try {
      const body = Buffer.alloc(256 * 1024, "tapwire-nss-").toString();
      await tstclnt(port, `POST /echo?nss=1 HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const { client, server: srv } = await bothSidesOf(tapwire, "/echo?nss=1");
      sameTlsConnection(client, srv, port);
      expect(client.connection.tlsLibrary).toMatch(NSS);
      expect(srv.connection.tlsLibrary).toMatch(OPENSSL);
      for (const f of [client, srv]) {
        expect(f.request.method).toBe("POST");
        expect(f.request.bodySize).toBe(String(body.length));
        expect(fromB64(f.request.body).toString()).toBe(body);
        expect(f.response.status).toBe(200);
        expect(fromB64(f.response.body).toString()).toBe(body);
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("NSS, keep-alive", () => {
  test("a client built now on NSS (nothing has run it) makes three requests on one connection to Python's OpenSSL server: every one, both sides", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    try {
      const bin = `${cert.dir}/nss_client-${port}`;
      const cc = await run(["/usr/bin/clang", "-O1", "-o", bin, `${PEERS}/../../peers-c/nss_client.c`, "-I/usr/include/nss", "-I/usr/include/nspr", "-lssl3", "-lnss3", "-lnspr4"]);
      expect([cc.exitCode, cc.stderr]).toEqual([0, ""]);
      const r = await run([bin, "127.0.0.1", String(port), "/text?k=1", "/text?k=2", "/text?k=3"]);
      const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
      expect(lines).toHaveLength(3);
      const localPort = Number(lines[0]!.split(" ")[0]);
      expect(lines).toEqual(lines.map(() => `${localPort} 200 ${TEST_TEXT.trim()}`));
      const sides = [];
      for (const k of [1, 2, 3]) sides.push(await bothSidesOf(tapwire, `/text?k=${k}`));
      for (const { client, server: srv } of sides) {
        sameTlsConnection(client, srv, port);
        expect(client.connection.source.port).toBe(localPort);
        expect(client.connection.process).toEqual({ pid: r.pid, comm: `nss_client-${port}`.slice(0, 15), exe: bin });
        expect(client.connection.tlsLibrary).toMatch(NSS);
        expect(srv.connection.tlsLibrary).toMatch(OPENSSL);
        for (const f of [client, srv]) {
          expect([f.request.method, f.request.version, value(f.request.headers, "user-agent"), f.response.status]).toEqual(["GET", "HTTP/1.1", "nss_client", 200]);
          expect(fromB64(f.response.body).toString()).toBe(TEST_TEXT);
        }
      }
      expect(new Set(sides.map((s) => s.client.connection.id)).size).toBe(1);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("NSS in a container", () => {
  let pm: Podman;
  beforeAll(async () => {
    pm = await ensurePodman();
  }, 900_000);

  test("tstclnt in a one-shot container, with the image's own NSS, against a host HTTPS server: both sides", async () => {
    writeFileSync(`${cert.dir}/container-request.txt`, "GET /text?container=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    const { client, out } = await tlsClientInContainer(pm, cert, "NSS", (port) => ["tstclnt", "-h", "127.0.0.1", "-p", String(port), "-D", "-o", "-A", "/tls/container-request.txt"]);
    expect(out).toContain(TEST_TEXT);
    expect(client.connection.process).toMatchObject({ comm: "tstclnt", exe: "/usr/bin/tstclnt" });
    expect(client.request.version).toBe("HTTP/1.0");
  }, 120_000);
});
