// Capture's composition root, as every command that captures runs it (capture, serve): load
// the probes, find the TLS libraries and hold new programs until probed, drain the ring
// buffer through the pipeline, and stop cleanly. Above it, the API and the CLI see only the
// narrow Capture interface: counters, TLS libraries, the capture filter and containers —
// nothing of the probes' or the pipeline's insides.
import { loadProbes } from "../bpf/loader.ts";
import type { SelfListener } from "../bpf/endpoints.ts";
import { readBpfObject } from "../bpf/object.ts";
import { monotonicToWallOffsetNs } from "../bpf/clock.ts";
import { createPipeline } from "../flows/pipeline.ts";
import type { LiveFlows, Overflows } from "../flows/flow-context.ts";
import { createTlsProbes, type TlsLibrary, type TlsProbes } from "../probes/tls-probes.ts";
import { loadDecoder } from "../elfkit/decode.ts";
import type { PlacementMode } from "../probes/openssl.ts";
import { loadGrpcSchemas, SchemaError } from "../protocols/grpc/schema.ts";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { createRedactor } from "../flows/redact.ts";
import { containerMatches, createContainerDirectory, type ContainerDirectory, type ContainerLabel } from "../procs/containers.ts";
import { startDrainLoop } from "./drain-loop.ts";
import { holdSummary, startHolding } from "./holding.ts";
import { CaptureConfigError } from "./errors.ts";

export interface CaptureFilter {
  pids: number[];
  comms: string[];
  containers: string[];
}

export interface CaptureOptions extends CaptureFilter {
  ports: number[];
  /** Kernel ring buffer size in bytes. */
  ringBytes: number;
  /** Body bytes kept per message. */
  maxBody: number;
  /** Bytes of gRPC messages kept per call, each way (default DEFAULT_LIMITS'). */
  maxStreamBody?: number;
  /** TLS plaintext (uprobes). */
  tls: boolean;
  /** Diagnostics about every file probed and every exec held. */
  verbose: boolean;
  /** gRPC message schemas: directories of .proto files, and descriptor set files. */
  protoPaths: string[];
  protoSets: string[];
  /** Header names whose values are replaced (empty: none). */
  redact: string[];
  /** The Docker Engine API's unix socket ("" to ask no engine). */
  dockerSocket: string;
  /** Hold the first exec of a file not seen yet until it is probed, at most holdTimeoutMs. */
  hold: boolean;
  holdTimeoutMs: number;
  /** Where uprobes go (src/probes/uprobe-placement.ts); "chosen" when absent. */
  uprobePlacement?: PlacementMode;
  /** How to start the exec holder: this executable with the holder's command. */
  holderCommand: string[];
  /** Where tapwire itself listens (its API): its clients on this host are not captured. */
  selfListeners?: SelfListener[];
}

/** What capture counted: GetStats and the exit summary. */
export interface CaptureStats {
  /** Kernel records read, and the bytes they carried. */
  events: number;
  bytes: number;
  /** Every drop counter of the kernel side that is not zero, by cause. */
  drops: Record<string, number>;
  /** Connections open now, flows made since start, bytes lost to gaps and the flows they touched. */
  connections: number;
  flows: number;
  lostBytes: number;
  flowsWithLostBytes: number;
  /** Execs held until probed, and those let go at the deadline. */
  execHolds: number;
  execHoldTimeouts: number;
  /** Runs of the TLS uprobe programs (each a trap in a traced program). */
  uprobeHits: number;
  /** How often each per-connection bound was reached (only those not zero). */
  overflows: Record<string, number>;
}

export interface Capture {
  /** The "ready: ..." line. */
  readonly readyLine: string;
  /** BPF programs attached. */
  readonly probesAttached: number;
  stats(): CaptureStats;
  /** The TLS libraries and Go programs probed so far. */
  tlsLibraries(): readonly TlsLibrary[];
  readonly containers: ContainerDirectory;
  /** What is captured: processes by pid or name, containers by name or id (empty: all). */
  readonly captureFilter: CaptureFilter;
  setCaptureFilter(filter: CaptureFilter): void;
  /** Whether a container's traffic is captured under the filter in force. */
  captures(container: ContainerLabel): boolean;
  /** Drain what is left, end every connection, detach; returns the summary line. */
  stop(): Promise<string>;
}

export async function startCapture(
  args: CaptureOptions,
  opts: {
    onFlow(flow: Flow): void;
    /** Flows while they are open; their end is onFlow. Absent: no live work is done. */
    live?: LiveFlows;
    afterBatch?(): void;
    /** Drop counters of the outputs (stdout, subscribers), reported with the kernel's. */
    drops?(): Record<string, number>;
  },
): Promise<Capture> {
  // Schemas first: a mistake in them is the user's, said before anything is loaded.
  let grpcDecoder;
  try {
    grpcDecoder = loadGrpcSchemas({ protoPaths: args.protoPaths, protoSets: args.protoSets });
  } catch (e) {
    if (e instanceof SchemaError) throw new CaptureConfigError(e.message);
    throw e;
  }
  const log = (line: string) => process.stderr.write(line + "\n");
  const containers = createContainerDirectory({ socket: args.dockerSocket, log });
  // The kernel filters containers by cgroup v2 id; a host without cgroup v2 is filtered
  // here, flow by flow, by the container each flow is labeled with.
  const kernelContainerFilter = containers.cgroupMount !== undefined;
  let filter: CaptureFilter = { pids: args.pids, comms: args.comms, containers: args.containers };
  const chosenCgroups = () => {
    const ids = new Set<number>();
    // A container that has just started is not named until the engine answers: when a
    // container is chosen by name, it is let through meanwhile (its flows are checked by
    // their label below) and shut out once named otherwise.
    const byName = containers.engine.reachable && filter.containers.some((choice) => !/^[0-9a-f]{12,64}$/.test(choice));
    for (const c of containers.running()) {
      if (c.cgroupId && ((byName && !c.name) || filter.containers.some((choice) => containerMatches(choice, c)))) ids.add(c.cgroupId);
    }
    return [...ids];
  };
  const kernelFilters = () => ({
    pids: filter.pids,
    comms: filter.comms,
    ports: args.ports,
    cgroups: filter.containers.length && kernelContainerFilter ? chosenCgroups() : undefined,
  });

  // The probes load first (their checks say what is missing: root, BTF, libbpf), with
  // chosen containers' filter closed; the containers that run are known before "ready"
  // (the engine is asked once events already flow, below).
  const object = await readBpfObject();
  const probes = loadProbes({
    object,
    ringBytes: args.ringBytes,
    selfPid: process.pid,
    // tapwire keylog's program (sleepable) is not capture's.
    programFilter: (name) => name !== "tw_go_keylog",
    filters: kernelFilters(),
    selfListeners: args.selfListeners,
  });
  containers.onChange(() => {
    if (filter.containers.length && kernelContainerFilter) probes.setFilters(kernelFilters());
  });

  let tls: TlsProbes | undefined;
  if (args.tls) {
    await loadDecoder(); // Go binaries' RETs are found by decoding their code
    tls = createTlsProbes({
      attach: (u) => probes.attachUprobe(u),
      setGoBinary: (id, config) => probes.setGoBinary(id, config),
      goSupported: probes.uprobeMulti,
      log: args.verbose ? log : () => {},
      rootOf: (pid) => containerRoot(containers, pid),
      placement: args.uprobePlacement,
    });
    tls.scanRunning();
  }
  const hold = tls && args.hold ? await startHolding(tls, probes, { timeoutMs: args.holdTimeoutMs, holderCommand: args.holderCommand, verbose: args.verbose }, log) : undefined;
  if (tls && !args.hold && args.verbose) log("tapwire: --no-hold: a program started from now on runs before tapwire has probed it: its first requests may be missed");

  const redact = args.redact.length ? createRedactor(args.redact) : undefined;
  // Containers chosen: a flow's label decides too (hosts without cgroup v2, containers let
  // through the kernel while unnamed).
  const wanted = (flow: Flow) => {
    if (!filter.containers.length) return true;
    const c = flow.connection?.container;
    return !!c && filter.containers.some((choice) => containerMatches(choice, c));
  };
  const pipeline = createPipeline({
    onFlow(flow) {
      if (!wanted(flow)) return;
      redact?.(flow);
      opts.onFlow(flow);
    },
    live: opts.live && {
      started(flow) {
        if (!wanted(flow)) return;
        redact?.(flow);
        opts.live!.started(flow);
      },
      // Messages of a flow whose start was not passed on are ignored by every consumer.
      messages: opts.live.messages,
    },
    clockOffsetNs: monotonicToWallOffsetNs(),
    maxBody: args.maxBody,
    limits: args.maxStreamBody === undefined ? undefined : { maxStreamBody: args.maxStreamBody },
    forget: (pid, fd) => probes.forgetConnection(pid, fd),
    tlsLibrary: (id) => tls?.library(id)?.version ?? "OpenSSL",
    grpcDecoder,
    containerOf: (pid, cgroupId) => containers.labelOf(pid, cgroupId),
    onExec(pid, cgroupId) {
      // The container first: a chosen one's filter entry must be there before its traffic.
      containers.noteProcess(pid, cgroupId);
      tls?.onExec(pid);
    },
    onLibOpen: tls ? (pid, path, fd) => tls.onLibOpen(pid, path, fd) : undefined,
  });
  const record = pipeline.record;

  const readyLine =
    `ready: ${probes.attached.length} probes attached` +
    (tls ? `; TLS probed in ${tls.libraries.length} files` : "; TLS off") +
    (hold ? `; new programs held up to ${args.holdTimeoutMs} ms until probed` : tls ? "; new programs not held" : "") +
    `; ring buffer ${args.ringBytes >> 20} MiB` +
    (args.pids.length ? `; pids ${args.pids.join(",")}` : "") +
    (args.comms.length ? `; processes ${args.comms.join(",")}` : "") +
    (args.ports.length ? `; ports ${args.ports.join(",")}` : "") +
    (args.containers.length ? `; containers ${args.containers.join(",")}` : "");

  const drain = startDrainLoop(probes.ring, record, (n) => {
    pipeline.endBatch();
    if (n > 0) opts.afterBatch?.();
  });
  // Asked while events already flow: a slow engine delays "ready", never the capture.
  await containers.start();
  if (filter.containers.length && kernelContainerFilter) probes.setFilters(kernelFilters());
  for (const choice of args.containers) {
    if (!containers.running().some((c) => containerMatches(choice, c))) log(`tapwire: --container ${choice}: no running container has this name or id yet; it is captured from when one starts`);
  }

  const stats = (): CaptureStats => {
    const c = probes.counters();
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(c)) if (k.startsWith("drop_") && v > 0) drops[k.slice(5)] = v;
    for (const [k, v] of Object.entries(opts.drops?.() ?? {})) if (v > 0) drops[k] = v;
    const s = pipeline.stats;
    return {
      events: s.records,
      bytes: s.recordBytes,
      drops,
      connections: pipeline.connections.stats.connections,
      flows: s.flows,
      lostBytes: pipeline.connections.stats.lostBytes,
      flowsWithLostBytes: s.flowsWithLostBytes,
      execHolds: hold?.stats.held ?? 0,
      execHoldTimeouts: hold?.stats.timedOut ?? 0,
      uprobeHits: c.uprobe_hits ?? 0,
      overflows: overflowCounts(s.overflows),
    };
  };

  return {
    readyLine,
    probesAttached: probes.attached.length,
    stats,
    tlsLibraries: () => tls?.libraries ?? [],
    containers,
    get captureFilter() {
      return filter;
    },
    captures(c) {
      return !filter.containers.length || filter.containers.some((choice) => containerMatches(choice, c));
    },
    setCaptureFilter(next) {
      filter = { pids: [...next.pids], comms: [...next.comms], containers: [...next.containers] };
      probes.setFilters(kernelFilters());
    },
    async stop() {
      // Nothing on the host may wait for a tapwire that is leaving.
      await hold?.close();
      containers.close();
      // What is already in the ring still becomes flows; then every open connection ends.
      drain.stop();
      pipeline.close(Number(process.hrtime.bigint()));
      opts.afterBatch?.();
      const summary = summaryLine(stats()) + (hold ? `; ${holdSummary(hold)}` : "");
      await probes.close(); // the TLS uprobes too
      return summary;
    },
  };
}

/** "tapwire: N flows from M events; no drops" (or the drops by cause, bytes lost, bounds reached). */
export function summaryLine(s: CaptureStats): string {
  const drops = Object.entries(s.drops);
  const overflows = Object.entries(s.overflows);
  return (
    `tapwire: ${s.flows} flows from ${s.events} events; ` +
    (drops.length ? `drops: ${drops.map(([k, v]) => `${k}=${v}`).join(" ")}` : "no drops") +
    (s.lostBytes ? `; ${s.lostBytes} bytes lost, ${s.flowsWithLostBytes} flows marked incomplete by it` : "") +
    (overflows.length ? `; bounds reached: ${overflows.map(([k, v]) => `${k}=${v}`).join(" ")}` : "") +
    (s.uprobeHits ? `; ${s.uprobeHits} uprobe hits` : "")
  );
}

/** The pipeline's overflow counters by their snake_case names, only those not zero. */
function overflowCounts(o: Overflows): Record<string, number> {
  const out: Record<string, number> = {};
  const named: [string, number][] = [
    ["http1_pending_requests", o.http1PendingRequests],
    ["redis_pending_commands", o.redisPendingCommands],
    ["http2_open_streams", o.http2OpenStreams],
    ["http2_held_streams", o.http2HeldStreams],
    ["header_blocks", o.headerBlocks],
    ["stream_budget", o.streamBudget],
  ];
  for (const [k, v] of named) if (v) out[k] = v;
  return out;
}

/** "container NAME" (or its short id) for a process in a container, for messages about its files. */
export function containerRoot(containers: ContainerDirectory, pid: number): string | undefined {
  const c = containers.labelOf(pid, 0);
  return c && `container ${c.name || c.id.slice(0, 12)}`;
}
