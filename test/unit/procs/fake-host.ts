// A made-up host for the container tests: a /proc with a mountinfo naming a cgroup v2 mount
// (with a space in its path, escaped as the kernel does), and that mount as temporary
// directories, whose inodes are cgroup ids as on a real host.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";

export interface FakeHost {
  root: string;
  /** The made-up /proc. */
  proc: string;
  /** The v2 mount ("" for a host without one). */
  mount: string;
  /** Makes a cgroup directory (and its parents); its id. */
  cgroup(path: string): number;
  cgroupDir(path: string): string;
  /** A process in a v2 cgroup (written again when it moves). */
  process(pid: number, cgroupPath: string): void;
  cleanup(): void;
}

/** `v1Only`: a host with no cgroup v2 hierarchy (its processes' cgroups name v1 hierarchies). */
export function fakeHost(opts: { v1Only?: boolean } = {}): FakeHost {
  const root = mkdtempSync(`${tmpdir()}/tapwire-fake-host-`);
  const proc = `${root}/proc`;
  const mount = `${root}/cgroup with space`;
  mkdirSync(`${proc}/self`, { recursive: true });
  const escaped = mount.replace(/ /g, "\\040");
  writeFileSync(`${proc}/self/mountinfo`, opts.v1Only ? `31 20 0:27 / ${escaped} rw - cgroup cgroup rw,memory\n` : `30 20 0:26 / ${escaped} rw,nosuid - cgroup2 cgroup2 rw\n`);
  const cgroupDir = (path: string) => `${mount}${path}`;
  return {
    root,
    proc,
    mount: opts.v1Only ? "" : mount,
    cgroup(path) {
      mkdirSync(cgroupDir(path), { recursive: true });
      return Number(statSync(cgroupDir(path)).ino);
    },
    cgroupDir,
    process(pid, cgroupPath) {
      mkdirSync(`${proc}/${pid}`, { recursive: true });
      writeFileSync(`${proc}/${pid}/cgroup`, opts.v1Only ? `4:memory:${cgroupPath}\n` : `0::${cgroupPath}\n`);
      writeFileSync(`${proc}/${pid}/stat`, `${pid} (x) S 1`);
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

export const ID_A = "a".repeat(12) + "0123456789abcdef".repeat(3) + "0123";
export const ID_B = "b".repeat(64);
export const ID_C = "c".repeat(64);
