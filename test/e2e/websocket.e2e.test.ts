// WebSocket end to end with Debian's python3-websockets, client and server both started after
// tapwire: over ws:// and wss:// (OpenSSL), with permessage-deflate (context takeover) and
// without. Each side's flow is the upgrade and every message both ways — text, binary, a
// fragmented text, ping and pong, a 20 KB text, the close handshake with its code and reason —
// read as the application sent it; live (--json --live) each message comes as it is sent.
import { beforeAll, describe, expect, test } from "bun:test";
import { realpathSync, writeFileSync } from "node:fs";
import { PEERS, PYTHON, freePort, fromB64, requireRoot, startPeer, startServer, startTapwire, waitFor, type JsonFlowEvent, type Peer } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";

const WS_PEER = `${PEERS}/ws_peer.py`;
const BIG = "tapwire websocket ".repeat(1200);
let cert: Cert;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
});

/** What each side sent, in order: [type, text or payload, fragments]. */
const fromClient = [
  ["text", "hello tapwire"],
  ["binary", Buffer.from([...Array(256).keys()])],
  ["text", "frag-1 frag-2 frag-3"],
  ["ping", Buffer.from("are you there")],
  ["text", BIG],
  ["close", ""],
] as const;
const fromServer = [
  ["text", "echo: hello tapwire"],
  ["binary", Buffer.from([...Array(256).keys()].reverse())],
  ["text", "echo: frag-1 frag-2 frag-3"],
  ["pong", Buffer.from("are you there")],
  ["text", `echo: ${BIG}`],
  ["close", ""],
] as const;

function expectMessages(messages: any[], sent: readonly (readonly [string, string | Buffer])[], compressed: boolean) {
  expect(messages.map((m) => m.websocket.type)).toEqual(sent.map(([t]) => t));
  for (const [i, [type, content]] of sent.entries()) {
    const w = messages[i].websocket;
    if (type === "text") expect(w.text).toBe(content);
    else if (type === "close") {
      expect(w.closeCode).toBe(1000);
      expect(w.closeReason).toBe("done here");
      expect(w.size).toBe(String(2 + "done here".length));
    } else expect(fromB64(w.data)).toEqual(content as Buffer);
    // Data messages go compressed when permessage-deflate is on; control frames never.
    expect(w.compressed ?? false).toBe(compressed && (type === "text" || type === "binary"));
    expect(w.truncated).toBeUndefined();
    expect(w.error).toBeUndefined();
  }
  expect(messages.map((m) => m.index ?? 0)).toEqual([...Array(sent.length).keys()]);
}

describe("WebSocket", () => {
  for (const [name, tls, compress] of [
    ["ws:// with permessage-deflate", false, true],
    ["ws:// uncompressed", false, false],
    ["wss:// (OpenSSL) with permessage-deflate", true, true],
  ] as const) {
    test(`${name}: both sides' flows, every message both ways, live as it comes`, async () => {
      const port = await freePort();
      // asyncio's TLS runs over memory buffers (as node's does): its flows are put on the
      // sockets it moves the ciphertext on, so the port filter finds them too.
      const tapwire = await startTapwire(["--live", "--port", String(port)]);
      let server: Peer | undefined;
      try {
        server = await startServer([PYTHON, WS_PEER, "server", String(port), ...(tls ? [cert.cert, cert.key] : [])], "127.0.0.1", port);
        const url = `${tls ? "wss" : "ws"}://127.0.0.1:${port}/chat`;
        const client = startPeer([PYTHON, WS_PEER, "client", url, ...(tls ? [cert.cert] : []), ...(compress ? [] : ["--no-compress"])]);
        await waitFor("the client's end", () => client.lines.includes("done"), 15_000);
        expect(client.lines).toEqual(["got echo: hello tapwire", "got 256 bytes", "got echo: frag-1 frag-2 frag-3", "got pong", `got ${BIG.length + 6} chars`, "done"]);
        const flows = await tapwire.waitForFlows((f) => f.protocol === "PROTOCOL_WEBSOCKET", 2);
        expect(tapwire.flows).toHaveLength(2);
        const python = realpathSync(PYTHON);
        for (const f of flows) {
          const role = f.connection.role;
          expect(f.connection.process).toEqual({ pid: role === "ROLE_SERVER" ? server.proc.pid : client.proc.pid, comm: "python3", exe: python });
          expect(f.connection.tls ?? false).toBe(tls);
          expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
          expect(f.connection.source.port).toBe(flows[0].connection.source.port);
          // The upgrade.
          expect(f.request.method).toBe("GET");
          expect(f.request.path).toBe("/chat");
          expect(f.request.headers).toContainEqual({ name: "Upgrade", value: "websocket" });
          expect(f.response.status).toBe(101);
          expect(f.response.reason).toBe("Switching Protocols");
          const extensions = f.response.headers.find((h: any) => h.name.toLowerCase() === "sec-websocket-extensions")?.value;
          if (compress) expect(extensions).toStartWith("permessage-deflate");
          else expect(extensions).toBeUndefined();
          expect(f.missing).toBeUndefined();
          expect(f.messagesDropped).toBeUndefined();
          const mine = (sender: string) => f.messages.filter((m: any) => m.sender === sender);
          expectMessages(mine("ROLE_CLIENT"), fromClient, compress);
          // The client's fragmented text came in its three frames (and an empty last one).
          expect(mine("ROLE_CLIENT")[2].websocket.fragments).toBeGreaterThanOrEqual(3);
          expectMessages(mine("ROLE_SERVER"), fromServer, compress);
          // Live: started at the upgrade, every message as it came, then this flow.
          const events = tapwire.events.filter((e: JsonFlowEvent) => e.flowId === f.id);
          expect(events[0].started.open).toBe(true);
          expect(events[0].started.protocol).toBe("PROTOCOL_WEBSOCKET");
          expect(events[0].started.response.status).toBe(101);
          expect(events.slice(1, -1).flatMap((e: JsonFlowEvent) => e.messages.messages)).toEqual(f.messages);
          expect(events.at(-1).ended).toEqual(f);
        }
      } finally {
        await server?.stop();
        await tapwire.stop();
      }
    }, 60_000);
  }

  for (const [name, tls] of [
    ["ws://", false],
    ["wss:// (OpenSSL)", true],
  ] as const) {
    test(`${name}, permessage-deflate: a connection opened before tapwire started is joined, marked, and every later message exact`, async () => {
      const port = await freePort();
      const flag = `${cert.dir}/go-${port}`;
      let server: Peer | undefined;
      let tapwire: Awaited<ReturnType<typeof startTapwire>> | undefined;
      try {
        server = await startServer([PYTHON, WS_PEER, "server", String(port), ...(tls ? [cert.cert, cert.key] : [])], "127.0.0.1", port);
        const url = `${tls ? "wss" : "ws"}://127.0.0.1:${port}/chat`;
        const client = startPeer([PYTHON, WS_PEER, "client", url, ...(tls ? [cert.cert] : []), "--after", flag]);
        await waitFor("the upgrade", () => client.lines.includes("connected"), 10_000);
        tapwire = await startTapwire(tls ? ["--comm", "python3"] : ["--port", String(port)]);
        writeFileSync(flag, "");
        await waitFor("the client's end", () => client.lines.includes("done"), 15_000);
        const flows = await tapwire.waitForFlows((f) => f.protocol === "PROTOCOL_WEBSOCKET", 2);
        await Bun.sleep(200);
        expect(tapwire.flows).toHaveLength(2);
        expect(flows.map((f) => f.connection.role).sort()).toEqual(["ROLE_CLIENT", "ROLE_SERVER"]);
        for (const f of flows) {
          expect(f.request).toBeUndefined();
          expect(f.response).toBeUndefined();
          expect(f.missing.joinedMidStream).toBe(true);
          expect(f.missing.reason).toContain("joined the connection after its upgrade to WebSocket");
          if (!tls) expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
          const mine = (sender: string) => f.messages.filter((m: any) => m.sender === sender);
          expectMessages(mine("ROLE_CLIENT"), fromClient, true);
          expectMessages(mine("ROLE_SERVER"), fromServer, true);
        }
      } finally {
        await server?.stop();
        await tapwire?.stop();
      }
    }, 60_000);
  }
});
