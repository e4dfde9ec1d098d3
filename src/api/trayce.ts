// Trayce compatibility: tapwire as an agent of Trayce's desktop GUI. It connects, as a gRPC
// client, to the GUI's TrayceAgent server (proto/api/trayce_agent.proto): opens the command
// stream (AgentStarted up, set_settings down), sends the containers it sees every second,
// and sends flows in batches — each tapwire flow as a request Flow and a response Flow with
// one uuid, as Trayce's own agent does. When the GUI goes away it reconnects; flows made
// meanwhile wait in a bounded queue (the oldest are dropped, counted).
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TrayceAgent, type Flow as TrayceFlow, type StringList } from "../gen/api/trayce_agent_pb.ts";
import { Protocol, type Flow, type Header } from "../gen/tapwire/v1/flow_pb.ts";
import { containerMatches } from "../procs/containers.ts";

const BATCH_MS = 100;
const MAX_BATCH = 200;
const MAX_QUEUE = 10_000;
const RETRY_MS = 1000;

export interface TrayceLink {
  send(flow: Flow): void;
  /** Container ids the GUI asked for (set_settings). */
  readonly containerIds: string[];
  readonly connected: boolean;
  readonly dropped: number;
  close(): void;
}

export interface TrayceContainer {
  id: string;
  name: string;
  image: string;
  ip: string;
}

export function connectTrayce(opts: {
  address: string;
  version: string;
  log(line: string): void;
  /** The running containers, offered to the GUI to choose from. */
  containers(): TrayceContainer[];
}): TrayceLink {
  const client: Client<typeof TrayceAgent> = createClient(TrayceAgent, createGrpcTransport({ baseUrl: `http://${opts.address}` }));
  const queue: TrayceFlow[] = [];
  let containerIds: string[] = [];
  let connected = false;
  let dropped = 0;
  let closed = false;
  let abort = new AbortController();

  async function commandLoop() {
    while (!closed) {
      abort = new AbortController();
      try {
        const signal = abort.signal;
        // The request stream stays open for as long as the connection does.
        async function* hello() {
          yield { version: opts.version };
          await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
        }
        for await (const cmd of client.openCommandStream(hello(), { signal })) {
          if (!connected) opts.log(`trayce: connected to ${opts.address}`);
          connected = true;
          if (cmd.type === "set_settings") containerIds = [...(cmd.settings?.containerIds ?? [])];
        }
      } catch (e) {
        if (closed) return;
        const err = ConnectError.from(e);
        if (connected || err.code !== Code.Unavailable) opts.log(`trayce: ${opts.address}: ${err.rawMessage || Code[err.code]}; retrying`);
      }
      connected = false;
      abort.abort();
      if (!closed) await Bun.sleep(RETRY_MS);
    }
  }

  async function flushLoop() {
    while (!closed) {
      await Bun.sleep(BATCH_MS);
      if (!connected) continue;
      while (queue.length && connected) {
        const batch = queue.slice(0, MAX_BATCH);
        try {
          await client.sendFlowsObserved({ flows: batch }, { timeoutMs: 5000 });
          queue.splice(0, batch.length);
        } catch {
          break; // kept for the next connection
        }
      }
    }
  }

  async function containersLoop() {
    while (!closed) {
      await Bun.sleep(1000);
      if (!connected) continue;
      // Short ids, as `docker ps` shows them and Trayce's own agent sends them.
      const containers = opts.containers().map((c) => ({ id: c.id.slice(0, 12), name: c.name, image: c.image, ip: c.ip, status: "running" }));
      await client.sendContainersObserved({ containers }, { timeoutMs: 1000 }).catch(() => {});
    }
  }

  void commandLoop();
  void flushLoop();
  void containersLoop();

  return {
    send(flow) {
      // The GUI shows the containers its user ticked; before it ticks any, everything
      // tapwire captures (host processes too) is sent.
      if (containerIds.length) {
        const c = flow.connection?.container;
        if (!c || !containerIds.some((id) => containerMatches(id, c))) return;
      }
      for (const f of toTrayceFlows(flow)) {
        if (queue.length >= MAX_QUEUE) {
          queue.shift();
          dropped++;
        }
        queue.push(f);
      }
    },
    get containerIds() {
      return containerIds;
    },
    get connected() {
      return connected;
    },
    get dropped() {
      return dropped;
    },
    close() {
      closed = true;
      abort.abort();
    },
  };
}

/** One tapwire flow as Trayce's request Flow and response Flow (one uuid). */
export function toTrayceFlows(f: Flow): TrayceFlow[] {
  const c = f.connection;
  const addr = (e: { ip: string; port: number } | undefined) => (e ? (e.ip.includes(":") ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`) : "");
  const common = {
    $typeName: "api.Flow" as const,
    uuid: randomUUID(),
    sourceAddr: addr(c?.source),
    destAddr: addr(c?.destination),
    l4Protocol: "tcp",
    l7Protocol: f.protocol === Protocol.GRPC ? "grpc" : f.protocol === Protocol.HTTP2 ? "http2" : "http",
    request: { case: undefined } as TrayceFlow["request"],
    response: { case: undefined } as TrayceFlow["response"],
  };
  const out: TrayceFlow[] = [];
  const req = f.request;
  const res = f.response;
  const version = (v: string) => v.replace(/^HTTP\//, "");
  if (req) {
    out.push({
      ...common,
      request:
        f.protocol === Protocol.GRPC
          ? { case: "grpcRequest", value: { $typeName: "api.GRPCRequest", path: req.path, headers: headerMap(req.headers), payload: f.grpc?.requestMessages[0]?.data ?? new Uint8Array(0) } }
          : { case: "httpRequest", value: { $typeName: "api.HTTPRequest", method: req.method, host: req.authority, path: req.path, httpVersion: version(req.version), headers: headerMap(req.headers), payload: req.body } },
    });
  }
  if (res) {
    out.push({
      ...common,
      response:
        f.protocol === Protocol.GRPC
          ? { case: "grpcResponse", value: { $typeName: "api.GRPCResponse", headers: headerMap([...res.headers, ...res.trailers]), payload: f.grpc?.responseMessages[0]?.data ?? new Uint8Array(0) } }
          : { case: "httpResponse", value: { $typeName: "api.HTTPResponse", httpVersion: version(res.version), status: res.status, statusMsg: res.reason, headers: headerMap(res.headers), payload: res.body } },
    });
  }
  return out;
}

function headerMap(headers: Header[]): { [name: string]: StringList } {
  const out: { [name: string]: StringList } = {};
  for (const h of headers) (out[h.name] ??= { $typeName: "api.StringList", values: [] }).values.push(h.value);
  return out;
}
