// `tapwire containers`: the containers running here, their processes, and the TLS
// libraries and Go programs tapwire would probe in them (ListContainers' listing).
import { toJsonString } from "@bufbuild/protobuf";
import { ListContainersResponseSchema } from "../gen/tapwire/v1/service_pb.ts";
import { createContainerDirectory } from "../procs/containers.ts";
import { createTlsProbes } from "../probes/tls-probes.ts";
import { listContainers } from "../api/container-list.ts";
import { loadDecoder } from "../elfkit/decode.ts";
import { containerRoot } from "../capture/capture.ts";

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
