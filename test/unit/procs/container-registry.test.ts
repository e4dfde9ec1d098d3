// The registry of known containers on its own: cgroups and the engine are stand-ins that say
// what the test wants, processes live in a made-up /proc. What it keeps of each source, when
// it asks the engine, when a container stops, and when its listeners are told.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createContainerRegistry, type RegistryCgroups } from "../../../src/procs/container-registry.ts";
import type { ContainerCgroup } from "../../../src/procs/cgroups.ts";
import type { ContainerInfo } from "../../../src/procs/docker.ts";
import { ID_A, ID_B, ID_C } from "./fake-host.ts";

const proc = mkdtempSync(`${tmpdir()}/tapwire-registry-`);
afterAll(() => rmSync(proc, { recursive: true, force: true }));
const live = (pid: number) => {
  mkdirSync(`${proc}/${pid}`, { recursive: true });
  writeFileSync(`${proc}/${pid}/stat`, `${pid} (x) S 1`);
};
const die = (pid: number) => rmSync(`${proc}/${pid}`, { recursive: true, force: true });

/** Cgroups as the test sets them: each pid's own cgroup, which cgroup paths exist (undefined: cannot tell). */
function standIns() {
  const ownOf = new Map<number, ContainerCgroup>();
  const existing = new Set<string>();
  let canTell = true;
  const remembered: [number, string][] = [];
  const cgroups: RegistryCgroups = {
    ownCgroupOfPid: (pid) => ownOf.get(pid) ?? { id: 0, path: "" },
    ownCgroupExists: (path) => (canTell ? existing.has(path) : undefined),
    remember: (cid, id) => void remembered.push([cid, id]),
  };
  const asked: string[] = [];
  const lines: string[] = [];
  let changes = 0;
  const make = (maxContainers?: number) => {
    const r = createContainerRegistry({ cgroups, askEngine: (id) => void asked.push(id), procRoot: proc, maxContainers, log: (l) => void lines.push(l) });
    r.onChange(() => changes++);
    return r;
  };
  return { ownOf, existing, remembered, asked, lines, make, changes: () => changes, cannotTell: () => (canTell = false) };
}

const info = (id: string, over: Partial<ContainerInfo> = {}): ContainerInfo => ({ id, name: `n-${id.slice(0, 2)}`, image: "img", pid: 0, running: true, networkMode: "host", ip: "", ...over });
const own = (id: number, path: string): ContainerCgroup => ({ id, path });

describe("container registry", () => {
  test("a container seen through a process: added, the engine asked, listeners told; seen again, nothing changes", () => {
    const s = standIns();
    const r = s.make();
    r.seen(ID_A, 10, own(5, "/a"));
    expect(r.get(ID_A)).toEqual({ id: ID_A, name: "", image: "", pid: 10, running: true, networkMode: "", ip: "", cgroupId: 5, cgroupPath: "/a", source: "cgroup" });
    expect([s.asked, s.changes()]).toEqual([[ID_A], 1]);
    r.seen(ID_A, 11, own(5, "/a"));
    r.seen(ID_A, 12, own(0, ""));
    expect([s.asked.length, s.changes(), r.get(ID_A)!.pid]).toEqual([1, 1, 10]);
  });

  test("restarted (a new cgroup): the new cgroup is taken and the engine asked again; stopped with a live process: running again", () => {
    const s = standIns();
    const r = s.make();
    r.seen(ID_A, 10, own(5, "/a"));
    r.seen(ID_A, 20, own(6, "/a"));
    expect([r.get(ID_A)!.cgroupId, r.get(ID_A)!.pid, s.asked.length, s.changes()]).toEqual([6, 20, 2, 2]);
    r.get(ID_A)!.running = false;
    r.seen(ID_A, 30, own(0, "")); // not a live process: nothing
    expect(r.get(ID_A)!.running).toBe(false);
    live(30);
    r.seen(ID_A, 30, own(0, ""));
    expect([r.get(ID_A)!.running, r.get(ID_A)!.pid, s.changes()]).toEqual([true, 30, 3]);
    die(30);
  });

  test("found at start: added quietly; already known with another cgroup: seen", () => {
    const s = standIns();
    const r = s.make();
    r.foundAtStart(ID_A, 10, own(5, "/a"));
    expect([r.has(ID_A), s.asked.length, s.changes()]).toEqual([true, 0, 0]);
    r.foundAtStart(ID_A, 10, own(5, "/a"));
    r.foundAtStart(ID_A, 11, own(7, "/a2"));
    expect([r.get(ID_A)!.cgroupId, s.asked.length, s.changes()]).toEqual([7, 1, 1]);
  });

  test("the engine's description: name, image and network taken; the main process's cgroup remembered as the container's", () => {
    const s = standIns();
    const r = s.make();
    r.seen(ID_A, 10, own(5, "/a"));
    s.ownOf.set(99, own(5, "/a"));
    r.fromEngine(info(ID_A, { pid: 99, ip: "10.0.0.2" }));
    expect(r.get(ID_A)).toEqual({ id: ID_A, name: "n-aa", image: "img", pid: 99, running: true, networkMode: "host", ip: "10.0.0.2", cgroupId: 5, cgroupPath: "/a", source: "engine" });
    expect(s.remembered).toEqual([[5, ID_A]]);
    expect(s.changes()).toBe(2);
    // Its main process unknown (not running): the pid and path are kept, the cgroup id is not.
    r.fromEngine(info(ID_A, { pid: 0, running: false }));
    expect([r.get(ID_A)!.pid, r.get(ID_A)!.cgroupId, r.get(ID_A)!.cgroupPath, r.get(ID_A)!.running]).toEqual([99, 0, "/a", false]);
  });

  test("the engine's list: containers it no longer lists stop, those seen only through processes are asked about, listeners told once", () => {
    const s = standIns();
    const r = s.make();
    r.fromEngine(info(ID_A));
    r.fromEngine(info(ID_B));
    r.seen(ID_C, 30, own(0, ""));
    s.asked.length = 0;
    const before = s.changes();
    r.fromEngineList([info(ID_B)]);
    expect([r.get(ID_A)!.running, r.get(ID_B)!.running, r.get(ID_C)!.running]).toEqual([false, true, true]);
    expect(s.asked).toEqual([ID_C]);
    expect(s.changes() - before).toBe(1);
  });

  test("a stop the engine reports is believed once the container's cgroup is gone (or, with none known, its process)", () => {
    const s = standIns();
    const r = s.make();
    s.existing.add("/a");
    r.seen(ID_A, 10, own(5, "/a"));
    live(20);
    r.seen(ID_B, 20, own(0, ""));
    r.stoppedPerEngine(ID_A);
    r.stoppedPerEngine(ID_B);
    r.stoppedPerEngine(ID_C); // unknown: nothing
    expect([r.get(ID_A)!.running, r.get(ID_B)!.running]).toEqual([true, true]);
    s.existing.delete("/a");
    die(20);
    const before = s.changes();
    r.stoppedPerEngine(ID_A);
    r.stoppedPerEngine(ID_B);
    expect([r.get(ID_A)!.running, r.get(ID_B)!.running, s.changes() - before]).toEqual([false, false, 2]);
  });

  test("running(): a container seen only through processes stops with its cgroup; without a v2 tree, with its process", () => {
    const s = standIns();
    const r = s.make();
    s.existing.add("/a");
    r.seen(ID_A, 10, own(5, "/a"));
    expect(r.running().map((c) => c.id)).toEqual([ID_A]);
    s.existing.delete("/a");
    expect(r.running()).toEqual([]);
    const t = standIns();
    t.cannotTell();
    const r2 = t.make();
    live(40);
    r2.seen(ID_B, 40, own(0, "/b"));
    expect(r2.running().map((c) => c.id)).toEqual([ID_B]);
    die(40);
    expect(r2.running()).toEqual([]);
  });

  test("bounded: past its size, stopped containers are forgotten oldest first; running ones are kept", () => {
    const s = standIns();
    const r = s.make(2);
    r.fromEngine(info(ID_A, { running: false }));
    r.fromEngine(info(ID_B));
    r.fromEngine(info(ID_C, { running: false }));
    expect([r.has(ID_A), r.has(ID_B), r.has(ID_C), r.size]).toEqual([false, true, true, 2]);
    const ids = ["d", "e"].map((x) => x.repeat(64));
    for (const id of ids) r.fromEngine(info(id));
    expect([r.size, r.has(ID_C), r.has(ID_B)]).toEqual([3, false, true]); // all running: kept past the bound
  });

  test("a listener that throws is said, and the others are still told", () => {
    const s = standIns();
    const r = s.make();
    r.onChange(() => {
      throw new Error("no map");
    });
    let after = 0;
    r.onChange(() => after++);
    r.seen(ID_A, 10, own(5, "/a"));
    expect([after, s.lines]).toEqual([1, ["tapwire: updating the container filter failed: no map"]]);
  });
});
