// `tapwire serve` with real clients over real sockets: @connectrpc/connect clients on the
// gRPC, Connect and gRPC-Web protocols (HTTP/2 and HTTP/1.1), plain curl with Connect JSON,
// a token, TLS, live flows from real traffic, history pages, capture filters, redaction.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, ConnectError, Code, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";
import { ROOT, TAPWIRE, freePort, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type Peer, type Tapwire } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";

const CURL = "/usr/bin/curl";
const PYTHON = "/usr/bin/python3";
let cert: Cert;
let api: number;
let web: number;
let tapwire: Tapwire;
let origin: Peer;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  api = await freePort();
  web = await freePort();
  origin = await startServer([PYTHON, "-m", "http.server", String(web), "--bind", "127.0.0.1"], "127.0.0.1", web);
  tapwire = await startTapwire(["--listen", `127.0.0.1:${api}`, "--port", String(web), "--redact"], { command: "serve" });
}, 60_000);

afterAll(async () => {
  await tapwire?.stop();
  await origin?.stop();
});

const base = () => `http://127.0.0.1:${api}`;
const clients = () => ({
  grpc: createClient(TapwireService, createGrpcTransport({ baseUrl: base() })),
  connectH2: createClient(TapwireService, createConnectTransport({ baseUrl: base(), httpVersion: "2" })),
  connectH1: createClient(TapwireService, createConnectTransport({ baseUrl: base(), httpVersion: "1.1" })),
  grpcWeb: createClient(TapwireService, createGrpcWebTransport({ baseUrl: base(), httpVersion: "1.1" })),
});

async function curlGet(path: string, headers: string[] = []): Promise<void> {
  const r = await run([CURL, "-sS", "-o", "/dev/null", ...headers.flatMap((h) => ["-H", h]), `http://127.0.0.1:${web}${path}`]);
  expect(r.exitCode).toBe(0);
}

describe("serve", () => {
  test("GetInfo on every protocol and HTTP version", async () => {
    for (const [name, c] of Object.entries(clients())) {
      const info = await c.getInfo({});
      expect([name, info.version, info.probesAttached > 10, info.features.includes("grpc"), info.tlsLibraries.some((l) => l.startsWith("OpenSSL 3."))]).toEqual([name, "0.1.0", true, true, true]);
    }
    const r = await run([CURL, "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", `${base()}/tapwire.v1.TapwireService/GetInfo`]);
    expect(JSON.parse(new TextDecoder().decode(r.stdout)).version).toBe("0.1.0");
  });

  test("buf curl with the gRPC-Web, Connect and gRPC protocols", async () => {
    for (const protocol of ["grpcweb", "connect", "grpc"]) {
      const r = await run([`${ROOT}/node_modules/.bin/buf`, "curl", "--schema", `${ROOT}/proto`, "--protocol", protocol, "--data", "{}", `${base()}/tapwire.v1.TapwireService/GetInfo`]);
      expect([protocol, r.exitCode, r.stderr]).toEqual([protocol, 0, ""]);
      expect(JSON.parse(new TextDecoder().decode(r.stdout))).toMatchObject({ version: "0.1.0", features: ["http1", "http2", "grpc", "tls", "redact"] });
    }
    // A server stream over Connect: the newest flow of the history, then buf curl gives up.
    await curlGet("/buf-curl");
    await Bun.sleep(200);
    const r = await run([`${ROOT}/node_modules/.bin/buf`, "curl", "--schema", `${ROOT}/proto`, "--protocol", "connect", "--timeout", "2s", "--data", '{"filter":{"pathPrefix":"/buf-curl","processNames":["curl"]},"last":1}', `${base()}/tapwire.v1.TapwireService/WatchFlows`]);
    const first = JSON.parse(new TextDecoder().decode(r.stdout).split(/\n(?=\{)/)[0]!);
    expect(first.flow.request.path).toBe("/buf-curl");
  });

  test("a flow from real traffic reaches a WatchFlows stream within 200 ms, redacted", async () => {
    const { grpc } = clients();
    const abort = new AbortController();
    const stream = grpc.watchFlows({ filter: { pathPrefix: "/watch-me", processNames: ["curl"] } }, { signal: abort.signal });
    const it = stream[Symbol.asyncIterator]();
    const first = it.next();
    await Bun.sleep(300); // the subscription is in place
    await curlGet("/watch-me?x=1", ["Authorization: Bearer hunter2"]);
    const done = performance.now();
    const ev = await first;
    const latency = performance.now() - done;
    abort.abort();
    expect(ev.value.event.case).toBe("flow");
    const f = ev.value.event.value;
    expect([f.request.path, f.request.method, f.connection.process.comm]).toEqual(["/watch-me?x=1", "GET", "curl"]);
    expect(f.request.headers.find((h: { name: string }) => h.name === "Authorization").value).toBe("[redacted]");
    expect(latency).toBeLessThan(200);
  });

  test("ListFlows pages the history newest first with a filter; GetFlow; bad input is invalid_argument / not_found", async () => {
    for (let i = 1; i <= 5; i++) await curlGet(`/page-test/${i}`);
    const { connectH1 } = clients();
    await waitFor("five flows in the history", async () => (await connectH1.listFlows({ filter: { pathPrefix: "/page-test/", processNames: ["curl"] }, pageSize: 10 })).flows.length === 5);
    const filter = { pathPrefix: "/page-test/", processNames: ["curl"] };
    const p1 = await connectH1.listFlows({ filter, pageSize: 3 });
    expect(p1.flows.map((f) => f.request!.path)).toEqual(["/page-test/5", "/page-test/4", "/page-test/3"]);
    const p2 = await connectH1.listFlows({ filter, pageSize: 3, pageToken: p1.nextPageToken });
    expect([p2.flows.map((f) => f.request!.path), p2.nextPageToken]).toEqual([["/page-test/2", "/page-test/1"], ""]);
    expect((await connectH1.getFlow({ id: p1.flows[0]!.id })).flow!.request!.path).toBe("/page-test/5");
    const err = async (p: Promise<unknown>) => p.then(() => undefined, (e) => ConnectError.from(e).code);
    expect(await err(connectH1.getFlow({ id: "no-such" }))).toBe(Code.NotFound);
    expect(await err(connectH1.listFlows({ pageToken: "garbage" }))).toBe(Code.InvalidArgument);
    expect(await err(connectH1.listFlows({ pageSize: 5000 }))).toBe(Code.InvalidArgument);
    const stats = await connectH1.getStats({});
    expect(stats.flows).toBeGreaterThanOrEqual(5n);
    expect(stats.historyFlows).toBeGreaterThanOrEqual(5n);
  });

  test("ListProcesses: the processes of the history, and those using a probed TLS library", async () => {
    const { connectH1 } = clients();
    await curlGet("/list-processes");
    await waitFor("the flows of /list-processes", async () => (await connectH1.listFlows({ filter: { pathPrefix: "/list-processes" } })).flows.length === 2);
    const { processes } = await connectH1.listProcesses({});
    const server = processes.find((p) => p.pid === origin.proc.pid);
    expect(server).toMatchObject({ comm: "python3", exe: expect.stringMatching(/python3/) });
    // Some process on the host maps the system libssl (tapwire probes it at start).
    expect(processes.some((p) => p.tlsLibraries.some((l) => l.startsWith("OpenSSL 3.")))).toBe(true);
  });

  test("SetCaptureFilter: only the processes named are captured, at once", async () => {
    const { grpc } = clients();
    const set = await grpc.setCaptureFilter({ filter: { processNames: ["python3"] } });
    expect(set.filter!.processNames).toEqual(["python3"]);
    await curlGet("/filtered");
    await waitFor("the server side of /filtered", async () => (await grpc.listFlows({ filter: { pathPrefix: "/filtered" } })).flows.length >= 1);
    await Bun.sleep(300);
    const flows = (await grpc.listFlows({ filter: { pathPrefix: "/filtered" } })).flows;
    expect(flows.map((f) => f.connection!.process!.comm)).toEqual(["python3"]);
    // A container that does not run (yet): nothing is captured until it does.
    expect((await grpc.setCaptureFilter({ filter: { containers: ["tw-not-running"] } })).filter!.containers).toEqual(["tw-not-running"]);
    await curlGet("/filtered-out");
    await grpc.setCaptureFilter({ filter: {} });
    await curlGet("/filtered-back");
    await waitFor("both sides of /filtered-back", async () => (await grpc.listFlows({ filter: { pathPrefix: "/filtered-back" } })).flows.length >= 2);
    expect((await grpc.listFlows({ filter: { pathPrefix: "/filtered-out" } })).flows).toEqual([]);
  });

  test("a stuck subscriber does not delay another", async () => {
    const { grpc, connectH2 } = clients();
    const stuck = new AbortController();
    const stuckStream = connectH2.watchFlows({ filter: { pathPrefix: "/burst" } }, { signal: stuck.signal })[Symbol.asyncIterator]();
    void stuckStream.next(); // reads one message, then nothing more
    const live = new AbortController();
    const got: string[] = [];
    const reading = (async () => {
      for await (const r of grpc.watchFlows({ filter: { pathPrefix: "/burst", processNames: ["curl"] } }, { signal: live.signal })) {
        if (r.event.case === "flow") got.push(r.event.value.request!.path);
        if (got.length === 50) break;
      }
    })();
    await Bun.sleep(300);
    const urls = Array.from({ length: 50 }, (_, i) => `http://127.0.0.1:${web}/burst/${i}?${"pad".repeat(400)}`);
    const r = await run([CURL, "-sS", ...urls.flatMap((u) => ["-o", "/dev/null", u])]);
    expect(r.exitCode).toBe(0);
    await Promise.race([reading, Bun.sleep(5000).then(() => { throw new Error(`only ${got.length} of 50 flows reached the live subscriber`); })]);
    expect(got.length).toBe(50);
    stuck.abort();
    live.abort();
  });
});

describe("bad input", () => {
  test("garbage on the port, a malformed Connect body and an unknown method: errors, and the agent keeps serving", async () => {
    const net = await import("node:net");
    for (const junk of [Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]), Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01\x00\x00\x00\x00\x01garbage")]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(api, "127.0.0.1", () => s.end(junk));
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.resume();
      });
    }
    const bad = await run([CURL, "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{not json", `${base()}/tapwire.v1.TapwireService/ListFlows`]);
    expect(JSON.parse(new TextDecoder().decode(bad.stdout)).code).toBe("invalid_argument");
    const unknown = await run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", `${base()}/tapwire.v1.TapwireService/Nope`]);
    expect(new TextDecoder().decode(unknown.stdout)).toBe("404");
    expect((await clients().grpc.getInfo({})).version).toBe("0.1.0");
    expect(tapwire.proc.exitCode).toBeNull();
  });
});

describe("tapwire watch", () => {
  test("prints the server's flows as capture does (--json, and the terminal line)", async () => {
    const json = startPeer([TAPWIRE, "watch", "--server", base(), "--json", "--comm", "curl"]);
    const lines = startPeer([TAPWIRE, "watch", "--server", base(), "--no-color", "--comm", "curl"]);
    try {
      await Bun.sleep(500);
      await curlGet("/watched?q=1");
      const got = JSON.parse(await json.waitLine((l) => l.includes("/watched?q=1")));
      expect([got.protocol, got.request.method, got.request.path, got.response.status, got.connection.process.comm, got.connection.role]).toEqual(["PROTOCOL_HTTP1", "GET", "/watched?q=1", 404, "curl", "ROLE_CLIENT"]);
      const line = await lines.waitLine((l) => l.includes("/watched?q=1"));
      expect(line).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} GET http://127\\.0\\.0\\.1:${web}/watched\\?q=1 404 File not found \\d+ B [\\d.]+ ms curl\\[\\d+\\] client$`));
    } finally {
      await json.stop();
      await lines.stop();
    }
  });

  test("an unreachable server, or a wrong token, is one line and an exit code", async () => {
    const down = await freePort();
    const r = await run([TAPWIRE, "watch", "--server", `http://127.0.0.1:${down}`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^watching http://127\\.0\\.0\\.1:${down}\\ntapwire: http://127\\.0\\.0\\.1:${down}: cannot reach it \\([^\\n]+\\)\\n$`));
    const bad = await run([TAPWIRE, "watch", "--server", "ftp://x"]);
    expect([bad.exitCode, bad.stderr]).toEqual([2, "tapwire: --server: ftp://x must be http:// or https://\n"]);
  });
});

describe("Trayce's GUI protocol (--trayce)", () => {
  test("a Trayce GUI gets request and response flows sharing a uuid, with every field it shows; tapwire reconnects when the GUI comes back", async () => {
    const gui = await freePort();
    const site = await freePort();
    const root = `${cert.dir}/site`;
    require("node:fs").mkdirSync(root, { recursive: true });
    require("node:fs").writeFileSync(`${root}/hello.txt`, "hello trayce\n");
    const files = await startServer([PYTHON, "-m", "http.server", String(site), "--bind", "127.0.0.1", "-d", root], "127.0.0.1", site);
    let guiPeer = startPeer(["/usr/bin/node", `${ROOT}/test/e2e/peers/trayce_gui.mjs`, String(gui)]);
    await guiPeer.waitLine((l) => l === "listening");
    const t = await startTapwire(["--listen", `127.0.0.1:${await freePort()}`, "--port", String(site), "--trayce", `127.0.0.1:${gui}`], { command: "serve" });
    const events = (p: Peer) => p.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    try {
      await guiPeer.waitLine((l) => l.includes('"agent_started"'));
      expect(events(guiPeer).find((e) => e.kind === "agent_started").value.version).toBe("0.1.0");
      const r = await run([CURL, "-sS", "-o", "/dev/null", "-w", "%{local_port}", "-H", "X-Test: one", `http://127.0.0.1:${site}/hello.txt`]);
      const clientPort = Number(new TextDecoder().decode(r.stdout));
      await waitFor("four flows at the GUI", () => events(guiPeer).filter((e) => e.kind === "flow").length >= 4);
      const flows = events(guiPeer).filter((e) => e.kind === "flow").map((e) => e.value);
      const fromCurl = flows.filter((f) => f.request === "httpRequest" ? f.httpRequest.headers["User-Agent"] : false);
      expect(fromCurl.length).toBe(2); // the client's request and the server's request
      for (const req of flows.filter((f) => f.request === "httpRequest")) {
        const res = flows.find((f) => f.uuid === req.uuid && f.response === "httpResponse");
        expect(res).toBeDefined();
        for (const f of [req, res]) {
          expect([f.sourceAddr, f.destAddr, f.l4Protocol, f.l7Protocol]).toEqual([`127.0.0.1:${clientPort}`, `127.0.0.1:${site}`, "tcp", "http"]);
        }
        expect(req.httpRequest).toMatchObject({ method: "GET", host: `127.0.0.1:${site}`, path: "/hello.txt", httpVersion: "1.1" });
        expect(req.httpRequest.headers["X-Test"]).toEqual({ values: ["one"] });
        expect(res.httpResponse).toMatchObject({ httpVersion: "1.0", status: 200, statusMsg: "OK" });
        expect(Buffer.from(res.httpResponse.payload, "base64").toString()).toBe("hello trayce\n");
        expect(res.httpResponse.headers["Content-Length"]).toEqual({ values: ["13"] });
      }
      await guiPeer.waitLine((l) => l.includes('"containers"'));

      // The GUI goes away and comes back on the same port.
      await guiPeer.stop();
      await Bun.sleep(500);
      guiPeer = startPeer(["/usr/bin/node", `${ROOT}/test/e2e/peers/trayce_gui.mjs`, String(gui)]);
      await guiPeer.waitLine((l) => l.includes('"agent_started"'), 15_000);
      await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/hello.txt?again=1`]);
      await waitFor("the flows after reconnecting", () => events(guiPeer).filter((e) => e.kind === "flow" && e.value.httpRequest?.path === "/hello.txt?again=1").length === 2);
    } finally {
      await t.stop();
      await guiPeer.stop();
      await files.stop();
    }
  }, 60_000);
});

describe("security", () => {
  test("a non-loopback address needs --token or --insecure", async () => {
    const r = Bun.spawnSync([TAPWIRE, "serve", "--listen", "0.0.0.0:0"], { stderr: "pipe" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toBe("tapwire: --listen 0.0.0.0:0: anyone who can reach it would see every flow; give --token (or TAPWIRE_TOKEN), or --insecure\n");
  });

  test("--token: calls without it or with a wrong one are unauthenticated; over TLS with the right one they work", async () => {
    const port = await freePort();
    const t = await startTapwire(["--listen", `127.0.0.1:${port}`, "--token", "s3cret", "--tls-cert", cert.cert, "--tls-key", cert.key, "--port", "1"], { command: "serve" });
    try {
      const ca = await Bun.file(cert.cert).text();
      const transport = (token?: string) =>
        createGrpcTransport({
          baseUrl: `https://127.0.0.1:${port}`,
          nodeOptions: { ca },
          interceptors: token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [],
        });
      const code = (c: Client<typeof TapwireService>) => c.getInfo({}).then(() => "ok", (e) => ConnectError.from(e).code);
      expect(await code(createClient(TapwireService, transport()))).toBe(Code.Unauthenticated);
      expect(await code(createClient(TapwireService, transport("wrong")))).toBe(Code.Unauthenticated);
      expect(await code(createClient(TapwireService, transport("s3cret")))).toBe("ok");
      const curl = await run([CURL, "-sS", "--cacert", cert.cert, "-X", "POST", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer s3cret", "-d", "{}", `https://127.0.0.1:${port}/tapwire.v1.TapwireService/GetStats`]);
      expect(Object.keys(JSON.parse(new TextDecoder().decode(curl.stdout)))).toContain("events");
      const w = await run([TAPWIRE, "watch", "--server", `https://127.0.0.1:${port}`, "--cacert", cert.cert, "--token", "wrong"]);
      expect([w.exitCode, w.stderr.split("\n")[1]]).toEqual([2, `tapwire: https://127.0.0.1:${port}: unauthenticated: a valid bearer token is required`]);
    } finally {
      await t.stop();
    }
  }, 60_000);
});
