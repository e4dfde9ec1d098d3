// A flow as one line of the list: the few fields the list, the facets and their counts need,
// so the page can hold 100,000 of them without their headers and bodies.
import { Protocol, Role, type Flow } from "../../src/gen/tapwire/v1/flow_pb.ts";
import { endpoint, millis } from "./format.ts";

export interface Row {
  id: string;
  start: number;
  comm: string;
  pid: number;
  container: string;
  method: string;
  url: string;
  host: string;
  /** 0: no response (yet). */
  status: number;
  /** gRPC status name when not OK ("NOT_FOUND"). */
  grpcStatus: string;
  protocol: string;
  /** Request and response body bytes as transferred, plus WebSocket messages. */
  size: number;
  durationMs: number | undefined;
  open: boolean;
  messages: number;
  role: "client" | "server" | "";
  incomplete: boolean;
}

const PROTOCOL: Record<number, string> = {
  [Protocol.HTTP1]: "HTTP/1",
  [Protocol.HTTP2]: "HTTP/2",
  [Protocol.GRPC]: "gRPC",
  [Protocol.WEBSOCKET]: "WebSocket",
  [Protocol.REDIS]: "Redis",
};

export function protocolName(p: Protocol): string {
  return PROTOCOL[p] ?? "?";
}

/** The authority without its port, or the destination address when there is none. */
export function hostOf(f: Flow): string {
  const a = f.request?.authority;
  if (a) return a.startsWith("[") ? a.slice(0, a.indexOf("]") + 1) : a.replace(/:\d+$/, "");
  return f.connection?.destination?.ip ?? "";
}

/** The request's URL as a client would write it. */
export function urlOf(f: Flow): string {
  const path = f.request?.path ?? "";
  if (/^[a-z]+:\/\//i.test(path)) return path;
  const scheme = f.protocol === Protocol.WEBSOCKET ? (f.connection?.tls ? "wss" : "ws") : f.connection?.tls ? "https" : "http";
  const authority = f.request?.authority || endpoint(f.connection?.destination);
  return `${scheme}://${authority}${path}`;
}

export function containerName(f: Flow): string {
  const c = f.connection?.container;
  return c ? c.name || c.id.slice(0, 12) : "";
}

export function messageCount(f: Flow): number {
  return f.messages.length + (f.grpc ? f.grpc.requestMessages.length + f.grpc.responseMessages.length : 0);
}

export function toRow(f: Flow): Row {
  const start = millis(f.startTime) ?? 0;
  const end = millis(f.endTime);
  const g = f.grpc;
  // WebSocket messages travel after the upgrade, outside both bodies.
  const wsBytes = f.messages.reduce((n, m) => n + (m.message.case === "websocket" ? Number(m.message.value.size) : 0), 0);
  const m = f.missing;
  return {
    id: f.id,
    start,
    comm: f.connection?.process?.comm ?? "",
    pid: f.connection?.process?.pid ?? 0,
    container: containerName(f),
    method: f.database ? f.database.operation : (f.request?.method ?? ""),
    url: f.database ? f.database.statement : f.request ? urlOf(f) : `(response only) ${endpoint(f.connection?.destination)}`,
    host: hostOf(f),
    status: f.response?.status ?? 0,
    grpcStatus: g && g.status !== undefined && g.status !== 0 ? g.statusName : "",
    protocol: protocolName(f.protocol),
    size: Number(f.request?.bodySize ?? 0n) + Number(f.response?.bodySize ?? 0n) + wsBytes,
    durationMs: end !== undefined && !f.open ? end - start : undefined,
    open: f.open,
    messages: messageCount(f),
    role: f.connection?.role === Role.CLIENT ? "client" : f.connection?.role === Role.SERVER ? "server" : "",
    incomplete: !!m && (m.noResponse || m.requestIncomplete || m.responseIncomplete || m.lostBytes > 0n),
  };
}

export function statusClass(status: number): string {
  return status ? `${Math.floor(status / 100)}xx` : "none";
}
