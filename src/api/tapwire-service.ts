// TapwireService (proto/tapwire/v1/service.proto) over a running capture: the flow history,
// live subscriptions, the kernel's filters and counters.
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { release } from "node:os";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { TapwireService } from "../gen/tapwire/v1/service_pb.ts";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowStore } from "../flows/flow-store.ts";
import { PageTokenError } from "../flows/flow-store.ts";
import type { FlowBroadcast } from "../flows/flow-broadcast.ts";
import { compileFlowFilter } from "../flows/flow-filter.ts";
import type { CaptureEngine } from "../cli/engine.ts";

export interface ServiceDeps {
  version: string;
  engine: () => CaptureEngine;
  store: FlowStore;
  broadcast: FlowBroadcast;
  /** The ports given on the command line stay in force whatever SetCaptureFilter says. */
  ports: number[];
  features: string[];
}

const MAX_PAGE = 1000;
const MAX_LAST = 10_000;

export function tapwireService(deps: ServiceDeps): ServiceImpl<typeof TapwireService> {
  let captureFilter = { pids: [] as number[], processNames: [] as string[], containers: [] as string[] };
  return {
    getInfo() {
      const e = deps.engine();
      return {
        version: deps.version,
        kernel: release(),
        probesAttached: e.probes.attached.length,
        features: deps.features,
        tlsLibraries: (e.tls?.libraries ?? []).map((l) => `${l.version} ${l.path}`),
      };
    },
    getStats() {
      const e = deps.engine();
      const c = e.probes.counters();
      const drops: Record<string, bigint> = {};
      for (const [k, v] of Object.entries(c)) if (k.startsWith("drop_") && v > 0) drops[k.slice(5)] = BigInt(v);
      const s = e.pipeline.stats;
      return {
        events: BigInt(s.records),
        bytes: BigInt(s.recordBytes),
        drops,
        connections: BigInt(e.pipeline.connections.stats.connections),
        flows: BigInt(s.flows),
        historyFlows: BigInt(deps.store.count),
        historyBytes: BigInt(deps.store.bytes),
        subscribers: deps.broadcast.subscribers,
      };
    },
    async *watchFlows(req, ctx) {
      if (req.last > MAX_LAST) throw new ConnectError(`last: at most ${MAX_LAST}`, Code.InvalidArgument);
      const match = compileFlowFilter(req.filter);
      const sub = deps.broadcast.subscribe(match, { first: req.last ? deps.store.newest(match, req.last) : [] });
      ctx.signal.addEventListener("abort", () => sub.close(), { once: true });
      for await (const ev of sub) {
        if ("flow" in ev) yield { event: { case: "flow", value: ev.flow } };
        else yield { event: { case: "dropped", value: { count: BigInt(ev.dropped) } } };
      }
    },
    listFlows(req) {
      const size = req.pageSize || 100;
      if (size > MAX_PAGE) throw new ConnectError(`page_size: at most ${MAX_PAGE}`, Code.InvalidArgument);
      try {
        return deps.store.list(compileFlowFilter(req.filter), size, req.pageToken);
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
      if (f.containers.length) throw new ConnectError("containers: not supported by this build (no container awareness yet)", Code.Unimplemented);
      for (const n of f.processNames) {
        if (!n || Buffer.byteLength(n) > 15) throw new ConnectError(`process_names: "${n}" must be 1 to 15 bytes, as the kernel keeps them`, Code.InvalidArgument);
      }
      deps.engine().probes.setFilters({ pids: f.pids, comms: f.processNames, ports: deps.ports });
      captureFilter = { pids: [...f.pids], processNames: [...f.processNames], containers: [] };
      return { filter: captureFilter };
    },
    listProcesses() {
      return { processes: listProcesses(deps.engine(), deps.store) };
    },
  };
}

/** Processes that use a probed TLS library, and those seen in the history. */
function listProcesses(engine: CaptureEngine, store: FlowStore) {
  const libs = new Map((engine.tls?.libraries ?? []).map((l) => [l.fileKey, l]));
  const out = new Map<number, { pid: number; comm: string; exe: string; tlsLibraries: string[] }>();
  const note = (pid: number, comm: string, exe: string) => {
    let p = out.get(pid);
    if (!p) out.set(pid, (p = { pid, comm, exe, tlsLibraries: [] }));
    return p;
  };
  if (libs.size) {
    // Files are compared by device and inode: one library has many paths.
    const keys = new Map<string, string | undefined>();
    const keyOf = (path: string) => {
      if (!keys.has(path)) {
        try {
          const st = statSync(path);
          keys.set(path, `${st.dev}:${st.ino}`);
        } catch {
          keys.set(path, undefined);
        }
      }
      return keys.get(path);
    };
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      let maps = "";
      let exe = "";
      try {
        maps = readFileSync(`/proc/${pid}/maps`, "latin1");
        exe = readlinkSync(`/proc/${pid}/exe`);
      } catch {
        continue;
      }
      const used = new Set<string>();
      const exeLib = libs.get(keyOf(`/proc/${pid}/exe`) ?? "");
      if (exeLib) used.add(exeLib.version);
      for (const m of maps.matchAll(/ (\/\S+\.so[^\s/]*)$/gm)) {
        const lib = libs.get(keyOf(`/proc/${pid}/root${m[1]}`) ?? "");
        if (lib) used.add(lib.version);
      }
      if (!used.size) continue;
      let comm = "";
      try {
        comm = readFileSync(`/proc/${pid}/comm`, "latin1").trim();
      } catch {}
      note(pid, comm, exe).tlsLibraries.push(...used);
    }
  }
  for (const f of store.newest(() => true, store.count) as Flow[]) {
    const p = f.connection?.process;
    if (p) note(p.pid, p.comm, p.exe);
  }
  return [...out.values()].sort((a, b) => a.pid - b.pid);
}
