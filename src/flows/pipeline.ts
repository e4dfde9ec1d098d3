// The user-side pipeline from ring buffer records to flows: decode, connection table,
// protocol streams. Live capture feeds it from the ring; the replay benchmark and tests
// feed it recorded records.
import { isHttp1RequestStart, isHttp1ResponseStart, isRedisCommandStart, looksLikeH2Frame, looksLikeWebSocketFrames, startsWithH2Preface } from "../protocols/sniff.ts";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { decodeEvent, ConnClass, DecodeError } from "../bpf/events.ts";
import { createConnectionTable, type ConnectionTable, type StreamSink } from "../conn/connection-table.ts";
import { createProcessRegistry, type ProcessRegistry } from "../procs/process-registry.ts";
import { createFlowContext, type FlowLimits, type LiveFlows, type Overflows } from "./flow-context.ts";
import { createHttp1Stream } from "./http1-flows.ts";
import { createHttp2Stream } from "./http2-flows.ts";
import { createJoinedWebSocketStream } from "./websocket-session.ts";
import { createRedisStream } from "./redis-flows.ts";
import type { MessageDecoder } from "./grpc-call.ts";
import type { ContainerLabel } from "../procs/containers.ts";
import { ConnOrigin } from "../bpf/events.ts";

export interface PipelineOptions {
  onFlow(flow: Flow): void;
  /** Flows while they are open (started, messages); their end is onFlow. */
  live?: LiveFlows;
  clockOffsetNs: number;
  maxBody: number;
  maxConnections?: number;
  processes?: ProcessRegistry;
  /** Tell the kernel to forget a connection whose process exited. */
  forget?(pid: number, fd: number): void;
  /** The name and version of a TLS library, from its id. */
  tlsLibrary?(id: number): string;
  /** Reads gRPC messages with their schema (--proto-path). */
  grpcDecoder?: MessageDecoder;
  /** The container of a process, when it is in one. */
  containerOf?(pid: number, cgroupId: number): ContainerLabel | undefined;
  /** Bounds per connection (defaults: DEFAULT_LIMITS). */
  limits?: Partial<FlowLimits>;
  /** Processes that exec and files named libssl.so* being opened: where TLS libraries and containers appear. */
  onExec?(pid: number, cgroupId: number): void;
  onLibOpen?(pid: number, path: string, fd: number): void;
}

export interface PipelineStats {
  records: number;
  /** Bytes of the records read (headers and payloads). */
  recordBytes: number;
  flows: number;
  undecodable: number;
  /** Connections of a protocol this build does not parse yet. */
  unparsedConnections: number;
  /** How often each per-connection bound was reached. */
  readonly overflows: Overflows;
  /** Flows that bytes lost on their connection (ring full, a copy cut) left incomplete. */
  flowsWithLostBytes: number;
}

export interface Pipeline {
  /** One ring buffer record (borrowed: copied as needed). */
  record(bytes: Uint8Array, view: DataView, offset: number, length: number): void;
  endBatch(): void;
  close(tsNs: number): void;
  readonly stats: PipelineStats;
  readonly connections: ConnectionTable;
}

export function createPipeline(opts: PipelineOptions): Pipeline {
  const ctx = createFlowContext({
    limits: opts.limits,
    clockOffsetNs: opts.clockOffsetNs,
    maxBody: opts.maxBody,
    tlsLibrary: opts.tlsLibrary,
    grpcDecoder: opts.grpcDecoder,
    containerOf: opts.containerOf,
    live: opts.live,
    emit(flow) {
      stats.flows++;
      if (flow.missing && flow.missing.lostBytes > 0n) stats.flowsWithLostBytes++;
      opts.onFlow(flow);
    },
  });
  const stats: PipelineStats = { records: 0, recordBytes: 0, flows: 0, undecodable: 0, unparsedConnections: 0, overflows: ctx.overflows, flowsWithLostBytes: 0 };
  const table = createConnectionTable({
    processes: opts.processes ?? createProcessRegistry(),
    maxConnections: opts.maxConnections,
    forget: opts.forget,
    // PROTOCOL_LIST: a protocol parsed in user space gets its stream here.
    openStream(info) {
      if (info.connClass === ConnClass.Http1) return createHttp1Stream(info, ctx);
      if (info.connClass === ConnClass.Http2) return createHttp2Stream(info, ctx, { joined: false });
      if (info.connClass === ConnClass.Websocket) return createJoinedWebSocketStream(info, ctx);
      if (info.connClass === ConnClass.Redis) return createRedisStream(info, ctx);
      // TLS plaintext: HTTP/2 when it opens with the preface (or, joined mid-stream, with
      // a frame), else HTTP/1.
      if (info.connClass === ConnClass.Tls) {
        return sniffPlaintext(info.origin === ConnOrigin.Found, (kind) =>
          kind === "redis"
            ? createRedisStream(info, ctx)
            : kind === "h2"
            ? createHttp2Stream(info, ctx, { joined: false })
            : kind === "h2-joined"
              ? createHttp2Stream(info, ctx, { joined: true })
              : kind === "ws-joined"
                ? createJoinedWebSocketStream(info, ctx)
                : createHttp1Stream(info, ctx),
        );
      }
      stats.unparsedConnections++;
      return null;
    },
  });
  return {
    record(bytes, view, offset, length) {
      stats.records++;
      stats.recordBytes += length;
      let event;
      try {
        event = decodeEvent(bytes, view, offset, length);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        stats.undecodable++;
        return;
      }
      if (event.kind === "lib-open") {
        opts.onLibOpen?.(event.pid, event.path, event.fd);
        return;
      }
      if (event.kind === "tls-secret") return; // only tapwire keylog asks for these
      table.handle(event);
      if (event.kind === "proc-exec") opts.onExec?.(event.pid, event.cgroupId);
    },
    endBatch: () => table.endBatch(),
    close: (tsNs) => table.closeAll(tsNs),
    stats,
    connections: table,
  };
}


/** A stream that decides from its first bytes which protocol reads it. */
function sniffPlaintext(found: boolean, open: (kind: "h1" | "h2" | "h2-joined" | "ws-joined" | "redis") => StreamSink): StreamSink {
  let inner: StreamSink | undefined;
  return {
    data(dir, bytes, tsNs, otherBehind) {
      if (!inner) {
        // A server may send its SETTINGS before the client's preface arrives.
        const http1 = isHttp1RequestStart(bytes) || isHttp1ResponseStart(bytes);
        const kind = isRedisCommandStart(bytes)
          ? "redis"
          : startsWithH2Preface(bytes, 14)
            ? "h2"
          : !http1 && looksLikeH2Frame(bytes)
            ? found
              ? "h2-joined"
              : "h2"
            : !http1 && found && looksLikeWebSocketFrames(bytes)
              ? "ws-joined"
              : "h1";
        inner = open(kind);
      }
      inner.data(dir, bytes, tsNs, otherBehind);
    },
    gap: (dir, lost, tsNs) => inner?.gap(dir, lost, tsNs),
    unseen: (dir, count, tsNs) => inner?.unseen(dir, count, tsNs),
    close: (tsNs) => inner?.close(tsNs),
  };
}

