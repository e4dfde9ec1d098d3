// TapwireService (proto/tapwire/v1/service.proto) over a running capture: the flow history,
// live subscriptions, the kernel's filters and counters.
import { comm, exePath, pids } from "../procs/proc.ts";
import { release } from "node:os";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { TapwireService } from "../gen/tapwire/v1/service_pb.ts";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowStore } from "../flows/flow-store.ts";
import { PageTokenError } from "../flows/flow-store.ts";
import type { FlowBroadcast } from "../flows/flow-broadcast.ts";
import { compileFlowFilter, FilterSyntaxError, type FlowPredicate } from "../flows/flow-filter.ts";
import type { Capture } from "../capture/capture.ts";
import { listContainers } from "./container-list.ts";
import type { TrayceStats } from "./trayce.ts";
import { isContainerChoice } from "../procs/containers.ts";
import { createTlsUsage } from "../probes/tls-usage.ts";
import { create } from "@bufbuild/protobuf";
import { ContainerSchema, type Container } from "../gen/tapwire/v1/flow_pb.ts";
import { CaptureFilterSchema, type CaptureFilter, type FlowFilter } from "../gen/tapwire/v1/service_pb.ts";

export interface ServiceDeps {
  version: string;
  /** The running capture; throws `unavailable` while it is starting. */
  engine: () => Capture;
  store: FlowStore;
  broadcast: FlowBroadcast;
  /** The ports given on the command line stay in force whatever SetCaptureFilter says. */
  ports: number[];
  features: string[];
  /** The Trayce push's counters, with --trayce. */
  trayce?: () => TrayceStats | undefined;
}

const MAX_PAGE = 1000;

function trayceStats(s: TrayceStats | undefined) {
  return { trayceSent: BigInt(s?.sent ?? 0), trayceDropped: BigInt(s?.dropped ?? 0), trayceRefused: BigInt(s?.refused ?? 0), trayceTruncated: BigInt(s?.truncated ?? 0) };
}
const MAX_LAST = 10_000;

/** GetStats' answer: the agent's counters now (throws `unavailable` while it is starting). */
export function agentStats(deps: ServiceDeps) {
  const s = deps.engine().stats();
  return {
    events: BigInt(s.events),
    bytes: BigInt(s.bytes),
    drops: Object.fromEntries(Object.entries(s.drops).map(([k, v]) => [k, BigInt(v)])),
    connections: BigInt(s.connections),
    flows: BigInt(s.flows),
    historyFlows: BigInt(deps.store.count),
    historyBytes: BigInt(deps.store.bytes),
    subscribers: deps.broadcast.subscribers,
    execHolds: BigInt(s.execHolds),
    execHoldTimeouts: BigInt(s.execHoldTimeouts),
    uprobeHits: BigInt(s.uprobeHits),
    flowsWithLostBytes: BigInt(s.flowsWithLostBytes),
    overflows: Object.fromEntries(Object.entries(s.overflows).map(([k, v]) => [k, BigInt(v)])),
    ...trayceStats(deps.trayce?.()),
  };
}

export function tapwireService(deps: ServiceDeps): ServiceImpl<typeof TapwireService> {
  return {
    getInfo() {
      const e = deps.engine();
      return {
        version: deps.version,
        kernel: release(),
        probesAttached: e.probesAttached,
        features: deps.features,
        tlsLibraries: e.tlsLibraries().map((l) => `${l.version} ${l.path}${l.where ? ` (${l.where})` : ""}`),
      };
    },
    getStats: () => agentStats(deps),
    async *watchFlows(req, ctx) {
      if (req.last > MAX_LAST) throw new ConnectError(`last: at most ${MAX_LAST}`, Code.InvalidArgument);
      const match = filterOf(req.filter);
      const sub = deps.broadcast.subscribe(match, {
        // The history's newest, completed flows only (open ones start live from now).
        first: req.last ? deps.store.newest((f) => !f.open && match(f), req.last) : [],
        live: req.live ? { openMatch: filterOf(req.filter, { open: true }) } : undefined,
      });
      ctx.signal.addEventListener("abort", () => sub.close(), { once: true });
      for await (const ev of sub) {
        if ("flow" in ev) yield { event: { case: "flow", value: ev.flow } };
        else if ("event" in ev) yield { event: { case: "flowEvent", value: ev.event } };
        else yield { event: { case: "dropped", value: { count: BigInt(ev.dropped) } } };
      }
    },
    listFlows(req) {
      const size = req.pageSize || 100;
      if (size > MAX_PAGE) throw new ConnectError(`page_size: at most ${MAX_PAGE}`, Code.InvalidArgument);
      try {
        return deps.store.list(filterOf(req.filter), size, req.pageToken);
      } catch (e) {
        if (e instanceof PageTokenError) throw new ConnectError(e.message, Code.InvalidArgument);
        throw e;
      }
    },
    getFlow(req) {
      if (!req.id) throw new ConnectError("id is required", Code.InvalidArgument);
      const flow = deps.store.get(req.id);
      if (!flow) throw new ConnectError(`no flow ${req.id} in the history`, Code.NotFound);
      return { flow };
    },
    setCaptureFilter(req) {
      const f = req.filter ?? { pids: [], processNames: [], containers: [] };
      for (const n of f.processNames) {
        if (!n || Buffer.byteLength(n) > 15) throw new ConnectError(`process_names: "${n}" must be 1 to 15 bytes, as the kernel keeps them`, Code.InvalidArgument);
      }
      for (const c of f.containers) {
        if (!isContainerChoice(c)) throw new ConnectError(`containers: "${c}" is not a container name or id`, Code.InvalidArgument);
      }
      const engine = deps.engine();
      engine.setCaptureFilter({ pids: f.pids, comms: f.processNames, containers: f.containers });
      return { filter: captureFilterMessage(engine) };
    },
    listProcesses() {
      return { processes: listProcesses(deps.engine(), deps.store) };
    },
    listContainers() {
      const engine = deps.engine();
      return listContainers(engine.containers, engine.tlsLibraries(), (c) => engine.captures(c));
    },
  };
}

function captureFilterMessage(engine: Capture): CaptureFilter {
  const f = engine.captureFilter;
  return create(CaptureFilterSchema, { pids: f.pids, processNames: f.comms, containers: f.containers });
}

/** Processes that use a probed TLS library, and those seen in the history. */
function listProcesses(engine: Capture, store: FlowStore) {
  const usage = createTlsUsage(engine.tlsLibraries());
  const out = new Map<number, { pid: number; comm: string; exe: string; tlsLibraries: string[]; container?: Container }>();
  const note = (pid: number, comm: string, exe: string) => {
    let p = out.get(pid);
    if (!p) {
      const c = engine.containers.labelOf(pid, 0);
      out.set(pid, (p = { pid, comm, exe, tlsLibraries: [], container: c && create(ContainerSchema, c) }));
    }
    return p;
  };
  if (engine.tlsLibraries().length) {
    for (const pid of pids()) {
      const used = usage.ofProcess(pid);
      if (!used.length) continue;
      const exe = exePath(pid);
      const name = comm(pid);
      if (exe === undefined || name === undefined) continue; // gone meanwhile
      note(pid, name, exe).tlsLibraries.push(...new Set(used.map((l) => l.version)));
    }
  }
  for (const f of store.newest(() => true, store.count) as Flow[]) {
    const p = f.connection?.process;
    if (p) note(p.pid, p.comm, p.exe);
  }
  return [...out.values()].sort((a, b) => a.pid - b.pid);
}

/** A request's filter as a predicate; an expression that does not parse is the caller's to fix. */
function filterOf(filter: FlowFilter | undefined, opts: { open?: boolean } = {}): FlowPredicate {
  try {
    return compileFlowFilter(filter, opts);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new ConnectError(`filter.expression: ${e.message}`, Code.InvalidArgument);
    throw e;
  }
}
