// Which container a process belongs to, from its cgroup: the container runtimes name the
// cgroup after the container id (Docker /docker/ID or docker-ID.scope, containerd
// cri-containerd-ID.scope, CRI-O crio-ID.scope, podman libpod-ID). Works on cgroup v2, v1
// and hybrid hosts; the v2 hierarchy is found from mountinfo (it is not always
// /sys/fs/cgroup), and a v2 cgroup directory's inode is the kernel's cgroup id — what the
// BPF side sees with bpf_get_current_cgroup_id().
import { statSync } from "node:fs";
import { cgroupText, pids, PROC_ROOT } from "./proc.ts";

export type ContainerRuntime = "docker" | "containerd" | "crio" | "podman";

export interface CgroupContainer {
  runtime: ContainerRuntime;
  /** The full 64-hex-digit container id. */
  id: string;
  /** The process's v2 cgroup path ("/libpod_parent/libpod-ID"), when the v2 line names the
   * container; "" otherwise (v1-only hosts, or a v2 cgroup shared by several containers). */
  path: string;
  /** The container's own v2 cgroup: `path` up to the segment that names the container (its
   * processes may sit below it: "/machine.slice/libpod-ID.scope/container"); "" with `path`. */
  containerPath: string;
}

/** A container's own cgroup: its v2 id (the directory's inode) and path; {0, ""} when not known. */
export interface ContainerCgroup {
  id: number;
  path: string;
}

const ID = "([0-9a-f]{64})";
// Podman's conmon (libpod-conmon-ID) watches a container from outside it: not one of its processes.
const PATTERNS: [ContainerRuntime, RegExp][] = [
  ["docker", new RegExp(`/docker[-/]${ID}(?:\\.scope)?(?=/|$)`)],
  ["containerd", new RegExp(`/cri-containerd[-:]${ID}(?:\\.scope)?(?=/|$)`)],
  ["crio", new RegExp(`/crio-${ID}(?:\\.scope)?(?=/|$)`)],
  ["podman", new RegExp(`/libpod-${ID}(?:\\.scope)?(?=/|$)`)],
];

/** The v2 hierarchy's mount point from /proc/self/mountinfo text; undefined on v1-only hosts. */
export function cgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    if (line.slice(sep + 3).split(" ")[0] === "cgroup2") return unescapeMount(line.slice(0, sep).split(" ")[4] ?? "");
  }
  return undefined;
}

/** The container named by a /proc/PID/cgroup text (v2 line first, then any v1 line). */
export function containerFromCgroup(text: string): CgroupContainer | undefined {
  const lines = text.split("\n").filter(Boolean);
  const v2 = lines.find((l) => l.startsWith("0::"));
  const ordered = v2 ? [v2, ...lines.filter((l) => l !== v2)] : lines;
  for (const line of ordered) {
    const path = line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
    for (const [runtime, re] of PATTERNS) {
      const m = re.exec(path);
      if (!m) continue;
      const onV2 = line === v2;
      return { runtime, id: m[1]!, path: onV2 ? path : "", containerPath: onV2 ? path.slice(0, m.index + m[0].length) : "" };
    }
  }
  return undefined;
}

/** The v2 cgroup path of a /proc/PID/cgroup text ("" when there is no v2 line). */
export function cgroup2Path(text: string): string {
  return text.split("\n").find((l) => l.startsWith("0::"))?.slice(3) ?? "";
}

/** The kernel's id of a v2 cgroup: its directory's inode; undefined when it is gone. */
export function cgroupId(mount: string, path: string): bigint | undefined {
  try {
    return statSync(`${mount}${path === "/" ? "" : path}`, { bigint: true }).ino;
  } catch {
    return undefined;
  }
}

/** The container of a running process, or undefined (not in one, or gone). */
export function containerOfPid(pid: number, procRoot = PROC_ROOT): CgroupContainer | undefined {
  const text = cgroupText(pid, procRoot);
  return text === undefined ? undefined : containerFromCgroup(text);
}

/** The running processes of each container (by id), lowest pid first, with their
 * /proc/PID/cgroup text. */
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

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
