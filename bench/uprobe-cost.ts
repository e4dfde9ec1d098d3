// What one uprobe hit costs on this host, by the instruction it sits on: the x86-64 kernel
// single-steps most instructions out of line (two traps), emulates a few (push, call, jmp,
// jcc, nop: one trap), and on Linux 6.16+ turns a uprobe on a 5-byte nop into a call to its
// trampoline (no trap). A uretprobe adds its return trampoline to an entry probe. Measured
// with tapwire's own loader and programs (tw_ssl_enter at entries, tw_ssl_exit as the
// uretprobe, tw_go_ret on a RET), on functions of bench/support/uprobe-targets.c that start
// with each class, against the same function unprobed in the same round. Figures in µs per
// hit (median over rounds), not pass/fail; the table in the README comes from here.
// x86-64 only; needs root and cc.
//
//   bun bench/uprobe-cost.ts [--calls 200000] [--rounds 3]
import { parseArgs } from "node:util";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { loadProbes, type UprobeSpec } from "../src/bpf/loader.ts";
import { readBpfObject } from "../src/bpf/object.ts";
import { openElf } from "../src/elfkit/elf.ts";
import * as L from "../src/bpf/gen/layout.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { calls: { type: "string", default: "200000" }, rounds: { type: "string", default: "3" } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const work = mkdtempSync(`${tmpdir()}/tapwire-bench-uprobe-`);
const exe = `${work}/targets`;
const cc = Bun.spawnSync(["cc", "-O2", "-rdynamic", "-o", exe, `${import.meta.dir}/support/uprobe-targets.c`], { stderr: "pipe" });
if (cc.exitCode !== 0) throw new Error(`cc failed: ${cc.stderr}`);

const CLASSES = ["sub", "mov", "cmp", "push", "call", "jmp", "jcc", "nop", "nop5", "ret"] as const;
type Class = (typeof CLASSES)[number];
const elf = openElf(exe);
const syms = elf.symbols(new Set(CLASSES.map((c) => `tw_at_${c}`)));
const offsetOf = (c: Class) => syms.get(`tw_at_${c}`)!.fileOffset;
elf.close();

interface Case {
  name: string;
  /** The function called, and what is attached to it. */
  fn: Class;
  probes: (Omit<UprobeSpec, "path" | "targets"> & { cookie: number })[];
  /** The case whose cost this one adds to (the uretprobe's). */
  on?: string;
}
const entry = (fn: Class) => ({ program: "tw_ssl_enter", retprobe: false, cookie: 0xfffe | (L.TW_SSL_READ << 16) });
const cases: Case[] = [
  { name: "sub rsp (single-stepped)", fn: "sub", probes: [entry("sub")] },
  { name: "mov reg,reg (single-stepped)", fn: "mov", probes: [entry("mov")] },
  { name: "cmp mem,rsp (Go stack check; single-stepped)", fn: "cmp", probes: [entry("cmp")] },
  { name: "push (emulated)", fn: "push", probes: [entry("push")] },
  { name: "call rel32 (emulated)", fn: "call", probes: [entry("call")] },
  { name: "jmp rel8 (emulated)", fn: "jmp", probes: [entry("jmp")] },
  { name: "jcc rel8 (emulated)", fn: "jcc", probes: [entry("jcc")] },
  { name: "nop (emulated)", fn: "nop", probes: [entry("nop")] },
  { name: "nop5 (optimised where the kernel can)", fn: "nop5", probes: [entry("nop5")] },
  { name: "ret (a Go RET probe, tw_go_ret)", fn: "ret", probes: [{ program: "tw_go_ret", retprobe: false, cookie: 0xfffe | (L.TW_GO_RET << 16) }] },
  {
    name: "uretprobe on top of an entry on push",
    fn: "push",
    probes: [entry("push"), { program: "tw_ssl_exit", retprobe: true, cookie: 0xfffe | (L.TW_SSL_READ << 16) }],
    on: "push (emulated)",
  },
];

async function nsPerCall(fn: Class): Promise<number> {
  const p = Bun.spawn([exe, fn, String(calls)], { stdout: "pipe" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`${exe} ${fn} failed`);
  return Number(out);
}

const probes = loadProbes({
  object: await readBpfObject(),
  ringBytes: 1 << 16,
  selfPid: process.pid,
  programFilter: (name) => name === "tw_ssl_enter" || name === "tw_ssl_exit" || name === "tw_go_ret",
});
const added = new Map<string, number[]>(cases.map((c) => [c.name, []]));
try {
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) {
      const bare = await nsPerCall(c.fn);
      const links = c.probes.map((p) => probes.attachUprobe({ program: p.program, retprobe: p.retprobe, path: exe, targets: [{ offset: offsetOf(c.fn), cookie: p.cookie }] }));
      let probed: number;
      try {
        probed = await nsPerCall(c.fn);
      } finally {
        for (const l of links) l.detach();
      }
      added.get(c.name)!.push((probed - bare) / 1000);
    }
  }
} finally {
  await probes.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kernel = (await Bun.file("/proc/sys/kernel/osrelease").text()).trim();
console.log(`uprobe cost per hit on Linux ${kernel} (${calls} calls, median of ${rounds} rounds; µs added to a call)`);
console.log("| probe on | µs per hit |");
console.log("|---|---|");
for (const c of cases) {
  const us = median(added.get(c.name)!);
  const own = c.on ? us - median(added.get(c.on)!) : us;
  console.log(`| ${c.name} | ${c.on ? "+" : ""}${own.toFixed(2)} |`);
}
