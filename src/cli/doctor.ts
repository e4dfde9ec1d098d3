// `tapwire doctor`: every requirement, checked, with the fix for what is missing; then a
// real load and attach of the probes, which is the check that settles it.
import { runChecks } from "../bpf/system.ts";
import { loadProbes } from "../bpf/loader.ts";
import { readBpfObject } from "../bpf/object.ts";

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
      probes.close();
    } catch (e) {
      failed++;
      console.log(`${mark(false)} ${"probes".padEnd(12)} ${(e as Error).message}`);
    }
  }
  console.log(failed ? `${failed} problem${failed > 1 ? "s" : ""} found` : "tapwire can run here");
  return failed ? 1 : 0;
}
