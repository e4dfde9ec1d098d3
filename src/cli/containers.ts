// `tapwire containers`, and the same listing for ListContainers and Trayce: the containers
// running here, their processes, and the TLS libraries and Go programs probed in them.
import { create, toJsonString } from "@bufbuild/protobuf";
import { ContainerInfoSchema, ListContainersResponseSchema, type ContainerInfo, type ListContainersResponse } from "../gen/tapwire/v1/service_pb.ts";
import { ContainerSchema } from "../gen/tapwire/v1/flow_pb.ts";
import { containerProcesses, createContainerDirectory, type ContainerDirectory, type KnownContainer } from "../procs/containers.ts";
import { createTlsProbes, type TlsLibrary } from "../probes/tls-probes.ts";
import { createTlsUsage } from "../probes/tls-usage.ts";
import { loadDecoder } from "../elfkit/rets.ts";
import { containerRoot } from "./engine.ts";

/** The running containers as ListContainers returns them, sorted by name then id. */
export function listContainers(dir: ContainerDirectory, libraries: readonly TlsLibrary[], captured: (c: KnownContainer) => boolean): ListContainersResponse {
  const usage = createTlsUsage(libraries);
  const procs = containerProcesses();
  const containers: ContainerInfo[] = dir
    .running()
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
    .map((c) => {
      const pids = (procs.get(c.id) ?? []).map((p) => p.pid);
      const libs = new Set<TlsLibrary>();
      for (const pid of pids) for (const l of usage.ofProcess(pid)) libs.add(l);
      return create(ContainerInfoSchema, {
        container: create(ContainerSchema, { id: c.id, name: c.name, image: c.image }),
        pid: c.pid || pids[0] || 0,
        networkMode: c.networkMode,
        ip: c.ip,
        captured: captured(c),
        tlsLibraries: [...libs].map((l) => `${l.version} ${l.path}`),
        pids,
      });
    });
  return create(ListContainersResponseSchema, { containers, engineError: dir.engine.reachable ? "" : dir.engine.reason });
}

export async function containersCommand(args: { json: boolean; dockerSocket: string }): Promise<number> {
  const dir = createContainerDirectory({ socket: args.dockerSocket });
  await dir.start();
  // What capture would probe: the same discovery, without attaching.
  await loadDecoder();
  const tls = createTlsProbes({ log: () => {}, rootOf: (pid) => containerRoot(dir, pid) });
  tls.scanRunning();
  const list = listContainers(dir, tls.libraries, () => true);
  dir.close();
  if (list.engineError && args.dockerSocket) process.stderr.write(`tapwire: no container engine answers at ${args.dockerSocket} (${list.engineError}); names and images are unknown (--docker-socket PATH)\n`);
  if (process.getuid?.() !== 0) process.stderr.write("tapwire: not root: other users' processes and their libraries cannot be read\n");
  if (args.json) {
    console.log(toJsonString(ListContainersResponseSchema, list));
    return 0;
  }
  if (!list.containers.length) {
    console.log("no containers running");
    return 0;
  }
  const rows = list.containers.map((c) => [
    c.container!.id.slice(0, 12),
    c.container!.name || "-",
    c.container!.image || "-",
    String(c.pid),
    c.networkMode || "-",
    c.tlsLibraries.join(", ") || "-",
  ]);
  const head = ["ID", "NAME", "IMAGE", "PID", "NETWORK", "TLS PROBED"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) console.log(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join("  "));
  return 0;
}
