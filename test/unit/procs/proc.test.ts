// /proc facts on a made-up /proc (temporary directories): links whose target text is what the
// kernel would show, a deleted executable included; and on this host's own /proc.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { cgroupText, comm, exeLink, exePath, fdPath, isAlive, linkTarget, mappedFiles, mappedFilesOf, mapsText, mountinfoText, parentPid, pids, procPath, rootPath } from "../../../src/procs/proc.ts";

const root = mkdtempSync(`${tmpdir()}/tapwire-proc-`);
const proc = `${root}/proc`;
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A process entry; only the files given are made. */
function fakeProcess(pid: number | string, files: { exe?: string; comm?: string; maps?: string; cgroup?: string; stat?: string; mountinfo?: string } = {}) {
  const dir = `${proc}/${pid}`;
  mkdirSync(dir, { recursive: true });
  if (files.exe !== undefined) symlinkSync(files.exe, `${dir}/exe`);
  for (const name of ["comm", "maps", "cgroup", "stat", "mountinfo"] as const) if (files[name] !== undefined) writeFileSync(`${dir}/${name}`, files[name]!);
}

fakeProcess(1, { exe: "/sbin/init", comm: "init\n", stat: "1 (init) S 0 1 1 0 -1" });
fakeProcess(42, { exe: "/usr/bin/python3.11 (deleted)", comm: "my prog\n", stat: "42 (a) b) c) R 7 42 42 0 -1", cgroup: "0::/libpod_parent/libpod-x\n" });
fakeProcess(300); // a kernel thread: no exe link
fakeProcess("self", { mountinfo: "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" });
mkdirSync(`${proc}/sys`);
writeFileSync(`${proc}/uptime`, "1.0 1.0\n");
mkdirSync(`${proc}/12ab`);

const MAPS = [
  "55d0c0a00000-55d0c0a28000 r--p 00000000 08:01 1311             /usr/bin/python3.11",
  "7f10a0000000-7f10a0021000 rw-p 00000000 00:00 0 ",
  "7f10a1000000-7f10a1080000 r--p 00000000 08:01 2622             /usr/lib/x86_64-linux-gnu/libssl.so.3",
  "7f10a1080000-7f10a1100000 r-xp 00080000 08:01 2622             /usr/lib/x86_64-linux-gnu/libssl.so.3",
  "7f10a2000000-7f10a2001000 r--p 00000000 08:01 3933             /opt/my app/lib/libfoo.so",
  "7f10a3000000-7f10a3001000 r--p 00000000 08:01 4044             /usr/lib/x86_64-linux-gnu/libcrypto.so.3 (deleted)",
  "7f10a4000000-7f10a4001000 rw-s 00000000 00:01 5055             /memfd:jit (deleted)",
  "7ffd5e1c0000-7ffd5e1e1000 rw-p 00000000 00:00 0                [stack]",
  "7ffd5e1f0000-7ffd5e1f2000 r-xp 00000000 00:00 0                [vdso]",
  "",
].join("\n");
fakeProcess(7, { maps: MAPS });

describe("/proc on a made-up tree", () => {
  test("pids: the numeric entries, lowest first; nothing for a /proc that is not there", () => {
    expect(pids(proc)).toEqual([1, 7, 42, 300]);
    expect(pids(`${root}/no-such-proc`)).toEqual([]);
  });

  test("exePath: the link's text, without the ' (deleted)' of a removed executable; undefined for a kernel thread or a process gone", () => {
    expect(exePath(1, proc)).toBe("/sbin/init");
    expect(readlinkSync(exeLink(42, proc))).toBe("/usr/bin/python3.11 (deleted)");
    expect(exePath(42, proc)).toBe("/usr/bin/python3.11");
    expect(exePath(300, proc)).toBeUndefined();
    expect(exePath(999, proc)).toBeUndefined();
    expect(exeLink(42, proc)).toBe(`${proc}/42/exe`);
  });

  test("linkTarget: any /proc link's text, without ' (deleted)'; fdPath names a descriptor's link", () => {
    mkdirSync(`${proc}/42/fd`);
    symlinkSync("/var/lib/app/old.db (deleted)", `${proc}/42/fd/3`);
    symlinkSync("socket:[12345]", `${proc}/42/fd/4`);
    expect(fdPath(42, 3, proc)).toBe(`${proc}/42/fd/3`);
    expect(linkTarget(fdPath(42, 3, proc))).toBe("/var/lib/app/old.db");
    expect(linkTarget(fdPath(42, 4, proc))).toBe("socket:[12345]");
    expect(linkTarget(fdPath(42, 5, proc))).toBeUndefined();
  });

  test("comm: without its newline, spaces kept; undefined when gone", () => {
    expect(comm(1, proc)).toBe("init");
    expect(comm(42, proc)).toBe("my prog");
    expect(comm(999, proc)).toBeUndefined();
  });

  test("maps: the text, and the mapped files (each once, paths with spaces, no deleted file, no pseudo-mapping)", () => {
    expect(mapsText(7, proc)).toBe(MAPS);
    expect(mappedFiles(7, proc)).toEqual(["/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/opt/my app/lib/libfoo.so"]);
    expect(mapsText(999, proc)).toBeUndefined();
    expect(mappedFiles(999, proc)).toEqual([]);
    expect(mappedFilesOf("")).toEqual([]);
  });

  test("rootPath: an absolute path through the process's root, a relative one through its working directory", () => {
    expect(rootPath(42, "/usr/lib/libssl.so.3", proc)).toBe(`${proc}/42/root/usr/lib/libssl.so.3`);
    expect(rootPath(42, "", proc)).toBe(`${proc}/42/root`);
    expect(rootPath(42, "lib/x.so", proc)).toBe(`${proc}/42/cwd/lib/x.so`);
    expect(rootPath(42)).toBe("/proc/42/root");
  });

  test("cgroup, mountinfo, parent and liveness; undefined for what is gone", () => {
    expect(cgroupText(42, proc)).toBe("0::/libpod_parent/libpod-x\n");
    expect(cgroupText(1, proc)).toBeUndefined();
    expect(mountinfoText("self", proc)).toStartWith("25 1 0:22 / /sys/fs/cgroup");
    expect(mountinfoText(42, proc)).toBeUndefined();
    expect(parentPid(1, proc)).toBe(0);
    expect(parentPid(42, proc)).toBe(7); // the name holds ") "
    expect(parentPid(999, proc)).toBeUndefined();
    expect([isAlive(1, proc), isAlive(42, proc), isAlive(7, proc), isAlive(999, proc)]).toEqual([true, true, false, false]);
    expect(procPath(42, "fd/3", proc)).toBe(`${proc}/42/fd/3`);
  });
});

describe("this host's /proc", () => {
  test("tapwire's own process is listed, named, and maps its executable", () => {
    expect(pids()).toContain(process.pid);
    expect(pids()).toContain(1);
    const exe = exePath(process.pid)!;
    expect(exe).toBe(readlinkSync("/proc/self/exe"));
    expect(exePath("self")).toBe(exe);
    expect(mappedFiles(process.pid)).toContain(exe);
    expect(comm(process.pid)).toBe(comm("self")!);
    expect(parentPid(process.pid)).toBe(process.ppid);
    expect(isAlive(process.pid)).toBe(true);
    expect(cgroupText(process.pid)).toContain("::");
  });

  test("a running program whose file was deleted: the kernel's link says so, exePath gives the path it ran from", async () => {
    const copy = `${root}/sleep-copy`;
    writeFileSync(copy, readFileSync("/bin/sleep"), { mode: 0o755 });
    const child = Bun.spawn([copy, "30"]);
    try {
      rmSync(copy);
      expect(readlinkSync(`/proc/${child.pid}/exe`)).toBe(`${copy} (deleted)`);
      expect(exePath(child.pid)).toBe(copy);
    } finally {
      child.kill();
      await child.exited;
    }
    expect(exePath(child.pid)).toBeUndefined();
  });

  test("a descriptor of tapwire's own on a deleted file: named by the path it had", () => {
    const path = `${root}/held-open`;
    writeFileSync(path, "x");
    const fd = openSync(path, "r");
    try {
      rmSync(path);
      expect(readlinkSync(fdPath("self", fd))).toBe(`${path} (deleted)`);
      expect(linkTarget(fdPath("self", fd))).toBe(path);
    } finally {
      closeSync(fd);
    }
  });
});
