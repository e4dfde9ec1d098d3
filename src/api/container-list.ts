// The containers running here as ListContainers returns them (and `tapwire containers`
// prints them): each with its processes and the TLS libraries and Go programs probed in it.
import { create } from "@bufbuild/protobuf";
import { ContainerInfoSchema, ListContainersResponseSchema, type ContainerInfo, type ListContainersResponse } from "../gen/tapwire/v1/service_pb.ts";
import { ContainerSchema } from "../gen/tapwire/v1/flow_pb.ts";
import { containerProcesses, type ContainerDirectory, type KnownContainer } from "../procs/containers.ts";
import type { TlsLibrary } from "../probes/tls-probes.ts";
import { createTlsUsage } from "../probes/tls-usage.ts";

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
