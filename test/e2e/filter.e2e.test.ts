// One filter language in the CLI and the API, with real traffic: `capture --filter` prints
// exactly the flows the expression names, `watch --filter` gets the same ones from serve,
// ListFlows with FlowFilter.expression too; a bad expression is a usage error (exit 2) on the
// command line and INVALID_ARGUMENT with its column in the API. Also serve's --allow-host.
import { describe, expect, test } from "bun:test";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";
import { PEERS, PYTHON, TAPWIRE, freePort, fromB64, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type JsonFlowEvent, type Peer } from "./harness.ts";

const CURL = "/usr/bin/curl";
const NODE = "/usr/bin/node";
requireRoot();

const EXPRESSION = 'method == POST or status >= 400 or req.header["x-pick"] == yes';

/** Five requests; the expression picks three of them (a POST, a 404, a header). */
async function traffic(site: number) {
  const base = `http://127.0.0.1:${site}`;
  const curl = async (...args: string[]) => expect((await run([CURL, "-sS", "-o", "/dev/null", ...args])).exitCode).toBe(0);
  await curl(`${base}/text?n=1`);
  await curl("-H", "Content-Type: application/json", "--data-binary", '{"pick":"post"}', `${base}/echo?n=2`);
  await curl(`${base}/nothing-here?n=3`);
  await curl("-H", "X-Pick: yes", `${base}/text?n=4`);
  await curl("-H", "X-Pick: no", `${base}/text?n=5`);
}

const picked = (flows: JsonFlow[]) =>
  flows
    .map((f) => [f.connection.role, f.request.method, f.request.path, f.response.status])
    .sort((a, b) => String(a[2]).localeCompare(String(b[2])) || String(a[0]).localeCompare(String(b[0])));
const WANT = [
  ["ROLE_CLIENT", "POST", "/echo?n=2", 200],
  ["ROLE_SERVER", "POST", "/echo?n=2", 200],
  ["ROLE_CLIENT", "GET", "/nothing-here?n=3", 404],
  ["ROLE_SERVER", "GET", "/nothing-here?n=3", 404],
  ["ROLE_CLIENT", "GET", "/text?n=4", 200],
  ["ROLE_SERVER", "GET", "/text?n=4", 200],
];

describe("--filter and FlowFilter.expression", () => {
  test("capture --filter prints exactly the flows the expression names, whole", async () => {
    const site = await freePort();
    const t = await startTapwire(["--port", String(site), "--filter", EXPRESSION]);
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    try {
      await traffic(site);
      await t.waitForFlows(() => true, 6);
      await Bun.sleep(300); // the two flows left out would have shown by now
      await t.stop();
      expect(picked(t.flows)).toEqual(WANT);
      const post = t.flows.find((f) => f.request.method === "POST" && f.connection.role === "ROLE_SERVER")!;
      expect(fromB64(post.request.body).toString()).toBe('{"pick":"post"}');
      expect(fromB64(post.response.body).toString()).toBe('{"pick":"post"}');
      expect(post.connection.process.comm).toBe("python3");
    } finally {
      if (t.proc.exitCode === null) await t.stop();
      await server.stop();
    }
  }, 60_000);

  test("serve: watch --filter and ListFlows with the expression agree with capture; a bad one says where", async () => {
    const site = await freePort();
    const apiPort = await freePort();
    const t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--port", String(site)], { command: "serve" });
    const watch = startPeer([TAPWIRE, "watch", "--server", `http://127.0.0.1:${apiPort}`, "--json", "--filter", EXPRESSION]);
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    try {
      await waitFor("watch to subscribe", async () => ((await api(apiPort).getStats({})).subscribers === 1 ? true : undefined));
      await traffic(site);
      const watched = await waitFor("six flows at watch", () => {
        const flows = watch.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as JsonFlow);
        return flows.length >= 6 ? flows : undefined;
      });
      await Bun.sleep(300);
      expect(picked(watched)).toEqual(WANT);
      expect(watch.lines.filter((l) => l.startsWith("{"))).toHaveLength(6);

      const listed = await api(apiPort).listFlows({ filter: { expression: EXPRESSION }, pageSize: 100 });
      expect(listed.flows.map((f) => [f.request?.method, f.request?.path, f.response?.status]).sort()).toEqual(WANT.map((w) => [w[1], w[2], w[3]]).sort());
      const all = await api(apiPort).listFlows({ pageSize: 100 });
      expect(all.flows).toHaveLength(10);

      const err = await api(apiPort)
        .listFlows({ filter: { expression: "status >= 500 and" } })
        .then(() => undefined, (e) => ConnectError.from(e));
      expect(err?.code).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toBe('filter.expression: at column 18: expected a field name (such as status, host, path), "not" or "(", found the end of the filter');
    } finally {
      await watch.stop();
      await t.stop();
      await server.stop();
    }
  }, 60_000);

  test("a mistake on the command line is one line and exit 2, before anything starts", async () => {
    for (const [argv, line] of [
      [["capture", "--filter", "status = 500"], 'tapwire: --filter: at column 8: "=" alone is not an operator: compare with "=="'],
      [["watch", "--filter", "stauts >= 500"], 'tapwire: --filter: at column 1: unknown field "stauts" (did you mean status?)'],
      [["capture", "--filter", "duration > 2kb"], 'tapwire: --filter: at column 12: unknown unit "kb" for duration (ns, us, µs, ms, s, m, h)'],
    ] as const) {
      const r = await run([TAPWIRE, ...argv]);
      expect([r.exitCode, r.stderr.trim(), r.stdout.length]).toEqual([2, line, 0]);
    }
  });

  test("tapwire help filter explains the language", async () => {
    const r = await run([TAPWIRE, "help", "filter"]);
    expect(r.exitCode).toBe(0);
    const text = new TextDecoder().decode(r.stdout);
    expect(text).toContain("Filter expressions (--filter of capture and watch, FlowFilter.expression");
    expect(text).toContain('header["N"] req.header["N"] resp.header["N"]');
  });
});

describe("--filter with --live", () => {
  test("a streaming call: the side the filter names has its start, messages and end; the other side has nothing", async () => {
    const port = await freePort();
    const t = await startTapwire(["--live", "--port", String(port), "--filter", "role == client and grpc.status == OK"]);
    let server: Peer | undefined;
    try {
      server = await startServer([NODE, `${PEERS}/grpc_peer.mjs`, "server", String(port)], "127.0.0.1", port);
      const client = startPeer([NODE, `${PEERS}/grpc_peer.mjs`, "tick", String(port), "5"]);
      await waitFor("the stream's end", () => client.lines.includes("done"), 15_000);
      const [flow] = await t.waitForFlows((f) => f.request?.path === "/tapwire.test.Echo/Tick", 1);
      await Bun.sleep(300);
      await t.stop();
      const events = t.events as JsonFlowEvent[];
      expect(new Set(events.map((e) => e.flowId))).toEqual(new Set([flow.id]));
      expect(flow.connection.role).toBe("ROLE_CLIENT");
      expect(Object.keys(events[0]!)).toContain("started");
      expect(events.flatMap((e) => e.messages?.messages ?? []).filter((m: any) => m.sender === "ROLE_SERVER")).toHaveLength(5);
      expect(events.at(-1)!.ended).toEqual(flow);
    } finally {
      await server?.stop();
      if (t.proc.exitCode === null) await t.stop();
    }
  }, 60_000);
});

describe("serve --allow-host", () => {
  test("a name given is answered; others still refused", async () => {
    const apiPort = await freePort();
    const t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--port", "1", "--allow-host", "tapwire.internal"], { command: "serve" });
    try {
      const status = async (host: string) => await (run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${host}`, "-H", "Content-Type: application/json", "-d", "{}", `http://127.0.0.1:${apiPort}/tapwire.v1.TapwireService/GetInfo`]).then((r) => new TextDecoder().decode(r.stdout)));
      expect(await status(`tapwire.internal:${apiPort}`)).toBe("200");
      expect(await status(`TAPWIRE.internal:${apiPort}`)).toBe("200");
      expect(await status(`localhost:${apiPort}`)).toBe("200");
      expect(await status(`evil.example:${apiPort}`)).toBe("403");
      expect(await status(`tapwire.internal.evil.example:${apiPort}`)).toBe("403");
    } finally {
      await t.stop();
    }
  }, 30_000);

  test("--allow-host takes a bare host name", async () => {
    const r = await run([TAPWIRE, "serve", "--allow-host", "http://x.example:80"]);
    expect([r.exitCode, r.stderr.trim()]).toEqual([2, 'tapwire: --allow-host: "http://x.example:80" is not a host name (give the name alone, without port or scheme)']);
  });
});

function api(port: number) {
  return createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
}
