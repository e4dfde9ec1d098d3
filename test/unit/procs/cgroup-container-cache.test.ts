// The cgroup-id-to-container cache on its own, on a made-up /proc and cgroup v2 tree: what it
// reads, what it caches, when it walks the tree, and which containers it reports as seen.
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createCgroupContainerCache, type ContainerSightings } from "../../../src/procs/cgroup-container-cache.ts";
import type { ContainerCgroup } from "../../../src/procs/cgroups.ts";
import { fakeHost, ID_A, ID_B, ID_C } from "./fake-host.ts";

/** Sightings written down; `known` says which containers the keeper already has. */
function recorder(known = new Set<string>()) {
  const seen: [string, number, ContainerCgroup][] = [];
  const sightings: ContainerSightings = {
    seen: (id, pid, own) => {
      seen.push([id, pid, own]);
      known.add(id);
    },
    has: (id) => known.has(id),
  };
  return { seen, known, sightings };
}

describe("cgroup container cache", () => {
  test("a container's process: its container, reported with the container's own cgroup; cached by the kernel's id", () => {
    const h = fakeHost();
    const own = h.cgroup(`/machine.slice/libpod-${ID_A}.scope`);
    const inner = h.cgroup(`/machine.slice/libpod-${ID_A}.scope/container`);
    h.process(10, `/machine.slice/libpod-${ID_A}.scope/container`);
    const r = recorder();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: r.sightings });
    expect(cache.mount).toBe(h.mount);
    expect(cache.resolve(10, inner)).toBe(ID_A);
    expect(r.seen).toEqual([[ID_A, 10, { id: own, path: `/machine.slice/libpod-${ID_A}.scope` }]]);
    expect(cache.size).toBe(1);
    // Gone: answered from the cache, not reported again (its keeper knows it).
    rmSync(`${h.proc}/10`, { recursive: true });
    expect(cache.resolve(10, inner)).toBe(ID_A);
    expect(r.seen.length).toBe(1);
    // A keeper that has forgotten it hears of it again, with no cgroup to add.
    r.known.clear();
    expect(cache.resolve(11, inner)).toBe(ID_A);
    expect(r.seen[1]).toEqual([ID_A, 11, { id: 0, path: "" }]);
    h.cleanup();
  });

  test("a host process's cgroup is cached as no container's; asked without the kernel's id, nothing is cached", () => {
    const h = fakeHost();
    const host = h.cgroup("/user.slice");
    h.process(20, "/user.slice");
    h.cgroup(`/docker/${ID_B}`);
    h.process(21, `/docker/${ID_B}`);
    const r = recorder();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: r.sightings });
    expect(cache.resolve(20, host)).toBeUndefined();
    expect(cache.size).toBe(1);
    // Even if that pid now named a container, the kernel's id is answered from the cache.
    h.process(20, `/docker/${ID_B}`);
    expect(cache.resolve(20, host)).toBeUndefined();
    expect(cache.resolve(21, 0)).toBe(ID_B);
    expect(cache.size).toBe(1);
    expect(r.seen.map(([id, pid]) => [id, pid])).toEqual([[ID_B, 21]]);
    h.cleanup();
  });

  test("a process that moved since the kernel saw it: answered from /proc, not cached under the kernel's id", () => {
    const h = fakeHost();
    const before = h.cgroup("/somewhere");
    h.cgroup(`/libpod_parent/libpod-${ID_B}`);
    h.process(30, `/libpod_parent/libpod-${ID_B}`);
    const r = recorder();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: r.sightings });
    expect(cache.resolve(30, before)).toBe(ID_B);
    expect(cache.size).toBe(0);
    expect(r.seen).toEqual([]);
    h.cleanup();
  });

  test("a process gone before it was looked at: the cgroup tree is walked, at most once per interval", () => {
    const h = fakeHost();
    const r = recorder();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: r.sightings, scanIntervalMs: 60_000 });
    const nested = h.cgroup(`/kubepods/pod1/cri-containerd-${ID_A}.scope/sub`);
    const own = h.cgroup(`/kubepods/pod1/cri-containerd-${ID_A}.scope`);
    expect(cache.resolve(999, nested)).toBe(ID_A);
    // The container and the cgroups inside it are learnt; the container is reported with its own cgroup.
    expect(r.seen).toEqual([[ID_A, 0, { id: own, path: `/kubepods/pod1/cri-containerd-${ID_A}.scope` }]]);
    expect(cache.size).toBe(2);
    // A container made after the walk is not found until the interval has passed.
    const later = h.cgroup(`/docker/${ID_C}`);
    expect(cache.resolve(998, later)).toBeUndefined();
    const eager = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder().sightings, scanIntervalMs: 0 });
    expect(eager.resolve(998, later)).toBe(ID_C);
    h.cleanup();
  });

  test("the walk stops at its depth", () => {
    const h = fakeHost();
    const deep = h.cgroup(`/a/b/c/docker-${ID_A}.scope`);
    const shallow = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder().sightings, maxScanDepth: 3 });
    expect(shallow.resolve(999, deep)).toBeUndefined();
    const deeper = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder().sightings, maxScanDepth: 4 });
    expect(deeper.resolve(999, deep)).toBe(ID_A);
    h.cleanup();
  });

  test("bounded: past its size the cache is dropped whole, then fills again", () => {
    const h = fakeHost();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder().sightings, maxCgroups: 2 });
    cache.remember(1, ID_A);
    cache.remember(2, ID_B);
    expect(cache.size).toBe(2);
    cache.remember(3, ID_C);
    expect(cache.size).toBe(1);
    expect(cache.resolve(999, 3)).toBe(ID_C);
    h.cleanup();
  });

  test("an id the engine named is answered for a process already gone, without a walk", () => {
    const h = fakeHost();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder(new Set([ID_B])).sightings });
    cache.remember(4242, ID_B);
    expect(cache.resolve(999, 4242)).toBe(ID_B);
    h.cleanup();
  });

  test("own cgroups: from a process below the container's, and whether it still exists", () => {
    const h = fakeHost();
    const own = h.cgroup(`/system.slice/docker-${ID_A}.scope`);
    h.cgroup(`/system.slice/docker-${ID_A}.scope/init.scope`);
    h.process(40, `/system.slice/docker-${ID_A}.scope/init.scope`);
    h.process(41, "/user.slice");
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder().sightings });
    expect(cache.ownCgroupOfPid(40)).toEqual({ id: own, path: `/system.slice/docker-${ID_A}.scope` });
    expect(cache.ownCgroupOfPid(41)).toEqual({ id: 0, path: "" });
    expect(cache.ownCgroupOfPid(999)).toEqual({ id: 0, path: "" });
    expect(cache.ownCgroupExists(`/system.slice/docker-${ID_A}.scope`)).toBe(true);
    rmSync(h.cgroupDir(`/system.slice/docker-${ID_A}.scope`), { recursive: true });
    expect(cache.ownCgroupExists(`/system.slice/docker-${ID_A}.scope`)).toBe(false);
    h.cleanup();
  });

  test("the processes at start: each container once, with its lowest pid and own cgroup, its cgroup id remembered first", () => {
    const h = fakeHost();
    const a = h.cgroup(`/libpod_parent/libpod-${ID_A}`);
    const b = h.cgroup(`/docker/${ID_B}`);
    h.process(70, `/libpod_parent/libpod-${ID_A}`);
    h.process(50, `/libpod_parent/libpod-${ID_A}`);
    h.process(60, `/docker/${ID_B}`);
    h.process(1, "/");
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: recorder(new Set([ID_A, ID_B])).sightings });
    const found: [string, number, ContainerCgroup, number][] = [];
    cache.scanProcesses((id, pid, own) => found.push([id, pid, own, cache.size]));
    expect(found).toEqual([
      [ID_A, 50, { id: a, path: `/libpod_parent/libpod-${ID_A}` }, 1],
      [ID_B, 60, { id: b, path: `/docker/${ID_B}` }, 2],
    ]);
    rmSync(`${h.proc}/50`, { recursive: true });
    expect(cache.resolve(50, a)).toBe(ID_A);
    h.cleanup();
  });

  test("a host without cgroup v2: no mount, the kernel's id is no key, containers still named from /proc", () => {
    const h = fakeHost({ v1Only: true });
    h.process(80, `/docker/${ID_A}`);
    const r = recorder();
    const cache = createCgroupContainerCache({ procRoot: h.proc, sightings: r.sightings });
    expect(cache.mount).toBeUndefined();
    expect(cache.resolve(80, 1)).toBe(ID_A);
    expect(cache.size).toBe(0);
    expect(r.seen).toEqual([[ID_A, 80, { id: 0, path: "" }]]);
    expect(cache.ownCgroupOfPid(80)).toEqual({ id: 0, path: "" });
    expect(cache.ownCgroupExists(`/docker/${ID_A}`)).toBeUndefined();
    rmSync(`${h.proc}/80`, { recursive: true });
    expect(cache.resolve(80, 1)).toBeUndefined();
    h.cleanup();
  });
});
