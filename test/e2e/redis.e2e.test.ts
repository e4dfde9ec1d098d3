// Redis with Debian's redis-server (its own directory, a loopback port, a password), started
// after tapwire, and real clients: redis-cli and Python's redis. Every command and its reply,
// from both sides, field by field; pipelines and MULTI/EXEC paired in order; a published
// message to a subscriber; the password in no output at all; the terminal's line.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { makeCert } from "./tls-setup.ts";
import { PEERS, PYTHON, freePort, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type Peer, type Tapwire } from "./harness.ts";

const REDIS_SERVER = "/usr/bin/redis-server";
const REDIS_CLI = "/usr/bin/redis-cli";
const PASSWORD = "tapwire-s3cret-pw";
let port: number;
let server: Peer | undefined;
let tapwire: Tapwire;

beforeAll(async () => {
  requireRoot();
  port = await freePort();
  // tapwire first: the server and every client start after it.
  tapwire = await startTapwire(["--port", String(port)]);
  const dir = mkdtempSync(`${tmpdir()}/tapwire-redis-`);
  server = await startServer([REDIS_SERVER, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--requirepass", PASSWORD], "127.0.0.1", port);
}, 60_000);
afterAll(async () => {
  await tapwire?.stop();
  await server?.stop();
});

const cli = (...args: string[]) => run([REDIS_CLI, "-p", String(port), "-a", PASSWORD, "--no-auth-warning", ...args]);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The client's and the server's flow of the command `statement`, once both are there. */
async function bothSides(statement: string, count = 1): Promise<{ client: JsonFlow[]; server: JsonFlow[] }> {
  const mine = (f: JsonFlow) => f.database?.statement === statement;
  await tapwire.waitForFlows(mine, 2 * count);
  const flows = tapwire.flows.filter(mine);
  return { client: flows.filter((f) => f.connection.role === "ROLE_CLIENT"), server: flows.filter((f) => f.connection.role === "ROLE_SERVER") };
}

function expectRedisFlow(f: JsonFlow, e: { role: string; pid: number; comm: string; operation: string; statement: string; reply?: string; replyType?: string; rows?: number }) {
  expect(f.protocol).toBe("PROTOCOL_REDIS");
  expect(f.request).toBeUndefined();
  expect(f.response).toBeUndefined();
  expect(f.connection.role).toBe(e.role);
  expect(f.connection.process.pid).toBe(e.pid);
  expect(f.connection.process.comm).toBe(e.comm);
  expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
  expect(f.connection.source.ip).toBe("127.0.0.1");
  expect(f.connection.tls).toBeUndefined();
  expect(f.database.system).toBe("redis");
  expect(f.database.operation).toBe(e.operation);
  expect(f.database.statement).toBe(e.statement);
  if (e.reply !== undefined) expect(f.database.reply).toBe(e.reply);
  if (e.replyType !== undefined) expect(f.database.replyType).toBe(e.replyType);
  expect(f.database.rows).toBe(e.rows === undefined ? undefined : String(e.rows));
  expect(Date.parse(f.endTime)).toBeGreaterThanOrEqual(Date.parse(f.startTime));
}

describe("Redis, captured from both sides", () => {
  test("redis-cli: AUTH (its password never shown), SET, GET, LRANGE, and an error reply", async () => {
    const runs = [await cli("SET", "greeting", "hello world"), await cli("GET", "greeting"), await cli("RPUSH", "l", "a", "b", "c"), await cli("LRANGE", "l", "0", "-1"), await cli("INCR", "greeting")];
    expect(runs.map((r) => text(r.stdout))).toEqual(["OK\n", "hello world\n", "3\n", "a\nb\nc\n", "ERR value is not an integer or out of range\n\n"]);
    const expected = [
      { operation: "SET", statement: 'SET greeting "hello world"', reply: "OK", replyType: "simple" },
      { operation: "GET", statement: "GET greeting", reply: '"hello world"', replyType: "bulk" },
      { operation: "RPUSH", statement: "RPUSH l a b c", reply: "(integer) 3", replyType: "integer" },
      { operation: "LRANGE", statement: "LRANGE l 0 -1", reply: '1) "a"\n2) "b"\n3) "c"', replyType: "array", rows: 3 },
      { operation: "INCR", statement: "INCR greeting", reply: "(error) ERR value is not an integer or out of range", replyType: "error" },
    ];
    for (const [i, e] of expected.entries()) {
      const { client, server: srv } = await bothSides(e.statement);
      expect([client.length, srv.length]).toEqual([1, 1]);
      expectRedisFlow(client[0]!, { ...e, role: "ROLE_CLIENT", pid: runs[i]!.pid, comm: "redis-cli" });
      expectRedisFlow(srv[0]!, { ...e, role: "ROLE_SERVER", pid: server!.proc.pid, comm: "redis-server" });
      // One connection: the client's port is the server's peer.
      expect(srv[0]!.connection.source).toEqual(client[0]!.connection.source);
      expect(client[0]!.missing).toBeUndefined();
    }
    const incr = (await bothSides("INCR greeting")).client[0]!;
    expect(incr.database.error).toEqual({ code: "ERR", message: "value is not an integer or out of range" });
    // Each redis-cli authenticated first: AUTH is there, its password is not.
    const auths = tapwire.flows.filter((f) => f.database?.operation === "AUTH");
    expect(auths.length).toBeGreaterThanOrEqual(10);
    for (const f of auths) expect([f.database.statement, f.database.reply]).toEqual(["AUTH (redacted)", "OK"]);
  }, 60_000);

  test("a Python pipeline (four commands in one write) and a MULTI/EXEC transaction: each reply with its own command", async () => {
    const p = await run([PYTHON, `${PEERS}/redis_client.py`, "pipeline", String(port), PASSWORD]);
    expect(text(p.stdout)).toBe("[True, 2, b'2', []]\n");
    const pipeline: [string, string, string, number?][] = [
      ["SET p 1", "OK", "simple"],
      ["INCRBY p 1", "(integer) 2", "integer"], // what the library sends for incr()
      ["GET p", '"2"', "bulk"],
      ["LRANGE missing 0 -1", "(empty array)", "array", 0],
    ];
    for (const [statement, reply, replyType, rows] of pipeline) {
      const { client, server: srv } = await bothSides(statement);
      for (const [f, role, pid] of [[client[0]!, "ROLE_CLIENT", p.pid], [srv[0]!, "ROLE_SERVER", server!.proc.pid]] as const) {
        expectRedisFlow(f, { role, pid, comm: role === "ROLE_CLIENT" ? "python3" : "redis-server", operation: statement.split(" ")[0]!, statement, reply, replyType, rows });
      }
    }
    const m = await run([PYTHON, `${PEERS}/redis_client.py`, "multi", String(port), PASSWORD]);
    expect(text(m.stdout)).toBe("[True, 15]\n");
    for (const [statement, reply] of [["MULTI", "OK"], ["SET t 10", "QUEUED"], ["INCRBY t 5", "QUEUED"], ["EXEC", "1) OK\n2) (integer) 15"]]) {
      const { client } = await bothSides(statement);
      expect([client[0]!.database.statement, client[0]!.database.reply, client[0]!.connection.process.pid]).toEqual([statement, reply, m.pid]);
    }
  }, 60_000);

  test("pub/sub: the SUBSCRIBE's reply, then a message published by redis-cli reaches the subscriber as a flow of its own", async () => {
    const sub = startPeer([PYTHON, `${PEERS}/redis_client.py`, "subscribe", String(port), PASSWORD]);
    try {
      await sub.waitLine((l) => l === "subscribed");
      const pub = await cli("PUBLISH", "news", "tapwire says hi");
      expect(text(pub.stdout)).toBe("1\n");
      await sub.waitLine((l) => l === "tapwire says hi");
      const { client } = await bothSides("SUBSCRIBE news");
      expect(client[0]!.database.reply).toBe('1) "subscribe"\n2) "news"\n3) (integer) 1');
      const pushed = await waitFor("the pushed message at the subscriber", () => tapwire.flows.find((f) => f.database?.operation === "(pushed)" && f.connection.role === "ROLE_CLIENT" && f.connection.process.pid === sub.proc.pid));
      expect(pushed.database).toEqual({ system: "redis", operation: "(pushed)", reply: '1) "message"\n2) "news"\n3) "tapwire says hi"', replyType: "array", rows: "3" });
      expect(pushed.missing).toBeUndefined();
      const published = (await bothSides('PUBLISH news "tapwire says hi"')).client[0]!;
      expect(published.database.reply).toBe("(integer) 1");
    } finally {
      await sub.stop();
    }
  }, 60_000);

  test("the password is in no line tapwire printed", async () => {
    expect(tapwire.stdout.length).toBeGreaterThanOrEqual(30);
    expect(tapwire.stdout.filter((l) => l.includes(PASSWORD))).toEqual([]);
  });
});

describe("Redis over TLS", () => {
  test("redis-cli --tls to redis-server's TLS port: the plaintext commands and replies, from OpenSSL on both sides", async () => {
    const cert = await makeCert();
    const p3 = await freePort();
    const t = await startTapwire(["--port", String(p3)]);
    const dir = mkdtempSync(`${tmpdir()}/tapwire-redis-`);
    const srv = await startServer(
      [REDIS_SERVER, "--port", "0", "--tls-port", String(p3), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--tls-cert-file", cert.cert, "--tls-key-file", cert.key, "--tls-ca-cert-file", cert.cert, "--tls-auth-clients", "no"],
      "127.0.0.1",
      p3,
    );
    try {
      const tls = (...args: string[]) => run([REDIS_CLI, "-p", String(p3), "--tls", "--cacert", cert.cert, ...args]);
      const set = await tls("SET", "secure", "over tls");
      const get = await tls("GET", "secure");
      expect([text(set.stdout), text(get.stdout)]).toEqual(["OK\n", "over tls\n"]);
      await t.waitForFlows((f) => f.database?.operation === "GET", 2);
      await Bun.sleep(200);
      const flows = t.flows.filter((f) => f.database && f.database.operation !== "COMMAND");
      expect(flows.map((f) => `${f.connection.role} ${f.database.statement} → ${f.database.reply}`).sort()).toEqual([
        'ROLE_CLIENT GET secure → "over tls"',
        'ROLE_CLIENT SET secure "over tls" → OK',
        'ROLE_SERVER GET secure → "over tls"',
        'ROLE_SERVER SET secure "over tls" → OK',
      ]);
      for (const f of flows) {
        expect(f.protocol).toBe("PROTOCOL_REDIS");
        expect(f.connection.tls).toBe(true);
        expect(f.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+$/);
        expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: p3 });
        expect(f.connection.process.pid).toBe(f.connection.role === "ROLE_SERVER" ? srv.proc.pid : f.database.operation === "SET" ? set.pid : get.pid);
        expect(f.missing).toBeUndefined();
      }
    } finally {
      await t.stop();
      await srv.stop();
    }
  }, 60_000);
});

describe("the terminal", () => {
  test("a line per command: system, statement, reply, latency, process, role", async () => {
    const p2 = await freePort();
    const t = await startTapwire(["--port", String(p2)], { json: false });
    const dir = mkdtempSync(`${tmpdir()}/tapwire-redis-`);
    const srv = await startServer([REDIS_SERVER, "--port", String(p2), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], "127.0.0.1", p2);
    try {
      const r = await run([REDIS_CLI, "-p", String(p2), "SET", "k", "v"]);
      const lines = await waitFor("two lines", () => (t.stdout.length >= 2 ? t.stdout.slice() : undefined));
      expect(lines.find((l) => l.endsWith(" client"))).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} redis SET k v → OK (\\d\\.\\d\\d|\\d{2,}) ms redis-cli\\[${r.pid}\\] client$`));
      expect(lines.find((l) => l.endsWith(" server"))).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} redis SET k v → OK (\\d\\.\\d\\d|\\d{2,}) ms redis-server\\[${srv.proc.pid}\\] server$`));
    } finally {
      await t.stop();
      await srv.stop();
    }
  }, 60_000);
});
