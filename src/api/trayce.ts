// Trayce compatibility: tapwire as an agent of Trayce's desktop GUI. It connects, as a gRPC
// client, to the GUI's TrayceAgent server (proto/api/trayce_agent.proto): opens the command
// stream (AgentStarted up, set_settings down), sends the containers it sees every second,
// and sends flows in batches — each tapwire flow as a request Flow and a response Flow with
// one uuid, as Trayce's own agent does. When the GUI goes away it reconnects; flows made
// meanwhile wait in a queue bounded in flows and bytes (the oldest are dropped, counted).
//
// A batch never exceeds --trayce-batch-bytes (default 1 MiB, well under the 4 MiB gRPC
// servers take by default); a flow too large for one batch is sent with its payloads cut to
// fit, and says so in a header of its own (Trayce's messages have no field for it). A batch
// the GUI refuses is tried a few times, then dropped and counted: one refused batch never
// holds up the flows behind it. Each kind of failure is said once on stderr.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TrayceAgent, type Flow as TrayceFlow, type StringList } from "../gen/api/trayce_agent_pb.ts";
import { Protocol, Role, type Flow, type Header } from "../gen/tapwire/v1/flow_pb.ts";
import { containerMatches } from "../procs/containers.ts";

const BATCH_MS = 100;
export const DEFAULT_TRAYCE_BATCH_BYTES = 1 << 20;
const MAX_QUEUE = 10_000;
const MAX_QUEUE_BYTES = 64 << 20;
/** Times a batch the GUI refused is sent before it is dropped. */
const MAX_TRIES = 3;
const RETRY_MS = 1000;
/** What a Flow costs beyond its payloads and headers, at most (uuid, addresses, framing). */
const FLOW_OVERHEAD = 256;
/** The header that says a payload was cut to fit a batch. */
export const TRUNCATED_HEADER = "x-tapwire-truncated";

export interface TrayceStats {
  /** Flows (request and response halves each count) the GUI accepted. */
  sent: number;
  /** Dropped from a full queue (the GUI away or slow). */
  dropped: number;
  /** In batches the GUI refused MAX_TRIES times, dropped. */
  refused: number;
  /** Sent with payloads cut to fit a batch. */
  truncated: number;
}

export interface TrayceLink {
  send(flow: Flow): void;
  /** Container ids the GUI asked for (set_settings). */
  readonly containerIds: string[];
  readonly connected: boolean;
  readonly stats: TrayceStats;
  close(): void;
}

export interface TrayceContainer {
  id: string;
  name: string;
  image: string;
  ip: string;
}

interface Queued {
  flow: TrayceFlow;
  bytes: number;
}

export function connectTrayce(opts: {
  address: string;
  version: string;
  log(line: string): void;
  /** The running containers, offered to the GUI to choose from. */
  containers(): TrayceContainer[];
  /** Largest batch of flows, in (estimated) encoded bytes. */
  batchBytes?: number;
}): TrayceLink {
  const batchBytes = opts.batchBytes ?? DEFAULT_TRAYCE_BATCH_BYTES;
  const client: Client<typeof TrayceAgent> = createClient(TrayceAgent, createGrpcTransport({ baseUrl: `http://${opts.address}` }));
  const queue: Queued[] = [];
  let queuedBytes = 0;
  let containerIds: string[] = [];
  let connected = false;
  let closed = false;
  let abort = new AbortController();
  const stats: TrayceStats = { sent: 0, dropped: 0, refused: 0, truncated: 0 };
  /** Failure kinds already said on stderr. */
  const said = new Set<string>();
  const sayOnce = (kind: string, line: string) => {
    if (said.has(kind)) return;
    said.add(kind);
    opts.log(line);
  };

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

  /** The next batch: whole flows, at most batchBytes (one flow at least: each fits alone). */
  function nextBatch(): Queued[] {
    let bytes = 0;
    let n = 0;
    while (n < queue.length && (n === 0 || bytes + queue[n]!.bytes <= batchBytes)) bytes += queue[n++]!.bytes;
    return queue.slice(0, n);
  }

  function take(n: number) {
    for (const q of queue.splice(0, n)) queuedBytes -= q.bytes;
  }

  async function flushLoop() {
    let tries = 0;
    while (!closed) {
      await Bun.sleep(BATCH_MS);
      while (queue.length && connected && !closed) {
        const batch = nextBatch();
        try {
          await client.sendFlowsObserved({ flows: batch.map((q) => q.flow) }, { timeoutMs: 5000 });
          take(batch.length);
          stats.sent += batch.length;
          tries = 0;
        } catch (e) {
          const err = ConnectError.from(e);
          // The GUI unreachable: the batch waits for the next connection.
          if (err.code === Code.Unavailable || err.code === Code.Canceled) break;
          if (++tries < MAX_TRIES) break; // tried again after BATCH_MS
          take(batch.length);
          stats.refused += batch.length;
          tries = 0;
          sayOnce(
            `refused ${err.code}`,
            `trayce: the GUI refused a batch of ${batch.length} flows (${Code[err.code]}: ${err.rawMessage}); dropped after ${MAX_TRIES} tries, later flows go on (counted in the summary)`,
          );
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
      // Trayce's agent protocol carries HTTP and gRPC only.
      if (flow.database) return;
      // The GUI shows the containers its user ticked; before it ticks any, everything
      // tapwire captures (host processes too) is sent.
      if (containerIds.length) {
        const c = flow.connection?.container;
        if (!c || !containerIds.some((id) => containerMatches(id, c))) return;
      }
      for (const f of toTrayceFlows(flow)) {
        let bytes = trayceFlowBytes(f);
        if (bytes > batchBytes) {
          bytes = fitTrayceFlow(f, batchBytes);
          stats.truncated++;
        }
        while (queue.length && (queue.length >= MAX_QUEUE || queuedBytes + bytes > MAX_QUEUE_BYTES)) {
          queuedBytes -= queue.shift()!.bytes;
          stats.dropped++;
        }
        queue.push({ flow: f, bytes });
        queuedBytes += bytes;
      }
      if (stats.dropped) sayOnce("dropped", `trayce: the queue for ${opts.address} is full (the GUI is away or slow): the oldest flows are dropped (counted in the summary)`);
    },
    get containerIds() {
      return containerIds;
    },
    get connected() {
      return connected;
    },
    stats,
    close() {
      closed = true;
      abort.abort();
    },
  };
}

const headerBytes = (headers: { [name: string]: StringList }) => {
  let n = 0;
  for (const [name, list] of Object.entries(headers)) for (const v of list.values) n += name.length + v.length + 8;
  return n;
};

/** What a Trayce Flow weighs encoded, closely enough to bound a batch: payloads and headers
 * plus a fixed allowance. */
export function trayceFlowBytes(f: TrayceFlow): number {
  let n = FLOW_OVERHEAD;
  for (const part of [f.request.value, f.response.value]) {
    if (!part) continue;
    if ("payload" in part) n += part.payload.length;
    if ("headers" in part) n += headerBytes(part.headers);
    if ("path" in part) n += part.path.length;
  }
  return n;
}

/** Cuts a Flow's payload so the Flow fits in `limit` bytes, and says so in a header. */
export function fitTrayceFlow(f: TrayceFlow, limit: number): number {
  for (const part of [f.request.value, f.response.value]) {
    if (!part || !("payload" in part) || !("headers" in part)) continue;
    const whole = part.payload.length;
    const room = Math.max(0, limit - (trayceFlowBytes(f) - whole) - 128);
    if (whole <= room) continue;
    part.payload = part.payload.subarray(0, room);
    part.headers[TRUNCATED_HEADER] = { $typeName: "api.StringList", values: [`payload cut to ${room} of ${whole} bytes to fit a batch`] };
  }
  return trayceFlowBytes(f);
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
          : {
              case: "httpResponse",
              // The GUI shows a response's payload: a WebSocket connection's (or an event
              // stream's) messages are written out there, one per line.
              value: { $typeName: "api.HTTPResponse", httpVersion: version(res.version), status: res.status, statusMsg: res.reason, headers: headerMap(res.headers), payload: f.messages.length ? transcript(f) : res.body },
            },
    });
  }
  return out;
}

/** A flow's messages as text, one per line: "> " from the client, "< " from the server. */
function transcript(f: Flow): Uint8Array {
  const lines = f.messages.map((m) => {
    const dir = m.sender === Role.SERVER ? "<" : ">";
    const v = m.message;
    if (v.case === "websocket") {
      const w = v.value;
      const body = w.type === "text" ? w.text : w.type === "close" ? `${w.closeCode} ${w.closeReason}`.trim() : `${w.data.length} bytes: ${Buffer.from(w.data.subarray(0, 64)).toString("hex")}`;
      return `${dir} ${w.type}: ${body}`;
    }
    if (v.case === "sse") return `${dir} ${v.value.event || "message"}${v.value.id ? ` #${v.value.id}` : ""}: ${v.value.data}`;
    return `${dir} message`;
  });
  if (f.messagesDropped) lines.push(`(${f.messagesDropped} more messages not kept)`);
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

function headerMap(headers: Header[]): { [name: string]: StringList } {
  const out: { [name: string]: StringList } = {};
  for (const h of headers) (out[h.name] ??= { $typeName: "api.StringList", values: [] }).values.push(h.value);
  return out;
}
