// Capture, as every command that needs it runs it: load the probes, find the TLS libraries,
// drain the ring buffer on a short timer through the pipeline, and stop cleanly.
import { readlinkSync } from "node:fs";
import { loadProbes, type LoadedProbes } from "../bpf/loader.ts";
import type { SelfListener } from "../bpf/endpoints.ts";
import { readBpfObject } from "../bpf/object.ts";
import { monotonicToWallOffsetNs } from "../bpf/clock.ts";
import { createPipeline, type Pipeline } from "../flows/pipeline.ts";
import { createTlsProbes, type FileVerdict, type TlsProbes } from "../probes/tls-probes.ts";
import { loadDecoder } from "../elfkit/rets.ts";
import { UsageError, type CaptureArgs } from "./args.ts";
import { loadGrpcSchemas, SchemaError } from "../protocols/grpc/schema.ts";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { createRedactor } from "../flows/redact.ts";
import { containerMatches, createContainerDirectory, type ContainerDirectory, type ContainerLabel } from "../procs/containers.ts";
import { startExecHold, ExecHoldUnavailable, type ExecHold } from "../probes/exec-hold.ts";
import { execHolderCommand } from "./holder-command.ts";

/** Records handled per turn of the event loop before output gets its turn. */
const DRAIN_BATCH = 8192;
/** How long to sleep when the ring buffer was empty. */
const IDLE_POLL_MS = 5;

export interface CaptureEngine {
  readonly probes: LoadedProbes;
  readonly pipeline: Pipeline;
  readonly tls: TlsProbes | undefined;
  /** Execs held until probed; undefined when not held (--no-hold, --no-tls, or unavailable). */
  readonly hold: ExecHold | undefined;
  readonly containers: ContainerDirectory;
  /** What is captured: processes by pid or name, containers by name or id (empty: all). */
  readonly captureFilter: CaptureFilter;
  setCaptureFilter(filter: CaptureFilter): void;
  /** Whether a container's traffic is captured under the filter in force. */
  captures(container: ContainerLabel): boolean;
  /** The "ready: ..." line. */
  readonly readyLine: string;
  /** Drain what is left, end every connection, detach; returns the summary line. */
  stop(): Promise<string>;
}

export type CaptureOptions = Pick<
  CaptureArgs,
  "pids" | "comms" | "ports" | "ringBytes" | "maxBody" | "tls" | "verbose" | "protoPaths" | "protoSets" | "redact" | "containers" | "dockerSocket" | "hold" | "holdTimeoutMs"
> & {
  /** Where tapwire itself listens (its API): its clients on this host are not captured. */
  selfListeners?: SelfListener[];
};

export interface CaptureFilter {
  pids: number[];
  comms: string[];
  containers: string[];
}

export async function startCapture(args: CaptureOptions, opts: { onFlow(flow: Flow): void; afterBatch?(): void }): Promise<CaptureEngine> {
  // Schemas first: a mistake in them is a usage error, before anything is loaded.
  let grpcDecoder;
  try {
    grpcDecoder = loadGrpcSchemas({ protoPaths: args.protoPaths, protoSets: args.protoSets });
  } catch (e) {
    if (e instanceof SchemaError) throw new UsageError(e.message);
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
    });
    tls.scanRunning();
  }
  const hold = tls && args.hold ? await startHolding(tls, probes, args, log) : undefined;
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
    clockOffsetNs: monotonicToWallOffsetNs(),
    maxBody: args.maxBody,
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

  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopping = false;
  const drainOnce = () => {
    const n = probes.ring.drain(record, DRAIN_BATCH);
    pipeline.endBatch();
    return n;
  };
  const loop = () => {
    timer = undefined;
    if (stopping) return;
    const n = drainOnce();
    if (n > 0) opts.afterBatch?.();
    timer = n >= DRAIN_BATCH ? (setImmediate(loop) as unknown as ReturnType<typeof setTimeout>) : setTimeout(loop, n > 0 ? 1 : IDLE_POLL_MS);
  };
  loop();
  // Asked while events already flow: a slow engine delays "ready", never the capture.
  await containers.start();
  if (filter.containers.length && kernelContainerFilter) probes.setFilters(kernelFilters());
  for (const choice of args.containers) {
    if (!containers.running().some((c) => containerMatches(choice, c))) log(`tapwire: --container ${choice}: no running container has this name or id yet; it is captured from when one starts`);
  }

  return {
    probes,
    pipeline,
    tls,
    hold,
    containers,
    readyLine,
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
      stopping = true;
      // Nothing on the host may wait for a tapwire that is leaving.
      await hold?.close();
      containers.close();
      if (timer) clearTimeout(timer);
      // What is already in the ring still becomes flows; then every open connection ends.
      while (drainOnce() > 0);
      pipeline.close(Number(process.hrtime.bigint()));
      opts.afterBatch?.();
      const c = probes.counters();
      await probes.close(); // the TLS uprobes too
      const drops = Object.entries(c).filter(([k, v]) => k.startsWith("drop_") && v > 0);
      const s = pipeline.stats;
      return (
        `tapwire: ${s.flows} flows from ${s.records} events; ` +
        (drops.length ? `drops: ${drops.map(([k, v]) => `${k.slice(5)}=${v}`).join(" ")}` : "no drops") +
        (pipeline.connections.stats.lostBytes ? `; ${pipeline.connections.stats.lostBytes} bytes lost` : "") +
        (hold ? `; ${holdSummary(hold)}` : "")
      );
    },
  };
}

/** Starts holding new programs' execs until their files are probed; undefined (said once)
 * where fanotify permission events are not available. */
async function startHolding(tls: TlsProbes, probes: LoadedProbes, args: CaptureOptions, log: (line: string) => void): Promise<ExecHold | undefined> {
  /** The exec just answered, for its -v line. */
  let last: { pid: number; verdict: FileVerdict; before: number; ms: number } | undefined;
  try {
    const hold = await startExecHold({
      timeoutMs: args.holdTimeoutMs,
      holderCommand: execHolderCommand(),
      decide(pid, file) {
        const t0 = performance.now();
        const before = tls.libraries.length;
        const verdict = tls.onHeldExec(pid, file, probes.execLibraryPath(pid));
        last = { pid, verdict, before, ms: performance.now() - t0 };
        return verdict;
      },
      afterAnswer(file) {
        tls.finishHeld();
        if (!args.verbose || !last) return;
        const probed = tls.libraries.slice(last.before).map((l) => l.version);
        const what = probed.length ? `probed ${probed.join(", ")}` : last.verdict === "known" ? "nothing to probe" : "to be looked at again on its next exec";
        log(`hold: ${fileName(file)} (pid ${last.pid}): ${what} in ${last.ms.toFixed(1)} ms`);
      },
      log,
    });
    // What the scan settled is never held.
    hold.ignore(tls.knownPaths());
    if (args.verbose) {
      log(
        `tapwire: a program started from now on waits at its exec until its file is probed (at most ${args.holdTimeoutMs} ms; ${hold.filesystems} filesystems)` +
          (hold.skipped ? `; not on ${hold.skipped}` : ""),
      );
    }
    return hold;
  } catch (e) {
    if (!(e instanceof ExecHoldUnavailable)) throw e;
    log(`tapwire: programs started from now on are not held until probed (${e.message}): their first requests may be missed`);
    return undefined;
  }
}

/** The path a descriptor's file was opened by. */
function fileName(fdPath: string): string {
  try {
    return readlinkSync(fdPath).replace(/ \(deleted\)$/, "");
  } catch {
    return fdPath;
  }
}

/** "3 execs held (longest 12.0 ms)", with those let go at the deadline; "no exec held". */
export function holdSummary(hold: ExecHold): string {
  const s = hold.stats;
  if (!s.held) return "no exec held";
  return `${s.held} exec${s.held === 1 ? "" : "s"} held (longest ${s.maxMs.toFixed(1)} ms)` + (s.timedOut ? `, ${s.timedOut} let go unprobed at the deadline` : "");
}

/** "container NAME" (or its short id) for a process in a container, for messages about its files. */
export function containerRoot(containers: ContainerDirectory, pid: number): string | undefined {
  const c = containers.labelOf(pid, 0);
  return c && `container ${c.name || c.id.slice(0, 12)}`;
}
