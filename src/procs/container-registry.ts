// The containers tapwire knows, with their state: each one's name, image, main pid, network,
// own cgroup and whether it still runs, and the listeners told when that changes (the kernel
// filter of --container follows them). Containers come from two sources that do not wait for
// each other — the engine's answers, and sightings through processes and cgroups (which work
// with no engine at all) — and this is the one place their facts are merged. It reads no
// cgroup and asks no engine itself: both are given to it.
import type { ContainerCgroup } from "./cgroups.ts";
import type { ContainerInfo } from "./docker.ts";
import { isAlive, PROC_ROOT } from "./proc.ts";

export interface ContainerLabel {
  /** The full 64-hex-digit id. */
  id: string;
  /** "" when the engine could not be asked. */
  name: string;
  image: string;
}

export interface KnownContainer extends ContainerLabel {
  /** A process of the container (its main one when the engine said), 0 when none is known. */
  pid: number;
  running: boolean;
  networkMode: string;
  ip: string;
  /** The cgroup v2 id of the container's own cgroup (its processes are in it or below), 0
   * when not known. */
  cgroupId: number;
  /** That cgroup's v2 path, "" when not known. */
  cgroupPath: string;
  /** Where it was learnt from. */
  source: "engine" | "cgroup";
}

/** What the registry needs to know of cgroups (the cgroup-to-container cache answers). */
export interface RegistryCgroups {
  /** The own cgroup of the container a process is in. */
  ownCgroupOfPid(pid: number): ContainerCgroup;
  /** Whether a container's own cgroup still exists; undefined when that cannot be told. */
  ownCgroupExists(path: string): boolean | undefined;
  /** A cgroup id is this container's. */
  remember(cgroupId: number, containerId: string): void;
}

export interface ContainerRegistry {
  get(id: string): KnownContainer | undefined;
  has(id: string): boolean;
  /** A container met through a process (`pid`; 0 when met through its cgroup alone), with its
   * own cgroup when known: a new one is added (and the engine asked about it), a restarted
   * one takes its new cgroup, a stopped one whose process lives runs again. */
  seen(id: string, pid: number, own: ContainerCgroup): void;
  /** A container found at start from its processes: added quietly (no listener yet, no
   * engine asked yet), or, when already known, seen. */
  foundAtStart(id: string, pid: number, own: ContainerCgroup): void;
  /** The engine's running containers, each time it answers: those it no longer lists stop,
   * and those only seen through processes are asked about. */
  fromEngineList(list: ContainerInfo[]): void;
  /** One container as the engine describes it now. */
  fromEngine(info: ContainerInfo): void;
  /** The engine says a container stopped: believed when its cgroup (or process) is gone. */
  stoppedPerEngine(id: string): void;
  /** Running containers: the engine's, and those only seen through processes. */
  running(): KnownContainer[];
  /** Called after containers appear, are named, or stop. */
  onChange(listener: () => void): void;
  readonly size: number;
}

export interface ContainerRegistryOptions {
  cgroups: RegistryCgroups;
  /** Ask the engine about a container, when one answers; its answer comes back through fromEngine. */
  askEngine(id: string): void;
  procRoot?: string;
  /** Containers that no longer run are forgotten (oldest first) past this many. */
  maxContainers?: number;
  log?(line: string): void;
}

export function createContainerRegistry(opts: ContainerRegistryOptions): ContainerRegistry {
  const { cgroups, askEngine } = opts;
  const procRoot = opts.procRoot ?? PROC_ROOT;
  const maxContainers = opts.maxContainers ?? 4096;
  const log = opts.log ?? (() => {});
  const containers = new Map<string, KnownContainer>();
  const listeners: (() => void)[] = [];

  const changed = () => {
    if (containers.size > maxContainers) prune();
    for (const l of listeners) {
      try {
        l();
      } catch (e) {
        log(`tapwire: updating the container filter failed: ${(e as Error).message}`);
      }
    }
  };

  function prune() {
    for (const [id, c] of containers) {
      if (containers.size <= maxContainers) break;
      if (!c.running) containers.delete(id);
    }
  }

  const fromCgroup = (id: string, pid: number, own: ContainerCgroup): KnownContainer => ({ id, name: "", image: "", pid, running: true, networkMode: "", ip: "", cgroupId: own.id, cgroupPath: own.path, source: "cgroup" });

  function seen(id: string, pid: number, own: ContainerCgroup) {
    const c = containers.get(id);
    if (!c) {
      containers.set(id, fromCgroup(id, pid, own));
      askEngine(id);
      changed();
    } else if (own.id && c.cgroupId !== own.id) {
      // Started again (a restart makes a new cgroup), or its cgroup learnt only now.
      Object.assign(c, { cgroupId: own.id, cgroupPath: own.path, running: true, pid: pid || c.pid });
      askEngine(id);
      changed();
    } else if (!c.running && pid && isAlive(pid, procRoot)) {
      Object.assign(c, { running: true, pid });
      changed();
    }
  }

  /** One container as the engine describes it; listeners are told by the caller. */
  function merge(info: ContainerInfo) {
    const old = containers.get(info.id);
    const own = info.pid ? cgroups.ownCgroupOfPid(info.pid) : { id: 0, path: "" };
    const c: KnownContainer = {
      id: info.id,
      name: info.name,
      image: info.image,
      pid: info.pid || old?.pid || 0,
      running: info.running,
      networkMode: info.networkMode,
      ip: info.ip,
      cgroupId: own.id || (info.running ? old?.cgroupId : 0) || 0,
      cgroupPath: own.path || old?.cgroupPath || "",
      source: "engine",
    };
    containers.set(c.id, c);
    if (c.cgroupId) cgroups.remember(c.cgroupId, c.id);
  }

  /** A container runs while its cgroup exists (or, without one known, its process lives). */
  function stillRunning(c: KnownContainer): boolean {
    const exists = c.cgroupPath ? cgroups.ownCgroupExists(c.cgroupPath) : undefined;
    if (exists !== undefined) return exists;
    return !!c.pid && isAlive(c.pid, procRoot);
  }

  return {
    get: (id) => containers.get(id),
    has: (id) => containers.has(id),
    seen,
    foundAtStart(id, pid, own) {
      if (!containers.has(id)) containers.set(id, fromCgroup(id, pid, own));
      else if (own.id) seen(id, pid, own); // known before its cgroup was: learnt now
    },
    fromEngineList(list) {
      const listed = new Set(list.map((c) => c.id));
      for (const c of containers.values()) if (c.source === "engine" && !listed.has(c.id)) c.running = false;
      for (const info of list) merge(info);
      // Containers first seen through a process while the engine was away.
      for (const c of containers.values()) if (c.source === "cgroup") askEngine(c.id);
      changed();
    },
    fromEngine(info) {
      merge(info);
      changed();
    },
    stoppedPerEngine(id) {
      const c = containers.get(id);
      if (c && c.running && !stillRunning(c)) {
        c.running = false;
        changed();
      }
    },
    running() {
      for (const c of containers.values()) if (c.source === "cgroup" && c.running && !stillRunning(c)) c.running = false;
      return [...containers.values()].filter((c) => c.running);
    },
    onChange(listener) {
      listeners.push(listener);
    },
    get size() {
      return containers.size;
    },
  };
}

/** Whether a user's choice (a name, a full id, or an id prefix of 12 or more) names a container. */
export function containerMatches(choice: string, c: ContainerLabel): boolean {
  if (!choice) return false;
  if (c.name && (choice === c.name || choice === `/${c.name}`)) return true;
  return choice.length >= 12 && c.id.startsWith(choice.toLowerCase());
}

/** A choice is a container name (as Docker allows them, with or without its "/") or an id. */
export function isContainerChoice(choice: string): boolean {
  return /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(choice);
}
