// Which container a cgroup id belongs to. The kernel labels each event with the cgroup id of
// the process that made it; this turns that id into a container id by reading the process's
// /proc/PID/cgroup, or — when the process is already gone, as a short-lived one often is by
// the time its flow ends — by walking the cgroup v2 tree, whose directory inodes are the
// kernel's ids. Answers are cached by cgroup id (a cgroup is one container's for its whole
// life, and ids are never reused), within a bound. It knows nothing of names, images or
// engines: each container it meets is reported to whoever keeps the containers.
import { readdirSync } from "node:fs";
import { cgroup2Mount, cgroup2Path, cgroupId, containerFromCgroup, containerOfPid, containerProcesses, type CgroupContainer, type ContainerCgroup } from "./cgroups.ts";
import { cgroupText, mountinfoText, PROC_ROOT } from "./proc.ts";

/** Whoever keeps the containers, as the cache sees it. */
export interface ContainerSightings {
  /** A container met through a process (`pid`; 0 when met through its cgroup alone), with
   * its own cgroup when that is known. */
  seen(id: string, pid: number, own: ContainerCgroup): void;
  /** Whether a container is known: a cached answer naming one that is not is reported as seen. */
  has(id: string): boolean;
}

export interface CgroupContainerCache {
  /** The v2 hierarchy's mount, undefined on a v1-only host (then kernel ids are no key). */
  readonly mount: string | undefined;
  /** The container of a process, from the cgroup id the kernel reported (0: unknown) and its
   * pid; undefined when it is in none (or is gone and its cgroup names none). */
  resolve(pid: number, kernelCgroupId: number): string | undefined;
  /** A cgroup id known to be a container's (the engine named its main process). */
  remember(cgroupId: number, containerId: string): void;
  /** The own cgroup of the container a process is in, from that process's cgroup. */
  ownCgroupOfPid(pid: number): ContainerCgroup;
  /** Whether a container's own cgroup (a v2 path) still exists; undefined without a v2 tree to look in. */
  ownCgroupExists(path: string): boolean | undefined;
  /** Every container a running process is in, its cgroup id remembered before it is given to
   * `each` with its lowest pid and own cgroup: containers an engine may not report. */
  scanProcesses(each: (id: string, pid: number, own: ContainerCgroup) => void): void;
  /** Cached cgroup ids (for tests and bounds). */
  readonly size: number;
}

export interface CgroupContainerCacheOptions {
  procRoot?: string;
  sightings: ContainerSightings;
  /** The cache is dropped whole past this many cgroup ids. */
  maxCgroups?: number;
  /** A tree walk for a process already gone is done at most this often. */
  scanIntervalMs?: number;
  /** How deep below the v2 mount the walk looks. */
  maxScanDepth?: number;
}

export function createCgroupContainerCache(opts: CgroupContainerCacheOptions): CgroupContainerCache {
  const procRoot = opts.procRoot ?? PROC_ROOT;
  const maxCgroups = opts.maxCgroups ?? 65_536;
  const scanIntervalMs = opts.scanIntervalMs ?? 1000;
  const maxScanDepth = opts.maxScanDepth ?? 8;
  const sightings = opts.sightings;
  const mount = readMount(procRoot);
  /** Process cgroup id -> container id, or null for a cgroup that is not a container's. */
  const byCgroup = new Map<number, string | null>();
  let lastScan = -Infinity;

  function remember(cid: number, id: string | null) {
    if (byCgroup.size >= maxCgroups) byCgroup.clear();
    byCgroup.set(cid, id);
  }

  /** The container's own cgroup (v2 id and path), from one of its processes' cgroup. */
  function containerCgroup(cg: CgroupContainer | undefined): ContainerCgroup {
    if (!cg?.containerPath || !mount) return { id: 0, path: "" };
    return { id: Number(cgroupId(mount, cg.containerPath) ?? 0), path: cg.containerPath };
  }

  /** The kernel's id of the v2 cgroup a /proc/PID/cgroup text names. */
  function cgroupIdOfText(text: string): number | undefined {
    const path = cgroup2Path(text);
    const id = path && mount ? cgroupId(mount, path) : undefined;
    return id === undefined ? undefined : Number(id);
  }

  function resolve(pid: number, kernelId: number): string | undefined {
    // Without cgroup v2 the kernel's id names the v2 root for everyone: not a key.
    const cid = mount ? kernelId : 0;
    if (cid) {
      const known = byCgroup.get(cid);
      if (known !== undefined) {
        if (known && !sightings.has(known)) sightings.seen(known, pid, { id: 0, path: "" });
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
      if (cg) sightings.seen(cg.id, pid, containerCgroup(cg));
      return cg?.id;
    }
    // Cached only when the process is still where the kernel saw it.
    if (cgroupIdOfText(text) === cid) {
      remember(cid, cg?.id ?? null);
      if (cg) sightings.seen(cg.id, pid, containerCgroup(cg));
    }
    return cg?.id;
  }

  /** Every container cgroup of the tree (and those below it), by id: containers alive now. */
  function scanTree() {
    const now = Date.now();
    if (!mount || now - lastScan < scanIntervalMs) return;
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
        if (cg && id !== undefined) sightings.seen(cg.id, 0, { id: Number(id), path });
        if (depth < maxScanDepth) walk(`${dir}/${e.name}`, path, depth + 1, inside ?? cg?.id);
      }
    };
    walk(mount, "", 1, undefined);
  }

  return {
    mount,
    resolve,
    remember,
    ownCgroupOfPid: (pid) => containerCgroup(containerOfPid(pid, procRoot)),
    ownCgroupExists: (path) => (mount ? cgroupId(mount, path) !== undefined : undefined),
    scanProcesses(each) {
      for (const [id, procs] of containerProcesses(procRoot)) {
        const { pid, cgroupText: text } = procs[0]!;
        const cid = cgroupIdOfText(text) ?? 0;
        if (cid) remember(cid, id);
        each(id, pid, containerCgroup(containerFromCgroup(text)));
      }
    },
    get size() {
      return byCgroup.size;
    },
  };
}

function readMount(procRoot: string): string | undefined {
  const text = mountinfoText("self", procRoot);
  return text === undefined ? undefined : cgroup2Mount(text);
}
