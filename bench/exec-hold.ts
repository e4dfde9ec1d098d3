// What holding a new program's exec until it is probed costs the program: exec-to-exit time
// of four kinds of program, without tapwire, with `tapwire capture` (holding, the default)
// and with `tapwire capture --no-hold`, alternating in one run:
//   known        /usr/bin/true, which tapwire has settled (the kernel lets it through)
//   new, no TLS  a fresh copy of /usr/bin/true each run (held: looked at, nothing to probe)
//   new Go       a fresh copy of a Go 1.19 HTTPS program each run, printing its layout (held:
//                analysed and probed)
//   new node     a fresh copy of node each run, `-e 0` (held: its own OpenSSL probed)
// Each figure is a median in ms; "added" is with (holding) minus without. tapwire's own -v
// lines give the time from the exec's hold to its probes attached (tapwire's share of it).
// Figures, not pass/fail. Needs root and Go (bootstrap.sh --test).
//
//   bun bench/exec-hold.ts [--runs 15] [--rounds 2]
import { parseArgs } from "node:util";
import { copyFileSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { goBinary } from "../test/support/go-build.ts";

const ROOT = `${import.meta.dir}/..`;
const { values } = parseArgs({ args: Bun.argv.slice(2), options: { runs: { type: "string", default: "15" }, rounds: { type: "string", default: "2" } } });
const runs = Number(values.runs);
const rounds = Number(values.rounds);
const NODE = realpathSync(Bun.which("node")!);
const GO = goBinary("plain");
const work = mkdtempSync(`${tmpdir()}/tapwire-bench-exec-`);
let copies = 0;

/** A copy nothing has run: made before the clock starts. */
function fresh(file: string): string {
  const path = `${work}/c${copies++}`;
  copyFileSync(file, path);
  Bun.spawnSync(["chmod", "755", path]);
  return path;
}

interface Kind {
  name: string;
  runs: number;
  command(): string[];
}
const kinds: Kind[] = [
  { name: "known", runs, command: () => ["/usr/bin/true"] },
  { name: "new, no TLS", runs, command: () => [fresh("/usr/bin/true")] },
  { name: "new Go", runs, command: () => [fresh(GO), "layout"] },
  { name: "new node", runs: Math.max(3, Math.round(runs / 3)), command: () => [fresh(NODE), "-e", "0"] },
];

async function execMs(cmd: string[]): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore" });
  if ((await p.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

async function measure(into: Map<string, number[]>) {
  for (const k of kinds) {
    for (let i = 0; i < k.runs; i++) {
      const cmd = k.command();
      into.get(k.name)!.push(await execMs(cmd));
      if (cmd[0]!.startsWith(work)) rmSync(cmd[0]!);
    }
  }
}

const without = new Map(kinds.map((k) => [k.name, [] as number[]]));
const withTapwire = new Map(kinds.map((k) => [k.name, [] as number[]]));
const noHold = new Map(kinds.map((k) => [k.name, [] as number[]]));
const probeMs: Record<string, number[]> = { Go: [], node: [], "no TLS": [] };

/** Measures with tapwire running (its extra arguments), and returns its stderr lines. */
async function withRunning(extra: string[], into: Map<string, number[]>): Promise<string[]> {
  const tapwire = Bun.spawn([`${ROOT}/dist/tapwire`, "capture", "--port", "1", "-v", ...extra], { stdout: "ignore", stderr: "pipe" });
  const lines: string[] = [];
  const reading = (async () => {
    let rest = "";
    for await (const chunk of tapwire.stderr) {
      rest += new TextDecoder().decode(chunk);
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  while (!lines.some((l) => l.startsWith("ready"))) {
    if (tapwire.exitCode !== null) throw new Error(`tapwire exited: ${lines.join("\n")}`);
    await Bun.sleep(20);
  }
  await measure(into);
  tapwire.kill("SIGINT");
  await tapwire.exited;
  await reading;
  console.log(lines.findLast((l) => l.startsWith("tapwire: ")));
  return lines;
}

// Warm the page cache and the JIT of this process: the first copies are slow either way.
await measure(new Map(kinds.map((k) => [k.name, [] as number[]])));
for (let round = 0; round < rounds; round++) {
  await measure(without);
  for (const l of await withRunning([], withTapwire)) {
    const m = /^hold: (\S+) \(pid \d+\): (probed (Go|OpenSSL)|nothing to probe).* in ([\d.]+) ms$/.exec(l);
    if (!m || !m[1]!.startsWith(work)) continue;
    probeMs[m[3] === "Go" ? "Go" : m[3] === "OpenSSL" ? "node" : "no TLS"]!.push(Number(m[4]));
  }
  await withRunning(["--no-hold"], noHold);
}
rmSync(work, { recursive: true, force: true });

console.log(`\nexec to exit, median ms (${rounds} rounds, alternating):`);
console.log(`${"program".padEnd(14)}${"without".padStart(10)}${"holding".padStart(10)}${"added".padStart(10)}${"--no-hold".padStart(11)}`);
for (const k of kinds) {
  const a = median(without.get(k.name)!);
  const b = median(withTapwire.get(k.name)!);
  const c = median(noHold.get(k.name)!);
  console.log(`${k.name.padEnd(14)}${a.toFixed(2).padStart(10)}${b.toFixed(2).padStart(10)}${(b - a).toFixed(2).padStart(10)}${c.toFixed(2).padStart(11)}`);
}
console.log("\nheld exec to probes attached (tapwire's -v), median ms:");
for (const [what, xs] of Object.entries(probeMs)) console.log(`  ${what.padEnd(8)} ${median(xs).toFixed(2)} (${xs.length} execs)`);
