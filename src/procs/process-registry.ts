// What tapwire knows of each process it reports on: its executable path. Learned from exec
// events (so a process that lives a few milliseconds is still named) or, for processes that
// were running before tapwire, from /proc/PID/exe on first sight.
import { realpathSync } from "node:fs";
import { exePath, PROC_ROOT } from "./proc.ts";

export interface ProcessRegistry {
  /** A process called exec with `filename` (as passed to exec). */
  exec(pid: number, filename: string): void;
  exit(pid: number): void;
  /** The executable's absolute path, or "" when it cannot be known. */
  exe(pid: number): string;
  readonly size: number;
}

export function createProcessRegistry(procRoot = PROC_ROOT, maxEntries = 65536): ProcessRegistry {
  const exes = new Map<number, string>();
  const readExe = (pid: number): string => exePath(pid, procRoot) ?? "";
  const resolve = (filename: string): string => {
    try {
      return realpathSync(filename);
    } catch {
      return filename;
    }
  };
  const remember = (pid: number, exe: string) => {
    if (exes.size >= maxEntries && !exes.has(pid)) exes.delete(exes.keys().next().value!);
    exes.set(pid, exe);
  };
  return {
    exec(pid, filename) {
      // The kernel's link is exact while the process lives (and names a script's
      // interpreter, as for any other process); a process already gone leaves the path it
      // was started with, resolved.
      remember(pid, readExe(pid) || resolve(filename));
    },
    exit(pid) {
      exes.delete(pid);
    },
    exe(pid) {
      let exe = exes.get(pid);
      if (exe === undefined) {
        exe = readExe(pid);
        remember(pid, exe);
      }
      return exe;
    },
    get size() {
      return exes.size;
    },
  };
}
