// What tapwire knows of containers: which container a process is in (from its cgroup, so it
// works with no engine at all), and each container's name, image, main pid and cgroup id
// (from the Docker Engine API when it answers). New containers are learnt from the
// engine's events and, sooner, from the first exec of one of their processes: that is
// what lets a container chosen with --container be captured from its first request.
import { readdirSync } from "node:fs";
import { cgroup2Mount, cgroup2Path, cgroupId, containerFromCgroup, containerOfPid, type CgroupContainer } from "./cgroups.ts";
import { cgroupText, isAlive, mountinfoText, pids, PROC_ROOT } from "./proc.ts";
import { createDockerClient, DockerError, type ContainerInfo, type DockerClient } from "./docker.ts";

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

export interface EngineStatus {
  socket: string;
  reachable: boolean;
  /** Why it is not reachable, "" when it is. */
  reason: string;
}

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

/** A cgroup tree walk for a process that is already gone is done at most this often. */
const SCAN_INTERVAL_MS = 1000;
const MAX_SCAN_DEPTH = 8;
/** Bounds for long runs: the cgroup cache is dropped whole past this many entries, and
 * containers that no longer run are forgotten (oldest first) past this many. */
const MAX_CGROUPS = 65_536;
const MAX_CONTAINERS = 4096;

export function createContainerDirectory(opts: ContainerDirectoryOptions): ContainerDirectory {
  const procRoot = opts.procRoot ?? PROC_ROOT;
  const retryMs = opts.retryMs ?? 2000;
  const log = opts.log ?? (() => {});
  const mount = readMount(procRoot);
  const client: DockerClient | undefined = opts.socket ? createDockerClient(opts.socket) : undefined;
  const engine: EngineStatus = { socket: opts.socket, reachable: false, reason: opts.socket ? "not asked yet" : "no engine socket given" };

  const containers = new Map<string, KnownContainer>();
  /** Process cgroup id -> container id, or null for a cgroup that is not a container's. */
  const byCgroup = new Map<number, string | null>();
  const inspecting = new Set<string>();
  const listeners: (() => void)[] = [];
  let lastScan = 0;
  let closed = false;
  const abort = new AbortController();
  /** The events stream being read; a new one replaces it (never two at once). */
  let following: AbortController | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  const changed = () => {
    if (containers.size > MAX_CONTAINERS) prune();
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
      if (containers.size <= MAX_CONTAINERS) break;
      if (!c.running) containers.delete(id);
    }
  }

  function remember(cid: number, id: string | null) {
    if (byCgroup.size >= MAX_CGROUPS) byCgroup.clear();
    byCgroup.set(cid, id);
  }

  /** The container's own cgroup (v2 id and path), from one of its processes' cgroup. */
  function containerCgroup(cg: CgroupContainer | undefined): { id: number; path: string } {
    if (!cg?.containerPath || !mount) return { id: 0, path: "" };
    return { id: Number(cgroupId(mount, cg.containerPath) ?? 0), path: cg.containerPath };
  }

  function fromEngine(info: ContainerInfo) {
    const old = containers.get(info.id);
    const own = containerCgroup(info.pid ? containerOfPid(info.pid, procRoot) : undefined);
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
    if (c.cgroupId) remember(c.cgroupId, c.id);
  }

  /** A container seen through a process or its cgroup; the engine is asked about new ones. */
  function seen(id: string, pid: number, own: { id: number; path: string }) {
    const c = containers.get(id);
    if (!c) {
      containers.set(id, { id, name: "", image: "", pid, running: true, networkMode: "", ip: "", cgroupId: own.id, cgroupPath: own.path, source: "cgroup" });
      if (client && engine.reachable) void inspect(id);
      changed();
    } else if (own.id && c.cgroupId !== own.id) {
      // Started again (a restart makes a new cgroup), or its cgroup learnt only now.
      Object.assign(c, { cgroupId: own.id, cgroupPath: own.path, running: true, pid: pid || c.pid });
      if (client && engine.reachable) void inspect(id);
      changed();
    } else if (!c.running && pid && isAlive(pid, procRoot)) {
      Object.assign(c, { running: true, pid });
      changed();
    }
  }

  async function inspect(id: string) {
    if (!client || inspecting.has(id)) return;
    inspecting.add(id);
    try {
      const info = await client.inspect(id);
      if (info && !closed) {
        fromEngine(info);
        changed();
      }
    } catch (e) {
      if (e instanceof DockerError) lost(e.reason);
    } finally {
      inspecting.delete(id);
    }
  }

  /** Resolve a process's cgroup to a container, caching by cgroup id. */
  function resolve(pid: number, kernelId: number): string | undefined {
    // Without cgroup v2 the kernel's id names the v2 root for everyone: not a key.
    const cid = mount ? kernelId : 0;
    if (cid) {
      const known = byCgroup.get(cid);
      if (known !== undefined) {
        if (known && !containers.has(known)) seen(known, pid, { id: 0, path: "" });
        return known ?? undefined;
      }
    }
    const text = cgroupText(pid, procRoot);
    if (text === undefined) {
      // Gone already: the cgroup tree still names the container.
      if (cid) scanTree();
      return cid ? (byCgroup.get(cid) ?? undefined) : undefined;
    }
    const cg = containerFromCgroup(text);
    if (!cid) {
      // Asked without the kernel's id (a label for a file's owner): the container's own
      // cgroup is still known from its path, and the filter needs it.
      if (cg) seen(cg.id, pid, containerCgroup(cg));
      return cg?.id;
    }
    // Cached only when the process is still where the kernel saw it.
    if (cgroupIdOfText(text) === cid) {
      remember(cid, cg?.id ?? null);
      if (cg) seen(cg.id, pid, containerCgroup(cg));
    }
    return cg?.id;
  }

  /** The kernel's id of the v2 cgroup a /proc/PID/cgroup text names. */
  function cgroupIdOfText(text: string): number | undefined {
    const path = cgroup2Path(text);
    const id = path && mount ? cgroupId(mount, path) : undefined;
    return id === undefined ? undefined : Number(id);
  }

  /** Every container cgroup of the tree (and those below it), by id: containers alive now. */
  function scanTree() {
    const now = Date.now();
    if (!mount || now - lastScan < SCAN_INTERVAL_MS) return;
    lastScan = now;
    const walk = (dir: string, rel: string, depth: number, inside: string | undefined) => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const path = `${rel}/${e.name}`;
        const cg = inside ? undefined : containerFromCgroup(`0::${path}`);
        const id = cgroupId(mount, path);
        if (id !== undefined && (inside || cg)) remember(Number(id), inside ?? cg!.id);
        if (cg && id !== undefined) seen(cg.id, 0, { id: Number(id), path });
        if (depth < MAX_SCAN_DEPTH) walk(`${dir}/${e.name}`, path, depth + 1, inside ?? cg?.id);
      }
    };
    walk(mount, "", 1, undefined);
  }

  function lost(reason: string) {
    if (engine.reachable) log(`tapwire: the container engine went away (${reason}); flows keep their container ids, names return when it does`);
    engine.reachable = false;
    engine.reason = reason;
    following?.abort();
    following = undefined;
    scheduleRetry();
  }

  function scheduleRetry() {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect(false);
    }, retryMs);
  }

  async function connect(first: boolean) {
    if (!client || closed) return;
    // The events stream first, then the list: a container that stops in between is not
    // left listed as running.
    const stream = new AbortController();
    following?.abort();
    following = stream;
    const events = follow(stream.signal);
    let list: ContainerInfo[];
    try {
      list = await client.list();
    } catch (e) {
      stream.abort();
      if (following === stream) following = undefined;
      const reason = e instanceof DockerError ? e.reason : String(e);
      if (first) log(`tapwire: no container engine answers at ${opts.socket} (${reason}); containers are known by id only (--docker-socket PATH)`);
      engine.reason = reason;
      scheduleRetry();
      return;
    }
    if (closed) return;
    if (!first && !engine.reachable) log(`tapwire: the container engine at ${opts.socket} answers again`);
    engine.reachable = true;
    engine.reason = "";
    const running = new Set(list.map((c) => c.id));
    for (const c of containers.values()) if (c.source === "engine" && !running.has(c.id)) c.running = false;
    for (const info of list) fromEngine(info);
    // Containers first seen through a process while the engine was away.
    for (const c of containers.values()) if (c.source === "cgroup") void inspect(c.id);
    changed();
    void events; // read until it ends or is replaced
  }

  async function follow(signal: AbortSignal) {
    if (!client) return;
    try {
      for await (const ev of client.events(AbortSignal.any([abort.signal, signal]))) {
        if (ev.action === "start" || ev.action === "restart" || ev.action === "unpause") await inspect(ev.id);
        else if (ev.action === "die" || ev.action === "stop" || ev.action === "kill" || ev.action === "remove" || ev.action === "destroy") {
          const c = containers.get(ev.id);
          if (c && c.running && !stillRunning(c)) {
            c.running = false;
            changed();
          }
        }
      }
      if (!closed && !signal.aborted) lost("the events stream ended");
    } catch (e) {
      if (!closed && !signal.aborted) lost(e instanceof DockerError ? e.reason : e instanceof Error ? e.message : String(e));
    }
  }

  /** A container runs while its cgroup exists (or, without one known, its process lives). */
  function stillRunning(c: KnownContainer): boolean {
    if (c.cgroupPath && mount) return cgroupId(mount, c.cgroupPath) !== undefined;
    return !!c.pid && isAlive(c.pid, procRoot);
  }

  return {
    engine,
    cgroupMount: mount,
    labelOf(pid, cid) {
      const id = resolve(pid, cid);
      if (!id) return undefined;
      // The known container itself (no copy per flow); its name fills in when the engine answers.
      return containers.get(id) ?? { id, name: "", image: "" };
    },
    noteProcess(pid, cid) {
      resolve(pid, cid);
    },
    running() {
      for (const c of containers.values()) if (c.source === "cgroup" && c.running && !stillRunning(c)) c.running = false;
      return [...containers.values()].filter((c) => c.running);
    },
    onChange(listener) {
      listeners.push(listener);
    },
    async start() {
      scanProcesses();
      await connect(true).catch(() => {});
    },
    close() {
      closed = true;
      abort.abort();
      if (retryTimer) clearTimeout(retryTimer);
    },
  };

  /** Every running process's container, at start: containers the engine may not report. */
  function scanProcesses() {
    for (const [id, procs] of containerProcesses(procRoot)) {
      const { pid, cgroupText } = procs[0]!;
      const cid = cgroupIdOfText(cgroupText) ?? 0;
      if (cid) remember(cid, id);
      const own = containerCgroup(containerFromCgroup(cgroupText));
      if (!containers.has(id)) {
        containers.set(id, { id, name: "", image: "", pid, running: true, networkMode: "", ip: "", cgroupId: own.id, cgroupPath: own.path, source: "cgroup" });
      } else if (own.id) seen(id, pid, own); // known before its cgroup was: learnt now
    }
  }
}

/** The running processes of each container (by id), with their /proc/PID/cgroup text. */
export function containerProcesses(procRoot = PROC_ROOT): Map<string, { pid: number; cgroupText: string }[]> {
  const out = new Map<string, { pid: number; cgroupText: string }[]>();
  for (const pid of pids(procRoot)) {
    const text = cgroupText(pid, procRoot);
    if (text === undefined) continue; // gone
    const cg = containerFromCgroup(text);
    if (!cg) continue;
    let list = out.get(cg.id);
    if (!list) out.set(cg.id, (list = []));
    list.push({ pid, cgroupText: text });
  }
  return out;
}

function readMount(procRoot: string): string | undefined {
  const text = mountinfoText("self", procRoot);
  return text === undefined ? undefined : cgroup2Mount(text);
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
