// What every flow builder shares: how to stamp times, name flows and describe the
// connection a flow belongs to. Messages are built as plain literals with every field set
// (what create() would make), because create() is costlier than the parsing per flow.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Role, type Connection, type Container, type Endpoint, type Flow, type FlowMessage } from "../gen/tapwire/v1/flow_pb.ts";
import type { ContainerLabel } from "../procs/containers.ts";
import type { ConnectionInfo } from "../conn/connection-table.ts";
import { ConnOrigin } from "../bpf/events.ts";
import type { MessageDecoder } from "./grpc-call.ts";

/** What one connection may hold at most: past a bound, the oldest goes out as it is. */
export interface FlowLimits {
  /** HTTP/1 requests waiting for their responses. */
  maxPendingRequests: number;
  /** HTTP/2 streams open (and finished streams held on a joined connection not yet confirmed). */
  maxOpenStreams: number;
  /** Bytes of one HTTP/2 header block (HEADERS and its CONTINUATION frames). */
  maxHeaderBlock: number;
  /** Bytes of gRPC messages kept for one call, each way (each message is also cut at maxBody). */
  maxStreamBody: number;
  /** gRPC messages kept for one call, each way. */
  maxStreamMessages: number;
}

export const DEFAULT_LIMITS: FlowLimits = { maxPendingRequests: 1024, maxOpenStreams: 1024, maxHeaderBlock: 256 * 1024, maxStreamBody: 16 << 20, maxStreamMessages: 10_000 };

/** How often each bound was reached. */
export interface Overflows {
  /** HTTP/1 requests emitted without their response: too many were waiting. */
  http1PendingRequests: number;
  /** HTTP/2 streams emitted before they ended: too many were open. */
  http2OpenStreams: number;
  /** Streams of a joined connection never confirmed as HTTP/2, dropped: too many held. */
  http2HeldStreams: number;
  /** HTTP/2 header blocks longer than the bound (a header error on the flow). */
  headerBlocks: number;
  /** Messages past their flow's budget (gRPC, WebSocket, Server-Sent Events): counted on the
   * flow, not kept. */
  streamBudget: number;
  /** Redis commands emitted without their reply: too many were waiting. */
  redisPendingCommands: number;
}

/** Who watches flows while they are open (serve's live watchers and its history, `--json
 * --live`); absent when no one does, and then nothing of it is done. A flow started here
 * ends with the ordinary emit(flow), under the same id. */
export interface LiveFlows {
  /** A flow's request header block was seen: the flow so far (open). */
  started(flow: Flow): void;
  /** Messages of an open flow that completed just now, in order. */
  messages(flowId: string, messages: FlowMessage[]): void;
}

export interface FlowContext {
  /** Called with each finished flow. */
  emit(flow: Flow): void;
  /** Flows while they are open, when someone watches them. */
  live?: LiveFlows;
  /** A Timestamp for a CLOCK_MONOTONIC nanosecond time. */
  timestamp(monotonicNs: number): Timestamp;
  nextFlowId(): string;
  /** Most body bytes kept per message. */
  maxBody: number;
  /** The name and version of a TLS library, from its id on a connection. */
  tlsLibrary(id: number): string;
  /** Reads gRPC messages with their schema, when the user gave one (--proto-path). */
  grpcDecoder?: MessageDecoder;
  /** The container of a process (its pid and cgroup id), when it is in one. */
  containerOf?(pid: number, cgroupId: number): ContainerLabel | undefined;
  readonly limits: FlowLimits;
  /** Counted by the flow builders when a bound is reached. */
  readonly overflows: Overflows;
}

export function createFlowContext(opts: {
  emit(flow: Flow): void;
  live?: LiveFlows;
  clockOffsetNs: number;
  maxBody: number;
  runId?: string;
  tlsLibrary?(id: number): string;
  grpcDecoder?: MessageDecoder;
  containerOf?(pid: number, cgroupId: number): ContainerLabel | undefined;
  limits?: Partial<FlowLimits>;
}): FlowContext {
  // The offset split in whole seconds and the rest keeps nanosecond precision: wall-clock
  // nanoseconds do not fit a double exactly.
  const offSec = Math.floor(opts.clockOffsetNs / 1e9);
  const offNs = Math.round(opts.clockOffsetNs - offSec * 1e9);
  const runId = opts.runId ?? Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, "0");
  let counter = 0;
  return {
    emit: opts.emit,
    live: opts.live,
    maxBody: opts.maxBody,
    tlsLibrary: opts.tlsLibrary ?? (() => "OpenSSL"),
    grpcDecoder: opts.grpcDecoder,
    containerOf: opts.containerOf,
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    overflows: { http1PendingRequests: 0, http2OpenStreams: 0, http2HeldStreams: 0, headerBlocks: 0, streamBudget: 0, redisPendingCommands: 0 },
    timestamp(mono) {
      let seconds = Math.floor(mono / 1e9) + offSec;
      let nanos = Math.round(mono % 1e9) + offNs;
      if (nanos >= 1e9) {
        nanos -= 1e9;
        seconds++;
      }
      return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(seconds), nanos };
    },
    nextFlowId() {
      return `${runId}-${++counter}`;
    },
  };
}

/**
 * The Connection of a flow. `processIsClient`: which side the traced process is on, when
 * the stream has shown it; the kernel's origin (accept/connect) settles it otherwise.
 * Source is always the side that opened the TCP connection: the client.
 */
export function describeConnection(info: ConnectionInfo, processIsClient: boolean, ctx: FlowContext): Connection {
  const local: Endpoint = { $typeName: "tapwire.v1.Endpoint", ip: info.localIp, port: info.localPort };
  const remote: Endpoint = { $typeName: "tapwire.v1.Endpoint", ip: info.remoteIp, port: info.remotePort };
  return {
    $typeName: "tapwire.v1.Connection",
    id: BigInt(info.id),
    role: processIsClient ? Role.CLIENT : Role.SERVER,
    // Family 0: the kernel never saw the socket (TLS done outside it); endpoints unknown.
    source: info.family === 0 ? undefined : processIsClient ? local : remote,
    destination: info.family === 0 ? undefined : processIsClient ? remote : local,
    process: { $typeName: "tapwire.v1.Process", pid: info.pid, comm: info.comm, exe: info.exe },
    tls: info.tlsLib !== 0,
    tlsLibrary: info.tlsLib !== 0 ? ctx.tlsLibrary(info.tlsLib) : "",
    container: containerOf(info, ctx),
  };
}

function containerOf(info: ConnectionInfo, ctx: FlowContext): Container | undefined {
  const c = ctx.containerOf?.(info.pid, info.cgroupId);
  return c && { $typeName: "tapwire.v1.Container", id: c.id, name: c.name, image: c.image };
}

/** The side the kernel saw the process take, or undefined for a connection found open. */
export function roleFromOrigin(origin: ConnOrigin): boolean | undefined {
  if (origin === ConnOrigin.Connect) return true;
  if (origin === ConnOrigin.Accept) return false;
  return undefined;
}
