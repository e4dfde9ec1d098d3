// Capture, as every command that needs it runs it: load the probes, find the TLS libraries,
// drain the ring buffer on a short timer through the pipeline, and stop cleanly.
import { loadProbes, type LoadedProbes } from "../bpf/loader.ts";
import { readBpfObject } from "../bpf/object.ts";
import { monotonicToWallOffsetNs } from "../bpf/clock.ts";
import { createPipeline, type Pipeline } from "../flows/pipeline.ts";
import { createTlsProbes, type TlsProbes } from "../probes/tls-probes.ts";
import { loadDecoder } from "../elfkit/rets.ts";
import { UsageError, type CaptureArgs } from "./args.ts";
import { loadGrpcSchemas, SchemaError } from "../protocols/grpc/schema.ts";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { createRedactor } from "../flows/redact.ts";

/** Records handled per turn of the event loop before output gets its turn. */
const DRAIN_BATCH = 8192;
/** How long to sleep when the ring buffer was empty. */
const IDLE_POLL_MS = 5;

export interface CaptureEngine {
  readonly probes: LoadedProbes;
  readonly pipeline: Pipeline;
  readonly tls: TlsProbes | undefined;
  /** The "ready: ..." line. */
  readonly readyLine: string;
  /** Drain what is left, end every connection, detach; returns the summary line. */
  stop(): Promise<string>;
}

export type CaptureOptions = Pick<CaptureArgs, "pids" | "comms" | "ports" | "ringBytes" | "maxBody" | "tls" | "verbose" | "protoPaths" | "protoSets" | "redact">;

export async function startCapture(args: CaptureOptions, opts: { onFlow(flow: Flow): void; afterBatch?(): void }): Promise<CaptureEngine> {
  // Schemas first: a mistake in them is a usage error, before anything is loaded.
  let grpcDecoder;
  try {
    grpcDecoder = loadGrpcSchemas({ protoPaths: args.protoPaths, protoSets: args.protoSets });
  } catch (e) {
    if (e instanceof SchemaError) throw new UsageError(e.message);
    throw e;
  }
  const object = await readBpfObject();
  const probes = loadProbes({
    object,
    ringBytes: args.ringBytes,
    selfPid: process.pid,
    filters: { pids: args.pids, comms: args.comms, ports: args.ports },
  });

  const log = (line: string) => process.stderr.write(line + "\n");
  let tls: TlsProbes | undefined;
  if (args.tls) {
    await loadDecoder(); // Go binaries' RETs are found by decoding their code
    tls = createTlsProbes({
      attach: (u) => probes.attachUprobe(u),
      setGoBinary: (id, config) => probes.setGoBinary(id, config),
      goSupported: probes.uprobeMulti,
      log: args.verbose ? log : () => {},
    });
    tls.scanRunning();
  }

  const redact = args.redact.length ? createRedactor(args.redact) : undefined;
  const pipeline = createPipeline({
    onFlow: redact
      ? (flow) => {
          redact(flow);
          opts.onFlow(flow);
        }
      : opts.onFlow,
    clockOffsetNs: monotonicToWallOffsetNs(),
    maxBody: args.maxBody,
    forget: (pid, fd) => probes.forgetConnection(pid, fd),
    tlsLibrary: (id) => tls?.library(id)?.version ?? "OpenSSL",
    grpcDecoder,
    onExec: tls ? (pid) => tls.onExec(pid) : undefined,
    onLibOpen: tls ? (pid, path, fd) => tls.onLibOpen(pid, path, fd) : undefined,
  });
  const record = pipeline.record;

  const readyLine =
    `ready: ${probes.attached.length} probes attached` +
    (tls ? `; TLS probed in ${tls.libraries.length} files` : "; TLS off") +
    `; ring buffer ${args.ringBytes >> 20} MiB` +
    (args.pids.length ? `; pids ${args.pids.join(",")}` : "") +
    (args.comms.length ? `; processes ${args.comms.join(",")}` : "") +
    (args.ports.length ? `; ports ${args.ports.join(",")}` : "");

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

  return {
    probes,
    pipeline,
    tls,
    readyLine,
    async stop() {
      stopping = true;
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
        (pipeline.connections.stats.lostBytes ? `; ${pipeline.connections.stats.lostBytes} bytes lost` : "")
      );
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}
