// What tapwire reads of /proc, in one place: the processes there are, and of one process its
// executable, name, mappings, cgroup, parent, mount table and the way into its root. Readers
// of /proc are meant to go through here so that each fact is read one way (the " (deleted)" a
// replaced executable's link carries is stripped everywhere, a process gone is undefined
// everywhere). Each function takes the /proc to read, so tests can give a made-up tree.
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

export const PROC_ROOT = "/proc";

/** A process id, or "self" for tapwire's own entry. */
export type ProcPid = number | "self";

/** The ids of the processes in /proc (its numeric entries), lowest first; [] when it cannot be read. */
export function pids(procRoot = PROC_ROOT): number[] {
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of entries) if (/^\d+$/.test(e)) out.push(Number(e));
  return out.sort((a, b) => a - b);
}

/** The path of a process's /proc file (`name` as "exe", "fd/3", "ns/mnt"), for what is opened or
 * stat'ed rather than read as text here. */
export function procPath(pid: ProcPid, name: string, procRoot = PROC_ROOT): string {
  return `${procRoot}/${pid}/${name}`;
}

/** /proc/PID/exe itself: opening it opens the very file the process runs, in whatever root,
 * even deleted — the path to stat or probe; exePath says what it is called. */
export function exeLink(pid: ProcPid, procRoot = PROC_ROOT): string {
  return procPath(pid, "exe", procRoot);
}

/** The executable's path in the process's root (the kernel's link, without the " (deleted)" it
 * carries once the file was removed or replaced); undefined when the process is gone or is a
 * kernel thread. */
export function exePath(pid: ProcPid, procRoot = PROC_ROOT): string | undefined {
  return linkTarget(exeLink(pid, procRoot));
}

/** /proc/PID/fd/N: opening it opens the file that descriptor has open, even deleted. */
export function fdPath(pid: ProcPid, fd: number, procRoot = PROC_ROOT): string {
  return procPath(pid, `fd/${fd}`, procRoot);
}

/** What a /proc link (exe, cwd, fd/N; of a process or "self") names, without the " (deleted)"
 * the kernel adds once the file was removed or replaced; undefined when the link is gone. */
export function linkTarget(link: string): string | undefined {
  try {
    return withoutDeleted(readlinkSync(link));
  } catch {
    return undefined;
  }
}

/** The process's name as the kernel keeps it (at most 15 bytes; spaces kept); undefined when gone. */
export function comm(pid: ProcPid, procRoot = PROC_ROOT): string | undefined {
  const text = readText(pid, "comm", procRoot);
  return text?.endsWith("\n") ? text.slice(0, -1) : text;
}

/** /proc/PID/maps; undefined when the process is gone. */
export function mapsText(pid: ProcPid, procRoot = PROC_ROOT): string | undefined {
  return readText(pid, "maps", procRoot);
}

/** The files mapped into a process, by their path in its root, each once in the order of its
 * maps; [] when it is gone. A deleted file's mapping is left out: its path names another file
 * now, or none. */
export function mappedFiles(pid: ProcPid, procRoot = PROC_ROOT): string[] {
  const text = mapsText(pid, procRoot);
  return text === undefined ? [] : mappedFilesOf(text);
}

/** mappedFiles from a maps text (address, perms, offset, device, inode, then the path, which
 * may hold spaces). */
export function mappedFilesOf(maps: string): string[] {
  const out = new Set<string>();
  for (const m of maps.matchAll(/^\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\/.*)$/gm)) {
    const path = m[1]!;
    if (!path.endsWith(DELETED)) out.add(path);
  }
  return [...out];
}

/** A path as the process would open it, reachable from tapwire: an absolute path through
 * /proc/PID/root (the process's root: a container's files), a relative one through
 * /proc/PID/cwd; "" gives the root itself. Only the first step goes into the process's root:
 * an absolute symlink met further on is followed in tapwire's own root. */
export function rootPath(pid: ProcPid, path = "", procRoot = PROC_ROOT): string {
  if (path === "" || path.startsWith("/")) return `${procRoot}/${pid}/root${path}`;
  return `${procRoot}/${pid}/cwd/${path}`;
}

/** /proc/PID/cgroup; undefined when the process is gone. */
export function cgroupText(pid: ProcPid, procRoot = PROC_ROOT): string | undefined {
  return readText(pid, "cgroup", procRoot);
}

/** /proc/PID/mountinfo (the mount table of the process's mount namespace); undefined when gone. */
export function mountinfoText(pid: ProcPid, procRoot = PROC_ROOT): string | undefined {
  return readText(pid, "mountinfo", procRoot);
}

/** Whether a process (or a zombie not yet reaped) is there. */
export function isAlive(pid: ProcPid, procRoot = PROC_ROOT): boolean {
  return existsSync(procPath(pid, "stat", procRoot));
}

/** The parent's pid, from /proc/PID/stat (read past the name, which may hold ") "); undefined when gone. */
export function parentPid(pid: ProcPid, procRoot = PROC_ROOT): number | undefined {
  const stat = readText(pid, "stat", procRoot);
  if (stat === undefined) return undefined;
  const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

const DELETED = " (deleted)";

function withoutDeleted(path: string): string {
  return path.endsWith(DELETED) ? path.slice(0, -DELETED.length) : path;
}

function readText(pid: ProcPid, name: string, procRoot: string): string | undefined {
  try {
    return readFileSync(procPath(pid, name, procRoot), "latin1");
  } catch {
    return undefined;
  }
}
