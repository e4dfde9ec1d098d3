// `tapwire doctor`: every requirement, checked, with the fix for what is missing; then a
// real load and attach of the probes, which is the check that settles it.
import { runChecks } from "../bpf/system.ts";
import { loadProbes } from "../bpf/loader.ts";
import { readBpfObject } from "../bpf/object.ts";
import { createTlsProbes } from "../probes/tls-probes.ts";
import { loadDecoder } from "../elfkit/decode.ts";
import { createContainerDirectory } from "../procs/containers.ts";
import { dockerSocketPath } from "../procs/docker.ts";
import { startExecHold, ExecHoldUnavailable } from "../probes/exec-hold.ts";
import { execHolderCommand } from "./holder-command.ts";

export async function doctor(color: boolean): Promise<number> {
  const mark = (ok: boolean) => (ok ? (color ? "\x1b[32m✓\x1b[0m" : "ok ") : color ? "\x1b[31m✗\x1b[0m" : "NO ");
  const checks = runChecks();
  let failed = 0;
  for (const c of checks) {
    console.log(`${mark(c.ok)} ${c.name.padEnd(12)} ${c.detail}`);
    if (!c.ok) {
      failed++;
      if (c.fix) console.log(`    fix: ${c.fix}`);
    }
  }
  if (failed === 0) {
    try {
      const probes = loadProbes({ object: await readBpfObject(), ringBytes: 1 << 20, selfPid: process.pid });
      console.log(`${mark(true)} ${"probes".padEnd(12)} ${probes.attached.length} programs loaded and attached`);
      await probes.close();
    } catch (e) {
      failed++;
      console.log(`${mark(false)} ${"probes".padEnd(12)} ${(e as Error).message}`);
    }
  }
  if (failed === 0) {
    // Holding a new program's exec until it is probed: fanotify permission events.
    try {
      const hold = await startExecHold({ timeoutMs: 1, holderCommand: execHolderCommand(), decide: () => "retry", log: () => {} });
      await hold.close();
      console.log(
        `${mark(true)} ${"exec hold".padEnd(12)} programs started after tapwire wait until probed (fanotify, ${hold.filesystems} filesystems)` +
          (hold.skipped ? `; not on ${hold.skipped}` : ""),
      );
    } catch (e) {
      if (!(e instanceof ExecHoldUnavailable)) throw e;
      // Not a failure: tapwire runs, a new program's first requests may be missed.
      console.log(`-- ${"exec hold".padEnd(12)} not available (${e.message}): a program started after tapwire may make its first requests before it is probed`);
      console.log("    fix: a kernel with CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y");
    }
  }
  // Not a requirement: what TLS capture would probe, so a user sees why a program's HTTPS shows or not.
  await loadDecoder();
  const found = createTlsProbes({ log: () => {} });
  found.scanRunning();
  if (found.libraries.length === 0) console.log(`-- ${"tls".padEnd(12)} no TLS library in use now; libraries loaded later are found as they load`);
  for (const lib of found.libraries) console.log(`-- ${(lib.version.startsWith("Go") ? "go" : lib.version.startsWith("GnuTLS") ? "gnutls" : lib.version.startsWith("NSS") ? "nss" : "openssl").padEnd(12)} ${lib.version}: ${lib.path}${lib.where ? ` (${lib.where})` : ""} (${lib.functions.join(", ")})`);
  // Not a requirement either: the container engine, for container names and images.
  const containers = createContainerDirectory({ socket: dockerSocketPath() });
  await containers.start();
  containers.close();
  const n = containers.running().length;
  const engine = containers.engine.reachable
    ? `engine at ${containers.engine.socket}`
    : `no engine answers at ${containers.engine.socket} (${containers.engine.reason}): containers are labeled by id only`;
  const v2 = containers.cgroupMount ? `cgroup v2 at ${containers.cgroupMount}` : "no cgroup v2: --container filters flows in user space";
  console.log(`-- ${"containers".padEnd(12)} ${n} running; ${engine}; ${v2}`);
  console.log(failed ? `${failed} problem${failed > 1 ? "s" : ""} found` : "tapwire can run here");
  return failed ? 1 : 0;
}
