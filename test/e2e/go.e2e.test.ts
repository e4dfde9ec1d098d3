// Go's crypto/tls end to end: a net/http server and client built here with Debian's Go (1.19,
// and 1.21, 1.22, 1.23 from bookworm-backports), unstripped, stripped and PIE, under the real
// dist/tapwire; every flow field by field.
import { beforeAll, describe, expect, test } from "bun:test";
import { freePort, fromB64, requireRoot, run, startServer, startTapwire, waitFor, type JsonFlow, type Peer, type Tapwire, NO_DROPS_END } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";
import { goBinary, goCommand, NEWER_GO, type GoRelease, type GoVariant } from "../support/go-build.ts";

const CURL = "/usr/bin/curl";
let cert: Cert;
let goVersion = "";
const bins = {} as Record<GoVariant, string>;
const RELEASES: GoRelease[] = ["default", ...NEWER_GO];
const VARIANTS: GoVariant[] = ["plain", "stripped", "pie"];
/** "go1.23.5" for each release. */
const versions = {} as Record<GoRelease, string>;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  for (const v of VARIANTS) bins[v] = goBinary(v);
  for (const r of RELEASES) {
    for (const v of VARIANTS) goBinary(v, "gohttps", r);
    versions[r] = /go version (go\S+)/.exec(Bun.spawnSync([goCommand(r), "version"]).stdout.toString())![1]!;
  }
  goVersion = versions.default;
}, 900_000);

/** Starts a Go server after tapwire, and waits until tapwire has probed its executable: a
 * program's TLS calls made in the ~30 ms before that (reading the ELF, attaching) are not
 * seen, and a client run at once could finish inside that window. */
async function startGoServer(tapwire: Tapwire, bin: string, port: number): Promise<Peer> {
  const server = await startServer([bin, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
  await waitFor(`tapwire probing ${bin}`, () => tapwire.stderr.some((l) => l.startsWith("tls: probing Go ") && l.includes(` in ${bin} `)));
  return server;
}

const isClient = (f: JsonFlow) => f.connection.role === "ROLE_CLIENT";
const isServer = (f: JsonFlow) => f.connection.role === "ROLE_SERVER";
const comm = (path: string) => path.split("/").at(-1)!.slice(0, 15);

function expectGoFlow(f: JsonFlow, e: { role: string; pid: number; exe: string; clientPort?: number; serverPort: number; method: string; path: string; requestBody?: string; status: number; responseBody: string; library: string }) {
  expect(f.protocol).toBe("PROTOCOL_HTTP1");
  expect(f.connection.role).toBe(e.role);
  expect(f.connection.process).toEqual({ pid: e.pid, comm: comm(e.exe), exe: e.exe });
  expect(f.connection.tls).toBe(true);
  expect(f.connection.tlsLibrary).toBe(e.library);
  expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: e.serverPort });
  expect(f.connection.source.ip).toBe("127.0.0.1");
  if (e.clientPort) expect(f.connection.source.port).toBe(e.clientPort);
  expect(f.request.method).toBe(e.method);
  expect(f.request.path).toBe(e.path);
  expect(f.request.version).toBe("HTTP/1.1");
  expect(f.request.authority).toBe(`127.0.0.1:${e.serverPort}`);
  expect(fromB64(f.request.body).toString()).toBe(e.requestBody ?? "");
  expect(f.response.status).toBe(e.status);
  expect(f.response.version).toBe("HTTP/1.1");
  expect(fromB64(f.response.body).toString()).toBe(e.responseBody);
  expect(f.response.bodySize).toBe(String(e.responseBody.length));
  expect(f.missing).toBeUndefined();
}

describe.each(RELEASES.flatMap((r) => VARIANTS.map((v) => [r, v] as const)))("Go %s net/http over TLS, %s build", (release, variant) => {
  test("Go client and Go server: both sides, keep-alive", async () => {
    const bin = goBinary(variant, "gohttps", release);
    const goVersion = versions[release];
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const server = await startGoServer(tapwire, bin, port);
    try {
      const r = await run([bin, "client", `https://127.0.0.1:${port}/text?from=go`, cert.cert, "2"]);
      expect(new TextDecoder().decode(r.stdout)).toBe("200 14\n200 14\n");
      const flows = await tapwire.waitForFlows(() => true, 4);
      const library = `Go ${goVersion} crypto/tls`;
      const clientFlows = flows.filter(isClient);
      const serverFlows = flows.filter(isServer);
      expect([clientFlows.length, serverFlows.length]).toEqual([2, 2]);
      // One connection, used twice: the same client port on every flow.
      const clientPort = clientFlows[0].connection.source.port;
      const common = { clientPort, serverPort: port, method: "GET", path: "/text?from=go", status: 200, responseBody: "hello from go\n", library, exe: bin };
      for (const f of clientFlows) expectGoFlow(f, { ...common, role: "ROLE_CLIENT", pid: r.pid });
      for (const f of serverFlows) expectGoFlow(f, { ...common, role: "ROLE_SERVER", pid: server.proc.pid });
      expect(tapwire.stderr.some((l) => l.includes(`probing ${library} in ${bin}`))).toBe(true);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 120_000);
});

describe("Go with other peers", () => {
  test("a Go server running before tapwire: curl POSTs to it, a Go client POSTs to it", async () => {
    const bin = bins.plain;
    const port = await freePort();
    // The server runs before tapwire starts: found by the scan of running programs.
    const server = await startServer([bin, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    try {
      expect(tapwire.stderr.some((l) => l.startsWith("tls: probing Go ") && l.includes(` in ${bin} `))).toBe(true);
      const c = await run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, "-o", "/dev/null", "-w", "%{local_port}", "-H", "Content-Type: text/plain", "--data-binary", "curl says hi", `https://127.0.0.1:${port}/echo`]);
      expect(c.exitCode).toBe(0);
      const g = await run([bin, "post", `https://127.0.0.1:${port}/echo?from=go`, cert.cert, "go says hi"]);
      expect(new TextDecoder().decode(g.stdout)).toBe("200 go says hi\n");
      const flows = await tapwire.waitForFlows(() => true, 4);
      const library = `Go ${goVersion} crypto/tls`;
      const curlSide = flows.find((f) => isClient(f) && f.connection.process.pid === c.pid);
      expect(curlSide.connection.tlsLibrary).toMatch(/^OpenSSL 3\./);
      expect(fromB64(curlSide.request.body).toString()).toBe("curl says hi");
      const serverFromCurl = flows.find((f) => isServer(f) && f.request.path === "/echo");
      expectGoFlow(serverFromCurl, { role: "ROLE_SERVER", pid: server.proc.pid, exe: bin, clientPort: Number(new TextDecoder().decode(c.stdout)), serverPort: port, method: "POST", path: "/echo", requestBody: "curl says hi", status: 200, responseBody: "curl says hi", library });
      for (const role of ["ROLE_CLIENT", "ROLE_SERVER"]) {
        const f = flows.find((x) => x.connection.role === role && x.request.path === "/echo?from=go");
        expectGoFlow(f, { role, pid: role === "ROLE_CLIENT" ? g.pid : server.proc.pid, exe: bin, serverPort: port, method: "POST", path: "/echo?from=go", requestBody: "go says hi", status: 200, responseBody: "go says hi", library });
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 120_000);

});

describe.each(RELEASES.flatMap((r) => VARIANTS.map((v) => [r, v] as const)))("Go %s HTTP/2, %s build", (release, variant) => {
  test("HTTP/2 over crypto/tls (ALPN h2): Go client and Go server, both sides, one connection", async () => {
    const bin = goBinary(variant, "gohttps", release);
    const goVersion = versions[release];
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const server = await startGoServer(tapwire, bin, port);
    try {
      const r = await run([bin, "client", `https://127.0.0.1:${port}/text?h2=1`, cert.cert, "3", "h2"]);
      expect(new TextDecoder().decode(r.stdout)).toBe("200 14\n200 14\n200 14\n");
      const flows = await tapwire.waitForFlows(() => true, 6);
      const library = `Go ${goVersion} crypto/tls`;
      for (const [pick, pid] of [[isClient, r.pid], [isServer, server.proc.pid]] as const) {
        const mine = flows.filter(pick).sort((a, b) => a.http2.streamId - b.http2.streamId);
        expect(mine.map((f) => f.http2.streamId)).toEqual([1, 3, 5]);
        const clientPort = mine[0].connection.source.port;
        for (const f of mine) {
          expect(f.protocol).toBe("PROTOCOL_HTTP2");
          expect(f.connection.process).toEqual({ pid, comm: comm(bin), exe: bin });
          expect(f.connection.tls).toBe(true);
          expect(f.connection.tlsLibrary).toBe(library);
          expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: clientPort });
          expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
          expect(f.request.method).toBe("GET");
          expect(f.request.path).toBe("/text?h2=1");
          expect(f.request.authority).toBe(`127.0.0.1:${port}`);
          expect(f.request.version).toBe("HTTP/2");
          expect(f.request.headers.find((h: JsonFlow) => h.name === "user-agent").value).toBe("Go-http-client/2.0");
          expect(f.response.status).toBe(200);
          expect(f.response.version).toBe("HTTP/2");
          expect(f.response.headers.find((h: JsonFlow) => h.name === "content-type").value).toBe("text/plain");
          expect(fromB64(f.response.body).toString()).toBe("hello from go\n");
          expect(f.missing).toBeUndefined();
        }
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 120_000);
});

describe.each(RELEASES)("Go %s under load", (release) => {
  test("200 concurrent requests with deeply growing handler stacks: no crash, every request captured on both sides", async () => {
    const bin = goBinary("plain", "gohttps", release);
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v"]);
    const server = await startGoServer(tapwire, bin, port);
    try {
      const n = 1000;
      const r = await run([bin, "load", `https://127.0.0.1:${port}/deep?n=20000`, cert.cert, String(n), "200"]);
      expect(new TextDecoder().decode(r.stdout)).toBe(`ok ${n}\n`);
      expect(r.exitCode).toBe(0);
      const flows = await tapwire.waitForFlows(() => true, 2 * n, 60_000);
      expect(server.proc.exitCode).toBeNull(); // the server is still alive
      for (const side of [isClient, isServer]) {
        const paths = new Set(flows.filter(side).map((f) => f.request.path));
        expect(paths.size).toBe(n);
        for (const f of flows.filter(side)) {
          expect(f.response.status).toBe(200);
          expect(fromB64(f.response.body).toString()).toBe("depth 20000\n");
          expect(f.missing).toBeUndefined();
        }
      }
      const summary = await tapwire.stop();
      expect(summary).toMatch(new RegExp(NO_DROPS_END));
      // Exactly one flow per request and side: a Write whose entry ran twice (the stack grew)
      // must not send its bytes twice.
      expect(tapwire.matching(isClient).length).toBe(n);
      expect(tapwire.matching(isServer).length).toBe(n);
    } finally {
      if (tapwire.proc.exitCode === null) await tapwire.stop();
      await server.stop();
    }
  }, 180_000);
});
