// Holding a new program's exec until it is probed, and the rules that make holding safe for
// the host: a file tapwire knows is never held again (not even woken for), a hold that runs
// past its deadline lets the program go and is counted, and nothing stays held when tapwire
// is killed or stopped. Every wait in here is bounded.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";
import { TAPWIRE, freePort, freshCopy, requireRoot, startTapwire, waitFor, type Tapwire } from "./harness.ts";
import { goBinary } from "../support/go-build.ts";


beforeAll(() => {
  requireRoot();
  goBinary("plain");
}, 300_000);

/** Runs `cmd` and says how long it took, in ms (its own start included). */
async function timed(cmd: string[]): Promise<{ ms: number; exitCode: number; stdout: string }> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const stdout = await new Response(p.stdout).text();
  const exitCode = await p.exited;
  return { ms: performance.now() - t0, exitCode, stdout };
}

/** The exec holders left running for a tapwire pid (there must be none once it is gone). */
function holdersOf(tapwirePid: number): number[] {
  const found: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, "latin1").split("\0");
      if (argv.includes("__exec-holder") && argv.includes(String(tapwirePid))) found.push(Number(e));
    } catch {}
  }
  return found;
}

const holdLines = (t: Tapwire, path: string) => t.stderr.filter((l) => l.startsWith(`hold: ${path} `));

describe("holding", () => {
  test("a known binary executed 200 times is never held again: one hold, then the kernel lets it through", async () => {
    const api = await freePort();
    const tapwire = await startTapwire(["--listen", `127.0.0.1:${api}`, "--port", "1", "-v"], { command: "serve" });
    try {
      const client = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${api}`, httpVersion: "1.1" }));
      const bin = freshCopy("/usr/bin/true", "known");
      expect((await timed([bin])).exitCode).toBe(0);
      expect(holdLines(tapwire, bin)).toEqual([expect.stringMatching(/: nothing to probe in [\d.]+ ms$/)]);
      const before = await client.getStats({});
      const linesBefore = tapwire.stderr.filter((l) => l.startsWith("hold: ")).length;
      for (let i = 0; i < 200; i++) expect((await timed([bin])).exitCode).toBe(0);
      await Bun.sleep(200);
      const after = await client.getStats({});
      // Still the one hold of its first run.
      expect(holdLines(tapwire, bin)).toHaveLength(1);
      // Whatever else the host ran meanwhile is accounted for: every hold is a line of its own.
      const others = tapwire.stderr.filter((l) => l.startsWith("hold: ")).length - linesBefore;
      expect(Number(after.execHolds - before.execHolds)).toBe(others);
      expect(others).toBeLessThan(5);
      expect(after.execHoldTimeouts).toBe(0n);
    } finally {
      await tapwire.stop();
    }
  }, 60_000);

  test("a hold that cannot finish by the deadline lets the program go, and is counted and said", async () => {
    const api = await freePort();
    // 1 ms: a Go binary's analysis takes longer.
    const tapwire = await startTapwire(["--listen", `127.0.0.1:${api}`, "--port", "1", "--hold-timeout", "1", "-v"], { command: "serve" });
    try {
      const client = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${api}`, httpVersion: "1.1" }));
      const bin = freshCopy(goBinary("plain"), "slowgo");
      const r = await timed([bin, "layout"]);
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveProperty("tlsConnConn");
      const stats = await waitFor("the deadline counted", async () => {
        const s = await client.getStats({});
        return s.execHoldTimeouts >= 1n && s;
      });
      expect(stats.execHolds).toBeGreaterThanOrEqual(stats.execHoldTimeouts);
      // It was probed all the same, after it had gone on.
      await waitFor("the late probe", () => tapwire.stderr.some((l) => l.startsWith("tls: probing Go") && l.includes(bin)));
      const summary = await tapwire.stop();
      expect(summary).toMatch(/execs? held \(longest [\d.]+ ms\), [1-9]\d* let go unprobed at the deadline$/);
    } finally {
      if (tapwire.proc.exitCode === null) await tapwire.stop();
    }
  }, 60_000);

  test("tapwire stopped (SIGSTOP): a new program still runs, let go at the deadline", async () => {
    const tapwire = await startTapwire(["--port", "1", "--hold-timeout", "300"]);
    try {
      const bin = freshCopy("/usr/bin/true", "while-stopped");
      tapwire.proc.kill("SIGSTOP");
      const r = await timed([bin]);
      tapwire.proc.kill("SIGCONT");
      expect(r.exitCode).toBe(0);
      // It waited for the deadline (300 ms), not for tapwire, and not for ever.
      expect(r.ms).toBeGreaterThanOrEqual(290);
      expect(r.ms).toBeLessThan(1500);
      const summary = await tapwire.stop();
      expect(summary).toMatch(/, 1 let go unprobed at the deadline$/);
    } finally {
      if (tapwire.proc.exitCode === null) await tapwire.stop();
    }
  }, 30_000);

  test("tapwire SIGKILLed while it holds an exec: the program goes on at once, and no holder is left", async () => {
    const tapwire = await startTapwire(["--port", "1", "--hold-timeout", "8000"]);
    const pid = tapwire.proc.pid;
    expect(holdersOf(pid)).toHaveLength(1);
    const bin = freshCopy("/usr/bin/true", "while-killed");
    // The shell is settled first: a spawn from here waits for the exec it makes.
    expect((await timed(["/bin/sh", "-c", "true"])).exitCode).toBe(0);
    // Stopped, tapwire cannot answer: the exec waits (up to 8 s). A shell execs it, so the
    // wait is the shell's (a spawn from here waits for the exec it makes).
    tapwire.proc.kill("SIGSTOP");
    const t0 = performance.now();
    const p = Bun.spawn(["/bin/sh", "-c", `exec ${bin}`], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(500);
    expect(p.exitCode).toBeNull(); // held
    tapwire.proc.kill("SIGKILL");
    const killedAt = performance.now();
    const code = await Promise.race([p.exited, Bun.sleep(3000).then(() => "still held")]);
    expect(code).toBe(0);
    expect(performance.now() - killedAt).toBeLessThan(1000);
    expect(performance.now() - t0).toBeLessThan(3000);
    await waitFor("the holder to exit", () => holdersOf(pid).length === 0, 3000);
  }, 30_000);

  test("--no-hold: nothing is held, and -v says what that means", async () => {
    const tapwire = await startTapwire(["--port", "1", "--no-hold", "-v"]);
    try {
      expect(holdersOf(tapwire.proc.pid)).toEqual([]);
      expect(tapwire.stderr.find((l) => l.startsWith("ready"))).toContain("new programs not held");
      expect(tapwire.stderr.some((l) => l.includes("--no-hold: a program started from now on runs before tapwire has probed it"))).toBe(true);
      const bin = freshCopy("/usr/bin/true", "not-held");
      expect((await timed([bin])).exitCode).toBe(0);
      const summary = await tapwire.stop();
      expect(summary).not.toContain("held");
      expect(holdLines(tapwire, bin)).toEqual([]);
    } finally {
      if (tapwire.proc.exitCode === null) await tapwire.stop();
    }
  }, 30_000);

  test("--hold-timeout out of range is a usage error", async () => {
    for (const bad of ["0", "10001", "soon"]) {
      const p = Bun.spawn([TAPWIRE, "--hold-timeout", bad], { stdout: "pipe", stderr: "pipe" });
      const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      expect([code, err.trim().split("\n").length, err]).toEqual([2, 1, expect.stringContaining("--hold-timeout")]);
    }
  });
});
