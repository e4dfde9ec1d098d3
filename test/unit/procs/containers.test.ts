// The container directory on a made-up /proc and cgroup v2 tree (temporary directories):
// a directory's inode is its cgroup id, as on a real host.
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { containerMatches, createContainerDirectory, isContainerChoice } from "../../../src/procs/containers.ts";

const ID_A = "a".repeat(12) + "0123456789abcdef".repeat(3) + "0123";
const ID_B = "b".repeat(64);
/** What a flow takes from a label. */
const label = (l: { id: string; name: string; image: string } | undefined) => l && { id: l.id, name: l.name, image: l.image };

function fakeHost() {
  const root = mkdtempSync(`${tmpdir()}/tapwire-containers-`);
  const proc = `${root}/proc`;
  const cg = `${root}/cgroup with space`;
  mkdirSync(`${proc}/self`, { recursive: true });
  // mountinfo escapes the space in the mount point.
  writeFileSync(`${proc}/self/mountinfo`, `30 20 0:26 / ${cg.replace(/ /g, "\\040")} rw,nosuid - cgroup2 cgroup2 rw\n`);
  const cgroup = (path: string) => {
    mkdirSync(`${cg}${path}`, { recursive: true });
    return Number(statSync(`${cg}${path}`).ino);
  };
  const process = (pid: number, path: string) => {
    mkdirSync(`${proc}/${pid}`, { recursive: true });
    writeFileSync(`${proc}/${pid}/cgroup`, `0::${path}\n`);
    writeFileSync(`${proc}/${pid}/stat`, `${pid} (x) S`);
  };
  return { root, proc, cgroup, cgroupDir: (path: string) => `${cg}${path}`, process, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

describe("container directory without an engine", () => {
  test("a process is labeled with its container from its cgroup; host processes are not", async () => {
    const h = fakeHost();
    const podmanId = h.cgroup(`/libpod_parent/libpod-${ID_A}`);
    const hostId = h.cgroup("/user.slice");
    h.process(100, `/libpod_parent/libpod-${ID_A}`);
    h.process(200, "/user.slice");
    const dir = createContainerDirectory({ socket: "", procRoot: h.proc });
    await dir.start();
    expect(dir.cgroupMount).toBe(`${h.root}/cgroup with space`);
    expect(dir.engine).toEqual({ socket: "", reachable: false, reason: "no engine socket given" });
    expect(label(dir.labelOf(100, podmanId))).toEqual({ id: ID_A, name: "", image: "" });
    expect(dir.labelOf(200, hostId)).toBeUndefined();
    // Found at start from the processes, with the cgroup id the kernel filter needs.
    expect(dir.running().map((c) => [c.id, c.pid, c.cgroupId, c.source])).toEqual([[ID_A, 100, podmanId, "cgroup"]]);
    dir.close();
    h.cleanup();
  });

  test("a container first met through a label asked without the kernel's id still gets its cgroup id (the filter needs it)", async () => {
    const h = fakeHost();
    const podmanId = h.cgroup(`/libpod_parent/libpod-${ID_A}`);
    h.process(100, `/libpod_parent/libpod-${ID_A}`);
    const dir = createContainerDirectory({ socket: "", procRoot: h.proc });
    // Whose root a file is in is asked before start (the TLS scan), with no kernel cgroup id.
    expect(label(dir.labelOf(100, 0))).toEqual({ id: ID_A, name: "", image: "" });
    await dir.start();
    expect(dir.running().map((c) => [c.id, c.cgroupId])).toEqual([[ID_A, podmanId]]);
    dir.close();
    h.cleanup();
  });

  test("answers are cached by cgroup id: the process may be gone by the time its flow ends", async () => {
    const h = fakeHost();
    const dir = createContainerDirectory({ socket: "", procRoot: h.proc });
    await dir.start();
    const id = h.cgroup(`/system.slice/docker-${ID_B}.scope`);
    h.process(300, `/system.slice/docker-${ID_B}.scope`);
    let changes = 0;
    dir.onChange(() => changes++);
    dir.noteProcess(300, id); // its exec
    expect(changes).toBe(1);
    rmSync(`${h.proc}/300`, { recursive: true });
    expect(label(dir.labelOf(300, id))).toEqual({ id: ID_B, name: "", image: "" });
    // Running while its cgroup exists, whatever became of the process first seen.
    expect(dir.running().map((c) => c.id)).toEqual([ID_B]);
    rmSync(h.cgroupDir(`/system.slice/docker-${ID_B}.scope`), { recursive: true });
    expect(dir.running().map((c) => c.id)).toEqual([]);
    dir.close();
    h.cleanup();
  });

  test("a process gone before it was looked at is found by walking the cgroup tree", async () => {
    const h = fakeHost();
    const dir = createContainerDirectory({ socket: "", procRoot: h.proc });
    await dir.start();
    const nested = h.cgroup(`/kubepods/pod1/cri-containerd-${ID_A}.scope`);
    expect(label(dir.labelOf(999, nested))).toEqual({ id: ID_A, name: "", image: "" });
    dir.close();
    h.cleanup();
  });

  test("a process that moved to another cgroup since the kernel saw it is not cached under the new one", async () => {
    const h = fakeHost();
    const dir = createContainerDirectory({ socket: "", procRoot: h.proc });
    await dir.start();
    const before = h.cgroup("/somewhere");
    h.cgroup(`/libpod_parent/libpod-${ID_B}`);
    h.process(400, `/libpod_parent/libpod-${ID_B}`);
    // The label says what /proc says now, but the kernel's id stays unclaimed.
    expect(dir.labelOf(400, before)?.id).toBe(ID_B);
    h.process(400, "/somewhere");
    expect(dir.labelOf(400, before)).toBeUndefined();
    dir.close();
    h.cleanup();
  });

  test("an engine socket that does not answer: said once, retried quietly", async () => {
    const h = fakeHost();
    const lines: string[] = [];
    const dir = createContainerDirectory({ socket: `${h.root}/no.sock`, procRoot: h.proc, retryMs: 20, log: (l) => lines.push(l) });
    await dir.start();
    await Bun.sleep(150);
    dir.close();
    expect(lines.length).toBe(1);
    expect(lines[0]).toStartWith(`tapwire: no container engine answers at ${h.root}/no.sock (`);
    expect(dir.engine.reachable).toBe(false);
    h.cleanup();
  });
});

describe("container directory: the container's own cgroup", () => {
  test("the filter's cgroup is the container's, not a process's below it; a restart's new cgroup is taken", async () => {
    const h = fakeHost();
    const own = h.cgroup(`/machine.slice/libpod-${ID_A}.scope`);
    const inner = h.cgroup(`/machine.slice/libpod-${ID_A}.scope/container`);
    h.process(10, `/machine.slice/libpod-${ID_A}.scope/container`);
    // podman's monitor is not one of the container's processes.
    h.cgroup(`/machine.slice/libpod-conmon-${ID_A}.scope`);
    h.process(9, `/machine.slice/libpod-conmon-${ID_A}.scope`);
    const dir = createContainerDirectory({ socket: "", procRoot: h.proc });
    await dir.start();
    expect(dir.running().map((c) => [c.id, c.cgroupId, c.cgroupPath, c.pid])).toEqual([[ID_A, own, `/machine.slice/libpod-${ID_A}.scope`, 10]]);
    expect(dir.labelOf(9, 0)).toBeUndefined();
    expect(label(dir.labelOf(10, inner))).toEqual({ id: ID_A, name: "", image: "" });
    // Restarted: the same id in a new cgroup directory (a new id).
    rmSync(h.cgroupDir(`/machine.slice/libpod-${ID_A}.scope`), { recursive: true });
    expect(dir.running()).toEqual([]);
    // (cgroup ids are never reused; a file system may reuse inode numbers at once)
    for (const d of ["/x1", "/x2", "/x3"]) h.cgroup(d);
    const again = h.cgroup(`/machine.slice/libpod-${ID_A}.scope`);
    expect(again).not.toBe(own);
    const innerAgain = h.cgroup(`/machine.slice/libpod-${ID_A}.scope/container`);
    h.process(20, `/machine.slice/libpod-${ID_A}.scope/container`);
    let changes = 0;
    dir.onChange(() => changes++);
    dir.noteProcess(20, innerAgain);
    expect(changes).toBe(1);
    expect(dir.running().map((c) => [c.cgroupId, c.pid])).toEqual([[again, 20]]);
    dir.close();
    h.cleanup();
  });
});

describe("container choices", () => {
  const c = { id: ID_A, name: "web", image: "img" };
  test.each([
    ["web", true],
    ["/web", true],
    ["we", false],
    [ID_A, true],
    [ID_A.slice(0, 12), true],
    [ID_A.slice(0, 12).toUpperCase(), true],
    [ID_A.slice(0, 11), false],
    [ID_B.slice(0, 12), false],
    ["", false],
  ])("%p matches: %p", (choice, yes) => {
    expect(containerMatches(choice, c)).toBe(yes);
  });
  test("what a choice may look like", () => {
    expect(["web", "/web", "my_app.1-x", ID_A].every(isContainerChoice)).toBe(true);
    expect(["", "a b", "-x", "x/y", "../x"].some(isContainerChoice)).toBe(false);
  });
});
