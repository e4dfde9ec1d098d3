// The user-side pipeline from ring buffer records to flows: decode, connection table,
// protocol streams. Live capture feeds it from the ring; the replay benchmark and tests
// feed it recorded records.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { decodeEvent, ConnClass, DecodeError } from "../bpf/events.ts";
import { createConnectionTable, type ConnectionTable } from "../conn/connection-table.ts";
import { createProcessRegistry, type ProcessRegistry } from "../procs/process-registry.ts";
import { createFlowContext } from "./flow-context.ts";
import { createHttp1Stream } from "./http1-flows.ts";

export interface PipelineOptions {
  onFlow(flow: Flow): void;
  clockOffsetNs: number;
  maxBody: number;
  maxConnections?: number;
  processes?: ProcessRegistry;
  /** Tell the kernel to forget a connection whose process exited. */
  forget?(pid: number, fd: number): void;
}

export interface PipelineStats {
  records: number;
  flows: number;
  undecodable: number;
  /** Connections of a protocol this build does not parse yet (HTTP/2). */
  unparsedConnections: number;
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
  const stats: PipelineStats = { records: 0, flows: 0, undecodable: 0, unparsedConnections: 0 };
  const ctx = createFlowContext({
    clockOffsetNs: opts.clockOffsetNs,
    maxBody: opts.maxBody,
    emit(flow) {
      stats.flows++;
      opts.onFlow(flow);
    },
  });
  const table = createConnectionTable({
    processes: opts.processes ?? createProcessRegistry(),
    maxConnections: opts.maxConnections,
    forget: opts.forget,
    // PROTOCOL_LIST: a protocol parsed in user space gets its stream here.
    openStream(info) {
      if (info.connClass === ConnClass.Http1) return createHttp1Stream(info, ctx);
      stats.unparsedConnections++;
      return null;
    },
  });
  return {
    record(bytes, view, offset, length) {
      stats.records++;
      let event;
      try {
        event = decodeEvent(bytes, view, offset, length);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        stats.undecodable++;
        return;
      }
      table.handle(event);
    },
    endBatch: () => table.endBatch(),
    close: (tsNs) => table.closeAll(tsNs),
    stats,
    connections: table,
  };
}
