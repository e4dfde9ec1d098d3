// GnuTLS (libgnutls.so.30) with real peers started after tapwire: wget (a GnuTLS client)
// against Python's OpenSSL server — keep-alive, a 256 KiB upload — and against gnutls-serv;
// curl (OpenSSL) against gnutls-serv; and a fresh wget loading a fresh copy of libgnutls
// through LD_LIBRARY_PATH, probed while its exec waited. Both sides, every field a user reads.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { PEERS, PYTHON, freePort, freshCopy, fromB64, requireRoot, run, startServer, startTapwire } from "./harness.ts";
import { bothSidesOf, makeCert, sameTlsConnection, tlsClientInContainer, type Cert } from "./tls-setup.ts";
import { ensurePodman, type Podman } from "../support/podman.ts";

const WGET = "/usr/bin/wget";
const CURL = "/usr/bin/curl";
const GNUTLS_SERV = "/usr/bin/gnutls-serv";
const LIBGNUTLS = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30";
const TEXT = "hello from tapwire's test server\n";
const GNUTLS = /^GnuTLS 3\.\d+\.\d+$/;
const OPENSSL = /^OpenSSL 3\.\d+\.\d+$/;
let cert: Cert;
let wgetVersion = "";

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  wgetVersion = /GNU Wget (\S+)/.exec(new TextDecoder().decode((await run([WGET, "--version"])).stdout))![1]!;
});

const value = (headers: { name: string; value: string }[] | undefined, name: string) => headers?.find((h) => h.name.toLowerCase() === name)?.value;



async function startGnutlsServ(port: number) {
  return await startServer([GNUTLS_SERV, "--http", "-p", String(port), "--x509certfile", cert.cert, "--x509keyfile", cert.key], "127.0.0.1", port);
}

describe("GnuTLS", () => {
  test("wget against Python's OpenSSL server: three requests on one kept-alive connection, then a 256 KiB POST", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    const upload = `${cert.dir}/upload.txt`;
    const payload = Buffer.alloc(256 * 1024, "tapwire-gnutls-").toString();
    writeFileSync(upload, payload);
    try {
      const base = `https://127.0.0.1:${port}`;
      const r = await run([WGET, "-q", "-O", "/dev/null", "--ca-certificate", cert.cert, `${base}/text?k=1`, `${base}/text?k=2`, `${base}/text?k=3`]);
      expect(r.exitCode).toBe(0);
      const sides = [];
      for (const k of [1, 2, 3]) sides.push(await bothSidesOf(tapwire, `/text?k=${k}`));
      // One connection for the three (wget keeps it alive), the same on both sides.
      expect(new Set(sides.map((s) => s.client.connection.id)).size).toBe(1);
      expect(new Set(sides.map((s) => s.server.connection.id)).size).toBe(1);
      for (const { client, server: srv } of sides) {
        sameTlsConnection(client, srv, port);
        expect(client.connection.tlsLibrary).toMatch(GNUTLS);
        expect(srv.connection.tlsLibrary).toMatch(OPENSSL);
        expect(client.connection.process).toEqual({ pid: r.pid, comm: "wget", exe: WGET });
        expect(srv.connection.process.pid).toBe(server.proc.pid);
        for (const f of [client, srv]) {
          expect([f.request.method, f.request.authority, f.request.version]).toEqual(["GET", `127.0.0.1:${port}`, "HTTP/1.1"]);
          expect(value(f.request.headers, "user-agent")).toBe(`Wget/${wgetVersion}`);
          expect([f.response.status, f.response.reason, value(f.response.headers, "content-type")]).toEqual([200, "OK", "text/plain"]);
          expect(fromB64(f.response.body).toString()).toBe(TEXT);
        }
      }

      const post = await run([WGET, "-q", "-O", `${cert.dir}/echoed.txt`, "--ca-certificate", cert.cert, "--header", "Content-Type: text/plain", "--post-file", upload, `${base}/echo?big=1`]);
      expect(post.exitCode).toBe(0);
      expect(readFileSync(`${cert.dir}/echoed.txt`, "utf8")).toBe(payload);
      const { client, server: srv } = await bothSidesOf(tapwire, "/echo?big=1");
      sameTlsConnection(client, srv, port);
      expect(client.connection.tlsLibrary).toMatch(GNUTLS);
      for (const f of [client, srv]) {
        expect(f.request.method).toBe("POST");
        expect(value(f.request.headers, "content-length")).toBe(String(payload.length));
        expect(f.request.bodySize).toBe(String(payload.length));
        expect(fromB64(f.request.body).toString()).toBe(payload);
        expect(f.request.bodyTruncated).toBeUndefined();
        expect(f.response.bodySize).toBe(String(payload.length));
        expect(fromB64(f.response.body).toString()).toBe(payload);
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);

  test("gnutls-serv answering curl (OpenSSL) and wget (GnuTLS): the server's side read from GnuTLS", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startGnutlsServ(port);
    try {
      const page = `${cert.dir}/page-${port}.html`;
      const c = await run([CURL, "-sS", "--cacert", cert.cert, "-o", page, `https://127.0.0.1:${port}/from-curl`]);
      expect(c.exitCode).toBe(0);
      const fromCurl = await bothSidesOf(tapwire, "/from-curl");
      sameTlsConnection(fromCurl.client, fromCurl.server, port);
      expect(fromCurl.client.connection.tlsLibrary).toMatch(OPENSSL);
      expect(fromCurl.server.connection.tlsLibrary).toMatch(GNUTLS);
      expect(fromCurl.server.connection.process).toEqual({ pid: server.proc.pid, comm: "gnutls-serv", exe: realpathSync(GNUTLS_SERV) });
      for (const f of [fromCurl.client, fromCurl.server]) {
        expect([f.request.method, f.response.status]).toEqual(["GET", 200]);
        // gnutls-serv's page repeats the request's headers: the very bytes curl got.
        expect(fromB64(f.response.body).toString()).toBe(readFileSync(page, "utf8"));
        expect(fromB64(f.response.body).toString()).toContain(`Host: 127.0.0.1:${port}`);
      }

      const w = await run([WGET, "-q", "-O", "/dev/null", "--ca-certificate", cert.cert, `https://127.0.0.1:${port}/from-wget`]);
      expect(w.exitCode).toBe(0);
      const fromWget = await bothSidesOf(tapwire, "/from-wget");
      sameTlsConnection(fromWget.client, fromWget.server, port);
      for (const f of [fromWget.client, fromWget.server]) {
        expect(f.connection.tlsLibrary).toMatch(GNUTLS);
        expect(value(f.request.headers, "user-agent")).toBe(`Wget/${wgetVersion}`);
        expect(f.response.status).toBe(200);
        expect(fromB64(f.response.body).toString()).toContain(`User-Agent: Wget/${wgetVersion}`);
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);

  test("a fresh wget with LD_LIBRARY_PATH to a fresh copy of libgnutls: probed while its exec waited, its first request seen", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    const wget = freshCopy(WGET, "wget");
    const lib = freshCopy(LIBGNUTLS, "libgnutls.so.30");
    const libdir = lib.slice(0, lib.lastIndexOf("/"));
    try {
      const r = await run(["/usr/bin/env", `LD_LIBRARY_PATH=${libdir}`, wget, "-q", "-O", "-", "--ca-certificate", cert.cert, `https://127.0.0.1:${port}/text?copy=1`]);
      expect(new TextDecoder().decode(r.stdout)).toBe(TEXT);
      const { client, server: srv } = await bothSidesOf(tapwire, "/text?copy=1");
      sameTlsConnection(client, srv, port);
      expect(client.connection.process).toEqual({ pid: r.pid, comm: "wget", exe: wget });
      expect(client.connection.tlsLibrary).toMatch(GNUTLS);
      expect(fromB64(client.response.body).toString()).toBe(TEXT);
      const probed = tapwire.stderr.findIndex((l) => l.startsWith("tls: probing GnuTLS") && l.includes(` in ${lib} `));
      const held = tapwire.stderr.findIndex((l) => l.startsWith(`hold: ${wget} `));
      expect([probed >= 0, held > probed]).toEqual([true, true]);
      expect(tapwire.stderr[probed]).toMatch(/^tls: probing GnuTLS 3\.\d+\.\d+ in \S+ \(gnutls_record_send2, gnutls_record_recv, gnutls_handshake, gnutls_deinit; (at entries|entries, but .+)\)$/);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("GnuTLS in git", () => {
  test("git ls-remote over https (libcurl-gnutls) against git http-backend: every request, both sides, the refs in the bodies", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    // A bare repository with one commit, served by git's own smart-HTTP backend.
    const root = `${cert.dir}/git-${port}`;
    const work = `${root}/work`;
    const git = (args: string[], cwd?: string) => {
      const r = Bun.spawnSync(["/usr/bin/git", ...args], { cwd, stderr: "pipe", stdout: "pipe" });
      if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
      return r.stdout.toString();
    };
    git(["init", "-q", "--bare", "-b", "main", `${root}/demo.git`]);
    git(["init", "-q", "-b", "main", work]);
    git(["-c", "user.name=tapwire", "-c", "user.email=tapwire@localhost", "commit", "-q", "--allow-empty", "-m", "first"], work);
    git(["push", "-q", `${root}/demo.git`, "main"], work);
    const head = git(["rev-parse", "HEAD"], work).trim();
    const server = await startServer([PYTHON, `${PEERS}/git_https.py`, String(port), cert.cert, cert.key, root], "127.0.0.1", port);
    try {
      const r = Bun.spawnSync(["/usr/bin/git", "ls-remote", `https://127.0.0.1:${port}/git/demo.git`], { env: { ...process.env, GIT_SSL_CAINFO: cert.cert }, stdout: "pipe", stderr: "pipe" });
      expect([r.exitCode, r.stdout.toString()]).toEqual([0, `${head}\tHEAD\n${head}\trefs/heads/main\n`]);
      const path = "/git/demo.git/info/refs?service=git-upload-pack";
      const { client, server: srv } = await bothSidesOf(tapwire, path);
      sameTlsConnection(client, srv, port);
      // git runs its https transport as a program of its own.
      expect(client.connection.process.comm).toBe("git-remote-http");
      expect(client.connection.process.exe).toMatch(/^\/usr\/lib\/git-core\/git-remote-https?$/);
      expect(client.connection.tlsLibrary).toMatch(GNUTLS);
      expect(srv.connection.tlsLibrary).toMatch(OPENSSL);
      for (const f of [client, srv]) {
        expect([f.request.method, f.response.status, value(f.response.headers, "content-type")]).toEqual(["GET", 200, "application/x-git-upload-pack-advertisement"]);
        expect(value(f.request.headers, "user-agent")).toStartWith("git/");
        expect(fromB64(f.response.body).toString()).toContain(head);
      }
      // That was all git asked (the CGI passes no Git-Protocol on, so git speaks v0: the refs
      // come with the advertisement), and all tapwire saw.
      await Bun.sleep(300);
      expect(tapwire.flows.map((f) => `${f.connection.role} ${f.request.method} ${f.request.path} ${f.response.status}`).sort()).toEqual([`ROLE_CLIENT GET ${path} 200`, `ROLE_SERVER GET ${path} 200`]);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("GnuTLS in a container", () => {
  let pm: Podman;
  beforeAll(async () => {
    pm = await ensurePodman();
  }, 900_000);

  test("wget in a one-shot container, with the image's own libgnutls, against a host HTTPS server: both sides", async () => {
    const { client, out } = await tlsClientInContainer(pm, cert, "GnuTLS", (port) => ["wget", "-q", "-O", "-", "--ca-certificate", "/tls/cert.pem", `https://127.0.0.1:${port}/text?container=1`]);
    expect(out).toBe(TEXT);
    expect(client.connection.process).toMatchObject({ comm: "wget", exe: "/usr/bin/wget" });
    expect(value(client.request.headers, "user-agent")).toStartWith("Wget/");
  }, 120_000);
});
