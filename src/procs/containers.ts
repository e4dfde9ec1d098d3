// What tapwire knows of containers: which container a process is in (from its cgroup, so it
// works with no engine at all), and each container's name, image, main pid and cgroup id
// (from the Docker Engine API when it answers). New containers are learnt from the
// engine's events and, sooner, from the first exec of one of their processes: that is
// what lets a container chosen with --container be captured from its first request.
//
// This is the composition of three parts, each with one job: the cgroup-id-to-container
// cache (cgroup-container-cache.ts), the registry of known containers and their state
// (container-registry.ts), and the session with the engine (container-engine-session.ts).
// The cache reports the containers it meets to the registry; the registry asks the session
// about them; the session hands the engine's answers to the registry.
import { createCgroupContainerCache } from "./cgroup-container-cache.ts";
import { createContainerEngineSession, type EngineStatus } from "./container-engine-session.ts";
import { createContainerRegistry, type ContainerLabel, type ContainerRegistry, type KnownContainer } from "./container-registry.ts";
import { PROC_ROOT } from "./proc.ts";

export type { EngineStatus } from "./container-engine-session.ts";
export { containerMatches, isContainerChoice, type ContainerLabel, type KnownContainer } from "./container-registry.ts";
export { containerProcesses } from "./cgroups.ts";

export interface ContainerDirectory {
  /** The container of a process, from the cgroup id the kernel reported (0: unknown) and its pid. */
  labelOf(pid: number, cgroupId: number): ContainerLabel | undefined;
  /** A process started: learn its container now, while the process surely exists. */
  noteProcess(pid: number, cgroupId: number): void;
  /** Running containers: the engine's, and those only seen through processes. */
  running(): KnownContainer[];
  /** Called after containers appear, are named, or stop. */
  onChange(listener: () => void): void;
  readonly engine: EngineStatus;
  /** The v2 hierarchy's mount, undefined on a v1-only host (no kernel container filter). */
  readonly cgroupMount: string | undefined;
  /** Ask the engine for the running containers and follow its events. */
  start(): Promise<void>;
  close(): void;
}

export interface ContainerDirectoryOptions {
  /** The engine's socket; "" to not ask any engine. */
  socket: string;
  procRoot?: string;
  /** How often to try again after the engine went away or was not there. */
  retryMs?: number;
  /** One line per change of the engine's state (unreachable, back). */
  log?(line: string): void;
}

export function createContainerDirectory(opts: ContainerDirectoryOptions): ContainerDirectory {
  const procRoot = opts.procRoot ?? PROC_ROOT;
  const log = opts.log ?? (() => {});
  // The registry is made last: the other two reach it only once they are in use.
  let registry!: ContainerRegistry;
  const cache = createCgroupContainerCache({ procRoot, sightings: { seen: (id, pid, own) => registry.seen(id, pid, own), has: (id) => registry.has(id) } });
  const session = createContainerEngineSession({
    socket: opts.socket,
    retryMs: opts.retryMs,
    log,
    onList: (list) => registry.fromEngineList(list),
    onContainer: (info) => registry.fromEngine(info),
    onStop: (id) => registry.stoppedPerEngine(id),
  });
  registry = createContainerRegistry({ cgroups: cache, askEngine: (id) => session.ask(id), procRoot, log });

  return {
    engine: session.status,
    cgroupMount: cache.mount,
    labelOf(pid, cid) {
      const id = cache.resolve(pid, cid);
      if (!id) return undefined;
      // The known container itself (no copy per flow); its name fills in when the engine answers.
      return registry.get(id) ?? { id, name: "", image: "" };
    },
    noteProcess(pid, cid) {
      cache.resolve(pid, cid);
    },
    running: () => registry.running(),
    onChange: (listener) => registry.onChange(listener),
    async start() {
      // Every running process's container first: containers the engine may not report.
      cache.scanProcesses((id, pid, own) => registry.foundAtStart(id, pid, own));
      await session.start();
    },
    close() {
      session.close();
    },
  };
}
