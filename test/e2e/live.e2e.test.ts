// Flows while they are open, with real gRPC peers (grpc-js) started after tapwire: a
// server-streaming call sending one message every 100 ms and a bidi chat, watched with
// `tapwire capture --json --live`, through `tapwire serve`'s WatchFlows (live) and ListFlows,
// and in the terminal. Each message is visible soon after the client has it, in order, read
// as it was sent; the final flow is the one a completed-only watcher gets.
import { beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";
import { Role, type Flow, type FlowEvent } from "../../src/gen/tapwire/v1/flow_pb.ts";
import { PEERS, freePort, requireRoot, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type JsonFlowEvent, type Peer, type Tapwire } from "./harness.ts";

const NODE = "/usr/bin/node";
const PYTHON = "/usr/bin/python3";
const GRPC_PEER = `${PEERS}/grpc_peer.mjs`;

beforeAll(() => requireRoot());

/** The reply the test server sends as message i, read by field number (grpc-js writes the
 * index even when it is 0). */
const tick = (i: number) => ({ "1": `tick ${i}`, "2": String(i) });

/** "got I MS" lines of a grpc_peer client: when it had each reply. */
function receivedAt(client: Peer): Map<number, number> {
  const out = new Map<number, number>();
  for (const l of client.lines) {
    const m = /^got (\d+) (\d+)$/.exec(l);
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

/** A flow without what two captures of the same traffic name differently: ids, and times
 * (each tapwire reads the wall clock's offset from the kernel's once, microseconds apart). */
const sameTraffic = (f: JsonFlow) => ({ ...f, id: undefined, startTime: undefined, endTime: undefined, connection: { ...f.connection, id: undefined } });

describe("--json --live", () => {
  test("a server-streaming call: started, each message as it arrives, in order, then the flow plain --json prints", async () => {
    const port = await freePort();
    const live = await startTapwire(["--live", "--port", String(port)]);
    const plain = await startTapwire(["--port", String(port)]);
    let server: Peer | undefined;
    try {
      server = await startServer([NODE, GRPC_PEER, "server", String(port)], "127.0.0.1", port);
      const client = startPeer([NODE, GRPC_PEER, "tick", String(port), "20"]);
      await waitFor("the stream's end", () => client.lines.includes("done"), 15_000);
      const clientFlow = (await live.waitForFlows((f) => f.connection.role === "ROLE_CLIENT" && f.request?.path === "/tapwire.test.Echo/Tick", 1))[0];
      const events = live.events.filter((e: JsonFlowEvent) => e.flowId === clientFlow.id);
      // started, then messages, then ended — nothing after the end.
      expect(Object.keys(events[0]).filter((k) => k !== "flowId" && k !== "arrivedMs")).toEqual(["started"]);
      expect(events.at(-1).ended).toEqual(clientFlow);
      const started = events[0].started;
      expect(started.open).toBe(true);
      expect(started.endTime).toBeUndefined();
      expect(started.response).toBeUndefined();
      expect(started.grpc).toEqual({ service: "tapwire.test.Echo", method: "Tick" });
      expect(started.request.path).toBe("/tapwire.test.Echo/Tick");
      const messages = events.slice(1, -1).flatMap((e: JsonFlowEvent) => e.messages.messages.map((m: any) => ({ ...m, arrivedMs: e.arrivedMs })));
      const fromClient = messages.filter((m: any) => m.sender === "ROLE_CLIENT");
      const fromServer = messages.filter((m: any) => m.sender === "ROLE_SERVER");
      expect(fromClient.map((m: any) => JSON.parse(m.grpc.json))).toEqual([{ "1": "tick", "2": "20" }]);
      expect(fromServer.map((m: any) => m.index ?? 0)).toEqual([...Array(20).keys()]);
      expect(fromServer.map((m: any) => JSON.parse(m.grpc.json))).toEqual([...Array(20).keys()].map(tick));
      // Each message as the final flow has it, and seen soon after the client had it.
      expect(fromServer.map((m: any) => m.grpc)).toEqual(clientFlow.grpc.responseMessages);
      const got = receivedAt(client);
      const lateness = fromServer.map((m: any, i: number) => m.arrivedMs - got.get(i)!);
      expect(lateness[0]).toBeLessThan(300);
      for (const ms of lateness) expect(ms).toBeLessThan(1000);
      // Its messages' times run with the stream: ~100 ms apart, not all at the end.
      const times = fromServer.map((m: any) => Date.parse(m.time));
      expect(times.at(-1)! - times[0]!).toBeGreaterThan(1500);
      // The server's side too, and both final flows are what plain --json prints.
      const serverFlow = live.flows.find((f) => f.connection.role === "ROLE_SERVER" && f.request?.path === "/tapwire.test.Echo/Tick");
      expect(live.events.filter((e: JsonFlowEvent) => e.flowId === serverFlow.id && e.messages).length).toBeGreaterThanOrEqual(20);
      const plainFlows = await plain.waitForFlows((f) => f.request?.path === "/tapwire.test.Echo/Tick", 2);
      for (const f of [clientFlow, serverFlow]) expect(sameTraffic(f)).toEqual(sameTraffic(plainFlows.find((p) => p.connection.role === f.connection.role)));
      expect(clientFlow.grpc.status).toBe(0);
      expect(clientFlow.open).toBeUndefined();
    } finally {
      await server?.stop();
      await live.stop();
      await plain.stop();
    }
  }, 60_000);
});

describe("Server-Sent Events", () => {
  test("a Python server sends an event every 100 ms to curl: each is seen as it comes, and the final flow has them all", async () => {
    const port = await freePort();
    const live = await startTapwire(["--live", "--port", String(port)]);
    let server: Peer | undefined;
    try {
      server = await startServer([PYTHON, `${PEERS}/sse_server.py`, String(port)], "127.0.0.1", port);
      const curl = startPeer(["/usr/bin/curl", "-sN", `http://127.0.0.1:${port}/events?n=12`]);
      await waitFor("curl's end", () => curl.proc.exitCode !== null, 10_000);
      expect(curl.proc.exitCode).toBe(0);
      const flows = await live.waitForFlows((f) => f.request?.path === "/events?n=12", 2);
      const sent = new Map<number, number>();
      for (const l of server.lines) {
        const m = /^sent (\d+) (\d+)$/.exec(l);
        if (m) sent.set(Number(m[1]), Number(m[2]));
      }
      expect(sent.size).toBe(12);
      const events = (i: number) => ({ id: String(i), event: "tick", data: `tick ${i}\nsecond line` });
      for (const f of flows) {
        const mine = live.events.filter((e: JsonFlowEvent) => e.flowId === f.id);
        expect(mine[0].started.open).toBe(true);
        expect(mine[0].started.response.status).toBe(200);
        expect(mine[0].started.response.headers).toContainEqual({ name: "Content-Type", value: "text/event-stream" });
        expect(mine.at(-1).ended).toEqual(f);
        const messages = mine.slice(1, -1).flatMap((e: JsonFlowEvent) => e.messages.messages.map((m: any) => ({ ...m, arrivedMs: e.arrivedMs })));
        // The retry field came with the first (data-less) block: not an event.
        expect(messages.map((m: any) => m.sse)).toEqual([...Array(12).keys()].map(events));
        expect(messages.map((m: any) => m.index ?? 0)).toEqual([...Array(12).keys()]);
        expect(messages.every((m: any) => m.sender === "ROLE_SERVER")).toBe(true);
        expect(messages[0].arrivedMs - sent.get(0)!).toBeLessThan(300);
        for (const [i, m] of messages.entries()) expect(m.arrivedMs - sent.get(i)!).toBeLessThan(1000);
        // The final flow: the events, and the body as it was sent.
        expect(f.messages.map((m: any) => m.sse)).toEqual([...Array(12).keys()].map(events));
        expect(f.open).toBeUndefined();
        expect(f.response.status).toBe(200);
        expect(Buffer.from(f.response.body, "base64").toString()).toStartWith(": a comment, ignored\nretry: 500\n\nid: 0\nevent: tick\ndata: tick 0\n");
      }
    } finally {
      await server?.stop();
      await live.stop();
    }
  }, 60_000);
});

describe("tapwire serve", () => {
  let port: number;
  let api: number;
  let tapwire: Tapwire;
  let server: Peer | undefined;
  beforeAll(async () => {
    port = await freePort();
    api = await freePort();
    tapwire = await startTapwire(["--listen", `127.0.0.1:${api}`, "--port", String(port)], { command: "serve" });
    server = await startServer([NODE, GRPC_PEER, "server", String(port)], "127.0.0.1", port);
  }, 60_000);

  test("a bidi chat: WatchFlows live sees it start, each message both ways as it comes, and its end; ListFlows shows it open meanwhile", async () => {
    try {
      const client = createClient(TapwireService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${api}` }));
      const filter = { pathPrefix: "/tapwire.test.Echo/Chat", processNames: ["node"] };
      const liveAbort = new AbortController();
      const doneAbort = new AbortController();
      const liveEvents: { ev: FlowEvent; at: number }[] = [];
      const completed: Flow[] = [];
      const watching = (async () => {
        for await (const r of client.watchFlows({ filter, live: true }, { signal: liveAbort.signal })) {
          if (r.event.case === "flowEvent") liveEvents.push({ ev: r.event.value, at: Date.now() });
        }
      })().catch(() => {});
      const watchingDone = (async () => {
        for await (const r of client.watchFlows({ filter }, { signal: doneAbort.signal })) {
          if (r.event.case === "flow") completed.push(r.event.value);
          else throw new Error(`a completed-only watcher got ${r.event.case}`);
        }
      })().catch((e) => {
        if (!doneAbort.signal.aborted) throw e;
      });
      await Bun.sleep(300); // both subscribed
      const chat = startPeer([NODE, GRPC_PEER, "chat", String(port), "10"]);
      await waitFor("five replies", () => receivedAt(chat).size >= 5, 10_000);
      // Meanwhile the history has both sides' flows, open, with the messages so far.
      const open = await client.listFlows({ filter });
      expect(open.flows.length).toBe(2);
      for (const f of open.flows) {
        expect(f.open).toBe(true);
        expect(f.endTime).toBeUndefined();
        expect(f.grpc!.requestMessages.length).toBeGreaterThanOrEqual(4);
        expect(f.grpc!.responseMessages.length).toBeGreaterThanOrEqual(3);
        expect((await client.getFlow({ id: f.id })).flow!.open).toBe(true);
      }
      await waitFor("the chat's end", () => chat.lines.includes("done"), 10_000);
      await waitFor("both flows completed", () => completed.length >= 2, 10_000);
      await Bun.sleep(200);
      liveAbort.abort();
      doneAbort.abort();
      await Promise.all([watching, watchingDone]);
      expect(completed).toHaveLength(2);
      const got = receivedAt(chat);
      for (const done of completed) {
        const mine = liveEvents.filter((e) => e.ev.flowId === done.id);
        expect(mine[0]!.ev.event.case).toBe("started");
        expect(mine.at(-1)!.ev.event.case).toBe("ended");
        expect(mine.at(-1)!.ev.event.value).toEqual(done);
        const messages = mine.slice(1, -1).flatMap((e) => (e.ev.event.case === "messages" ? e.ev.event.value.messages.map((m) => ({ m, at: e.at })) : []));
        const side = (role: Role) => messages.filter((x) => x.m.sender === role);
        // Every message of the final flow came live first, in order, each side numbered from 0.
        expect(side(Role.CLIENT).map((x) => x.m.message.value)).toEqual(done.grpc!.requestMessages);
        expect(side(Role.SERVER).map((x) => x.m.message.value)).toEqual(done.grpc!.responseMessages);
        expect(side(Role.CLIENT).map((x) => x.m.index)).toEqual([...Array(10).keys()]);
        expect(side(Role.SERVER).map((x) => x.m.index)).toEqual([...Array(10).keys()]);
        expect(done.grpc!.requestMessages.map((m) => m.json)).toEqual([...Array(10).keys()].map((i) => JSON.stringify({ "1": `say ${i}` })));
        // The first reply was visible soon after the client had it.
        expect(side(Role.SERVER)[0]!.at - got.get(1)!).toBeLessThan(300);
      }
      // Once ended, the history's flow is the final one.
      for (const done of completed) expect((await client.getFlow({ id: done.id })).flow).toEqual(done);
    } finally {
      await server?.stop();
      await tapwire.stop();
    }
  }, 60_000);
});

describe("the terminal", () => {
  test("a streaming call gets a line while it is open and, with -v, each message as it comes", async () => {
    const port = await freePort();
    const tapwire = await startTapwire(["-v", "--no-color", "--port", String(port)], { json: false });
    let server: Peer | undefined;
    try {
      server = await startServer([NODE, GRPC_PEER, "server", String(port)], "127.0.0.1", port);
      const client = startPeer([NODE, GRPC_PEER, "tick", String(port), "15"]);
      // Before the stream ends (1.5 s), the open line and the first messages are there.
      await waitFor("the open line", () => tapwire.stdout.some((l) => l.includes("/tapwire.test.Echo/Tick (open)")), 1200);
      await waitFor("message 3 from the server", () => tapwire.stdout.some((l) => /^\s+h2#\d+ < message 3 \(\d+ B\): \{"1":"tick 2","2":"2"\}$/.test(l)), 1500);
      expect(client.lines.includes("done")).toBe(false);
      await waitFor("the stream's end", () => client.lines.includes("done"), 10_000);
      // Then its usual line, with its status and message counts.
      await waitFor("the final line", () => tapwire.stdout.some((l) => l.includes("/tapwire.test.Echo/Tick OK 1→15 msgs")), 5000);
    } finally {
      await server?.stop();
      await tapwire.stop();
    }
  }, 60_000);
});
