// Containers from cgroups: each runtime's naming on v2, v1 and hybrid hosts, the v2 mount
// from mountinfo, and the cgroup id of this host's own cgroup.
import { describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { cgroup2Mount, cgroup2Path, cgroupId, containerFromCgroup, type ContainerRuntime } from "../../../src/procs/cgroups.ts";

const ID = "3f1c2b9a8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615e4d3";

describe("container from /proc/PID/cgroup", () => {
  test.each([
    ["Docker, cgroupfs driver (v2)", `0::/docker/${ID}\n`, "docker", `/docker/${ID}`, `/docker/${ID}`],
    ["Docker, systemd driver (v2)", `0::/system.slice/docker-${ID}.scope\n`, "docker", `/system.slice/docker-${ID}.scope`, `/system.slice/docker-${ID}.scope`],
    ["systemd inside a Docker container (v2)", `0::/system.slice/docker-${ID}.scope/init.scope\n`, "docker", `/system.slice/docker-${ID}.scope/init.scope`, `/system.slice/docker-${ID}.scope`],
    ["containerd under Kubernetes (v2)", `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-${ID}.scope\n`, "containerd", `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-${ID}.scope`, `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-${ID}.scope`],
    ["CRI-O (v2)", `0::/kubepods.slice/crio-${ID}.scope\n`, "crio", `/kubepods.slice/crio-${ID}.scope`, `/kubepods.slice/crio-${ID}.scope`],
    ["podman on a hybrid host", `12:pids:/libpod_parent/libpod-${ID}\n1:name=systemd:/libpod_parent/libpod-${ID}\n0::/libpod_parent/libpod-${ID}\n`, "podman", `/libpod_parent/libpod-${ID}`, `/libpod_parent/libpod-${ID}`],
    ["podman with systemd (v2)", `0::/machine.slice/libpod-${ID}.scope/container\n`, "podman", `/machine.slice/libpod-${ID}.scope/container`, `/machine.slice/libpod-${ID}.scope`],
    ["Docker on cgroup v1 only", `11:memory:/docker/${ID}\n10:cpu,cpuacct:/docker/${ID}\n`, "docker", "", ""],
    // Named on v1 only, while its v2 cgroup is shared: labeled, but not filterable by v2 id.
    ["hybrid, v2 cgroup shared", `4:memory:/docker/${ID}\n0::/system.slice/containerd.service\n`, "docker", "", ""],
  ] as [string, string, ContainerRuntime, string, string][])("%s", (_, text, runtime, path, containerPath) => {
    expect(containerFromCgroup(text)).toEqual({ runtime, id: ID, path, containerPath });
  });

  test("a host process, and ids of the wrong length, are not containers", () => {
    expect(containerFromCgroup("0::/user.slice/user-0.slice/session-1.scope\n")).toBeUndefined();
    expect(containerFromCgroup("0::/\n9:name=systemd:/\n")).toBeUndefined();
    expect(containerFromCgroup(`0::/docker/${ID.slice(1)}\n`)).toBeUndefined();
    expect(containerFromCgroup(`0::/libpod_parent/libpod-conmon-${ID}\n`)).toBeUndefined(); // podman's monitor
    expect(containerFromCgroup(`0::/docker/${ID}x\n`)).toBeUndefined();
    expect(containerFromCgroup("")).toBeUndefined();
  });
});

describe("the v2 hierarchy", () => {
  test("found in mountinfo wherever it is mounted (hybrid hosts: /sys/fs/cgroup/unified), unescaped", () => {
    const hybrid = [
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
      "40 31 0:37 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw",
    ].join("\n");
    expect(cgroup2Mount(hybrid)).toBe("/sys/fs/cgroup/unified");
    expect(cgroup2Mount("25 1 0:22 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate")).toBe("/sys/fs/cgroup");
    expect(cgroup2Mount("25 1 0:22 / /mnt/with\\040space rw - cgroup2 cgroup2 rw")).toBe("/mnt/with space");
    expect(cgroup2Mount("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu")).toBeUndefined();
  });

  test("this host: the v2 mount, this process's cgroup path, and its id (the directory's inode)", () => {
    const mount = cgroup2Mount(readFileSync("/proc/self/mountinfo", "latin1"));
    expect(mount).toBeDefined();
    const path = cgroup2Path(readFileSync("/proc/self/cgroup", "latin1"));
    expect(path.startsWith("/")).toBe(true);
    const id = cgroupId(mount!, path);
    expect(id).toBe(statSync(`${mount}${path === "/" ? "" : path}`, { bigint: true }).ino);
    expect(cgroupId(mount!, "/no/such/cgroup")).toBeUndefined();
  });
});
