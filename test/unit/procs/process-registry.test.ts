// The process registry on a made-up /proc: the executable from the kernel's link (a deleted
// one's " (deleted)" stripped), from exec's file name once the process is gone, and bounded.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";

const root = mkdtempSync(`${tmpdir()}/tapwire-registry-`);
const proc = `${root}/proc`;
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fakeProcess = (pid: number, exe: string) => {
  mkdirSync(`${proc}/${pid}`, { recursive: true });
  symlinkSync(exe, `${proc}/${pid}/exe`);
};

describe("process registry", () => {
  test("the kernel's link while the process lives, without ' (deleted)'; exec's file name, resolved, once it is gone", () => {
    fakeProcess(10, "/usr/bin/python3.11");
    fakeProcess(11, "/opt/app/server (deleted)");
    const r = createProcessRegistry(proc);
    r.exec(10, "/usr/bin/python3");
    r.exec(11, "./server");
    // Gone before its exec was looked at: the name it was started with, through symlinks.
    mkdirSync(`${root}/bin`);
    symlinkSync("/bin/sh", `${root}/bin/shell`);
    r.exec(12, `${root}/bin/shell`);
    r.exec(13, "/no/such/file");
    expect([r.exe(10), r.exe(11), r.exe(12), r.exe(13)]).toEqual(["/usr/bin/python3.11", "/opt/app/server", realpathSync("/bin/sh"), "/no/such/file"]);
    // Running before tapwire: read on first sight; unknown: "".
    fakeProcess(14, "/usr/sbin/nginx (deleted)");
    expect([r.exe(14), r.exe(99)]).toEqual(["/usr/sbin/nginx", ""]);
    r.exit(10);
    expect(r.size).toBe(5);
  });

  test("bounded: the oldest entry makes room", () => {
    const r = createProcessRegistry(proc, 2);
    r.exec(1001, "/a");
    r.exec(1002, "/b");
    r.exec(1003, "/c");
    expect(r.size).toBe(2);
    expect(r.exe(1002)).toBe("/b");
  });
});
