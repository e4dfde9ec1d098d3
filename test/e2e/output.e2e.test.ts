// Output as users pipe it: a reader that stops reading costs whole flows (counted), never
// memory or a hang; a reader that goes away (| head) ends tapwire quietly with exit 0; a
// WatchFlows subscriber that keeps up gets a burst whole.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";
import { TAPWIRE, freePort, requireRoot, startNginx, startTapwire, waitFor, type Peer } from "./harness.ts";

let nginx: Peer;
let port: number;
let work: string;

beforeAll(async () => {
  requireRoot();
  port = await freePort();
  work = mkdtempSync(`${tmpdir()}/tapwire-output-`);
  mkdirSync(`${work}/www`);
  writeFileSync(`${work}/www/index.html`, "<p>" + "tapwire output test. ".repeat(40) + "</p>\n");
  nginx = await startNginx(work, port, `root ${work}/www;`);
});

afterAll(async () => {
  await nginx?.stop();
  rmSync(work, { recursive: true, force: true });
});

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))![1]);

async function load(requests: number): Promise<void> {
  const p = Bun.spawn(["h2load", "--h1", "-n", String(requests), "-c", "8", `http://127.0.0.1:${port}/index.html`], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  expect(await p.exited).toBe(0);
  expect(out).toContain(`requests: ${requests} total, ${requests} started, ${requests} done, ${requests} succeeded`);
}

describe("stdout's reader", () => {
  test("stops reading: 20,000 requests later memory is within the budget, whole flows dropped and counted; SIGINT exits 0 within 2 s", async () => {
    const fifo = `${work}/stalled`;
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // A reader that opens the pipe and never reads from it.
    const reader = Bun.spawn(["sh", "-c", `exec sleep 120 < ${fifo}`]);
    const budget = 8 << 20;
    const t = Bun.spawn(["sh", "-c", `exec ${TAPWIRE} --json --port ${port} --output-buffer ${budget} > ${fifo}`], { stderr: "pipe" });
    let err = "";
    const reading = (async () => {
      for await (const c of t.stderr) err += new TextDecoder().decode(c);
    })();
    try {
      await waitFor("ready", () => {
        if (t.exitCode !== null) throw new Error(`tapwire exited: ${err}`);
        return err.includes("\nready") || err.startsWith("ready");
      }, 30000);
      const before = rssKiB(t.pid);
      await load(20_000);
      await Bun.sleep(500);
      const after = rssKiB(t.pid);
      // What is queued stays within the budget; the rest of the growth is garbage the
      // collector has not taken back yet (flows are made and printed all the while).
      expect(after - before).toBeLessThan(budget / 1024 + 320 * 1024);
      const t0 = performance.now();
      t.kill("SIGINT");
      const code = await Promise.race([t.exited, Bun.sleep(2000).then(() => "still running")]);
      expect(code).toBe(0);
      expect(performance.now() - t0).toBeLessThan(2000);
      await reading;
      const summary = err.split("\n").find((l) => /^tapwire: \d+ flows/.test(l))!;
      const flows = Number(/^tapwire: (\d+) flows/.exec(summary)![1]);
      const dropped = Number(/output=(\d+)/.exec(summary)?.[1] ?? 0);
      // (At full speed the kernel's ring may overflow too: those drops are counted apart.)
      expect(flows).toBeGreaterThan(10_000);
      expect(dropped).toBeGreaterThan(flows / 2); // most never fit: the reader took nothing
      expect(dropped).toBeLessThanOrEqual(flows);
    } finally {
      if (t.exitCode === null) t.kill("SIGKILL");
      reader.kill();
    }
  }, 120_000);

  for (const [flags, begins] of [
    ["--json", '{"id":"'],
    ["--json --live", '{"flowId":"'],
  ] as const) {
    test(`goes away (${flags} | head -c 100): tapwire ends by itself with exit 0, and says nothing unusual`, async () => {
      const err = `${work}/head-${flags.replaceAll(" ", "")}.err`; // each run its own: "ready" is waited for in it
      const p = Bun.spawn(["bash", "-c", `${TAPWIRE} ${flags} --port ${port} 2>${err} | head -c 100; echo "exit \${PIPESTATUS[0]}"`], { stdout: "pipe" });
      const outText = new Response(p.stdout).text();
      await waitFor("ready", () => {
        try {
          return readFileSync(err, "latin1").includes("ready");
        } catch {
          return false;
        }
      }, 30000);
      await load(200);
      const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => "still running")]);
      expect(code).toBe(0);
      const out = await outText;
      expect(out.slice(0, 100)).toStartWith(begins);
      expect(out.slice(100)).toBe("exit 0\n");
      const lines = readFileSync(err, "latin1").trim().split("\n");
      // The usual lines only: the engine's, ready, and the summary.
      for (const l of lines) expect(l).toMatch(/^(ready: |tapwire: no container engine answers|tapwire: \d+ flows from \d+ events)/);
      expect(lines.at(-1)).toMatch(/^tapwire: \d+ flows from \d+ events/);
    }, 60_000);
  }
});

describe("a WatchFlows subscriber that keeps up", () => {
  test("gets a burst of 8,000 flows whole, though capture hands them over thousands at a time", async () => {
    const api = await freePort();
    const tapwire = await startTapwire(["--listen", `127.0.0.1:${api}`, "--port", String(port)], { command: "serve" });
    const client = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${api}`, httpVersion: "2" }));
    const abort = new AbortController();
    let flows = 0;
    let dropped = 0n;
    const reading = (async () => {
      try {
        for await (const r of client.watchFlows({}, { signal: abort.signal, timeoutMs: 0 })) {
          if (r.event.case === "flow") flows++;
          else if (r.event.case === "dropped") dropped += r.event.value.count;
        }
      } catch {}
    })();
    try {
      await waitFor("the subscription", async () => (await client.getStats({})).subscribers === 1);
      await load(4_000); // h2load's and nginx's side of each: 8,000 flows in well under a second
      const stats = await waitFor("every flow made", async () => {
        const s = await client.getStats({});
        return s.flows >= 8_000n && BigInt(flows) + dropped >= s.flows ? s : undefined;
      }, 20_000);
      expect({ flows: BigInt(flows), dropped, output: stats.drops.output ?? 0n }).toEqual({ flows: stats.flows, dropped: 0n, output: 0n });
    } finally {
      abort.abort();
      await reading;
      await tapwire.stop();
    }
  }, 60_000);
});
