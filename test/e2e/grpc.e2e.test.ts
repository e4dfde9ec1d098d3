// gRPC end to end under the real dist/tapwire: @grpc/grpc-js client and server (unary, an
// error, server, client and bidirectional streaming), in cleartext and over TLS, with gzip
// message compression, and a python3-grpcio client. Every call checked field by field.
import { beforeAll, describe, expect, test } from "bun:test";
import { realpathSync } from "node:fs";
import { PEERS, ROOT, freePort, fromB64, requireRoot, run, startServer, startTapwire, waitFor, type JsonFlow } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";

const NODE = "/usr/bin/node";
const NODE_EXE = realpathSync(NODE);
const PYTHON = "/usr/bin/python3";
let cert: Cert;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
});

const isClient = (f: JsonFlow) => f.connection.role === "ROLE_CLIENT";
const isServer = (f: JsonFlow) => f.connection.role === "ROLE_SERVER";
const header = (headers: { name: string; value: string }[], name: string) => headers.find((h) => h.name === name)?.value;

/** The messages of one side: their JSON by field number, and the raw bytes as base64. */
const jsons = (messages: JsonFlow[] | undefined) => (messages ?? []).map((m) => JSON.parse(m.json));

/** What each call of grpc_peer.mjs's client must look like, on either side. */
function expectEchoCalls(flows: JsonFlow[], e: { pid: number; role: string; tls: boolean; gzip: boolean; port: number }) {
  const calls = flows.sort((a, b) => a.http2.streamId - b.http2.streamId);
  expect(calls.map((f) => `${f.grpc.service}/${f.grpc.method}`)).toEqual([
    "tapwire.test.Echo/Say",
    "tapwire.test.Echo/Say",
    "tapwire.test.Echo/Count",
    "tapwire.test.Echo/Collect",
    "tapwire.test.Echo/Chat",
  ]);
  for (const f of calls) {
    expect(f.protocol).toBe("PROTOCOL_GRPC");
    expect(f.connection.role).toBe(e.role);
    expect(f.connection.process).toEqual({ pid: e.pid, comm: "node", exe: NODE_EXE });
    expect(f.connection.tls ?? false).toBe(e.tls);
    // Over TLS too (node's runs over memory buffers): the socket it moves the bytes on.
    expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: e.port });
    expect(f.connection.source.ip).toBe("127.0.0.1");
    if (e.tls) expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\./);
    expect(f.request.method).toBe("POST");
    expect(f.request.path).toBe(`/${f.grpc.service}/${f.grpc.method}`);
    expect(header(f.request.headers, "content-type")).toBe("application/grpc");
    expect(f.response.status).toBe(200);
    expect(f.missing).toBeUndefined();
    // Requests are compressed when asked for; replies are not (the server was not asked to).
    for (const m of f.grpc.requestMessages) expect(m.compressed ?? false).toBe(e.gzip);
    expect(f.grpc.requestEncoding ?? "").toBe(e.gzip ? "gzip" : "");
  }
  const [say, missing, count, collect, chat] = calls;
  expect(jsons(say.grpc.requestMessages)).toEqual([{ "1": "tapwire", "2": "0", "3": { "1": ["x", "y"] } }]);
  expect(jsons(say.grpc.responseMessages)).toEqual([{ "1": "hello tapwire", "2": "0" }]);
  expect(fromB64(say.grpc.responseMessages[0].data).toString("latin1")).toBe("\x0a\x0dhello tapwire\x10\x00");
  expect(say.grpc.responseMessages[0].size).toBe(17);
  expect([say.grpc.status ?? 0, say.grpc.statusName]).toEqual([0, "OK"]);
  expect(say.grpc.trailersOnly).toBeUndefined();
  expect(header(say.response.trailers, "grpc-status")).toBe("0");

  expect(jsons(missing.grpc.requestMessages)).toEqual([{ "1": "missing", "2": "0", "3": { "1": ["x", "y"] } }]);
  expect(missing.grpc.responseMessages).toBeUndefined();
  expect([missing.grpc.status, missing.grpc.statusName, missing.grpc.statusMessage]).toEqual([5, "NOT_FOUND", "no one called missing (ü)"]);
  expect(missing.grpc.trailersOnly).toBe(true);

  expect(jsons(count.grpc.requestMessages)).toEqual([{ "1": "n", "2": "3" }]);
  expect(jsons(count.grpc.responseMessages)).toEqual([1, 2, 3].map((i) => ({ "1": `n ${i}`, "2": String(i) })));
  expect(count.grpc.statusName).toBe("OK");

  expect(jsons(collect.grpc.requestMessages)).toEqual(["a", "b", "c"].map((n) => ({ "1": n })));
  expect(jsons(collect.grpc.responseMessages)).toEqual([{ "1": "a+b+c", "2": "3" }]);

  expect(jsons(chat.grpc.requestMessages)).toEqual([{ "1": "x" }, { "1": "y" }]);
  expect(jsons(chat.grpc.responseMessages)).toEqual([{ "1": "re: x", "2": "1" }, { "1": "re: y", "2": "2" }]);
  expect(chat.grpc.statusName).toBe("OK");
}

describe("grpc-js client and server", () => {
  for (const [name, tls, gzip] of [["cleartext", false, false], ["TLS", true, false], ["cleartext, gzip-compressed requests", false, true]] as const) {
    test(`${name}: unary, an error status, server, client and bidirectional streaming; both sides`, async () => {
      const port = await freePort();
      // node does TLS over memory buffers: its TLS connections have no known socket, so no
      // port to filter on; they are told apart by process instead.
      const tapwire = await startTapwire(tls ? ["--comm", "node"] : ["--port", String(port)]);
      const server = await startServer([NODE, `${PEERS}/grpc_peer.mjs`, "server", String(port), ...(tls ? [cert.cert, cert.key] : [])], "127.0.0.1", port);
      try {
        const r = await run([NODE, `${PEERS}/grpc_peer.mjs`, "client", String(port), ...(tls ? [cert.cert] : []), ...(gzip ? ["gzip"] : [])]);
        expect(new TextDecoder().decode(r.stdout)).toBe("hello tapwire\nerror 5 no one called missing (ü)\nn 1,n 2,n 3\na+b+c\nre: x,re: y\n");
        const ours = (f: JsonFlow) => f.protocol === "PROTOCOL_GRPC" && [r.pid, server.proc.pid].includes(f.connection.process.pid);
        const flows = await tapwire.waitForFlows(ours, 10);
        expectEchoCalls(flows.filter(isClient), { pid: r.pid, role: "ROLE_CLIENT", tls, gzip, port });
        expectEchoCalls(flows.filter(isServer), { pid: server.proc.pid, role: "ROLE_SERVER", tls, gzip, port });
      } finally {
        await tapwire.stop();
        await server.stop();
      }
    }, 60_000);
  }
});

describe("messages read with their schema", () => {
  test("--proto-path: field names and types; --proto-set: the same from a descriptor set; a bad path is a usage error", async () => {
    const set = `${cert.dir}/echo.binpb`;
    const built = Bun.spawnSync([`${ROOT}/node_modules/.bin/buf`, "build", PEERS, "--path", `${PEERS}/echo.proto`, "-o", set], { stderr: "pipe" });
    expect(built.exitCode).toBe(0);
    for (const schema of [["--proto-path", PEERS], ["--proto-set", set]]) {
      const port = await freePort();
      const tapwire = await startTapwire(["--port", String(port), ...schema]);
      const server = await startServer([NODE, `${PEERS}/grpc_peer.mjs`, "server", String(port)], "127.0.0.1", port);
      try {
        const r = await run([NODE, `${PEERS}/grpc_peer.mjs`, "client", String(port)]);
        expect(r.exitCode).toBe(0);
        const flows = (await tapwire.waitForFlows(() => true, 10)).filter(isClient).sort((a, b) => a.http2.streamId - b.http2.streamId);
        const say = flows[0].grpc;
        expect(say.requestMessages.map((m: JsonFlow) => [m.type, JSON.parse(m.json)])).toEqual([["tapwire.test.EchoRequest", { name: "tapwire", meta: { tags: ["x", "y"] } }]]);
        expect(say.responseMessages.map((m: JsonFlow) => [m.type, JSON.parse(m.json)])).toEqual([["tapwire.test.EchoReply", { message: "hello tapwire" }]]);
        const count = flows[2].grpc;
        expect(count.responseMessages.map((m: JsonFlow) => JSON.parse(m.json))).toEqual([1, 2, 3].map((i) => ({ message: `n ${i}`, index: i })));
      } finally {
        await tapwire.stop();
        await server.stop();
      }
    }
    const bad = Bun.spawnSync([`${ROOT}/dist/tapwire`, "--proto-path", "/nonexistent/protos"], { stderr: "pipe" });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toMatch(/^tapwire: --proto-path \/nonexistent\/protos: no such directory\n$/);
  }, 60_000);
});

describe("terminal output", () => {
  test("a line per call with its status and message counts; -v prints each message", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port), "-v", "--no-color"], { json: false });
    const server = await startServer([NODE, `${PEERS}/grpc_peer.mjs`, "server", String(port)], "127.0.0.1", port);
    try {
      const r = await run([NODE, `${PEERS}/grpc_peer.mjs`, "client", String(port)]);
      expect(r.exitCode).toBe(0);
      const line = (re: RegExp) => waitFor(`a line matching ${re}`, () => tapwire.stdout.find((l) => re.test(l)));
      const url = `http://127.0.0.1:${port}/tapwire.test.Echo`;
      await line(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} gRPC ${url}/Say OK 1→1 msgs [\\d.]+ ms node\\[${r.pid}\\] client h2#1$`));
      await line(new RegExp(`^\\S+ gRPC ${url}/Say NOT_FOUND: no one called missing \\(ü\\) 1→0 msgs [\\d.]+ ms node\\[${r.pid}\\] client h2#3$`));
      await line(new RegExp(`^\\S+ gRPC ${url}/Count OK 1→3 msgs [\\d.]+ ms node\\[${server.proc.pid}\\] server h2#5$`));
      await line(/^> message 1 \(19 B\): \{"1":"tapwire","2":"0","3":\{"1":\["x","y"\]\}\}$/);
      await line(/^< message 3 \(7 B\): \{"1":"n 3","2":"3"\}$/);
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("python3-grpcio client", () => {
  test("a unary call from Python to the node server", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["--port", String(port)]);
    const server = await startServer([NODE, `${PEERS}/grpc_peer.mjs`, "server", String(port)], "127.0.0.1", port);
    try {
      const r = await run([PYTHON, `${PEERS}/grpc_client.py`, String(port), "from python"]);
      expect(new TextDecoder().decode(r.stdout)).toBe("hello from python\n");
      const flows = await tapwire.waitForFlows(() => true, 2);
      const client = flows.find(isClient);
      expect(client.connection.process).toEqual({ pid: r.pid, comm: "python3", exe: realpathSync(PYTHON) });
      expect(header(client.request.headers, "user-agent")).toMatch(/^grpc-python\//);
      for (const f of flows) {
        expect(f.protocol).toBe("PROTOCOL_GRPC");
        expect(f.grpc.service).toBe("tapwire.test.Echo");
        expect(f.grpc.method).toBe("Say");
        expect(jsons(f.grpc.requestMessages)).toEqual([{ "1": "from python" }]);
        expect(jsons(f.grpc.responseMessages)).toEqual([{ "1": "hello from python", "2": "0" }]);
        expect(f.grpc.statusName).toBe("OK");
        expect(f.missing).toBeUndefined();
      }
    } finally {
      await tapwire.stop();
      await server.stop();
    }
  }, 60_000);
});
