// A ring buffer too small for the load, as on a saturated host: events are lost, and what
// tapwire prints must still be exact. Every flow that has both sides pairs the request with
// its own response (nginx answers each path with the path itself), a flow that lost a side
// says so, and the summary's count of flows marked by the loss is what was printed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { freePort, fromB64, requireRoot, startNginx, startTapwire, type Peer } from "./harness.ts";

let nginx: Peer;
let port: number;
let work: string;

beforeAll(async () => {
  requireRoot();
  port = await freePort();
  work = mkdtempSync(`${tmpdir()}/tapwire-saturation-`);
  // 100 paths, each client of h2load asks for them in turn.
  writeFileSync(`${work}/urls`, Array.from({ length: 100 }, (_, i) => `http://127.0.0.1:${port}/path/${i}`).join("\n") + "\n");
});

afterAll(async () => {
  await nginx?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("events lost to a full ring: every request keeps its own response, every flow that lost a side says so", async () => {
  const t = await startTapwire(["--port", String(port), "--ring-buffer", "64k"]);
  nginx = await startNginx(work, port, `location / { default_type text/plain; return 200 "$uri"; }`);
  const requests = 40_000;
  const load = Bun.spawnSync(["h2load", "--h1", "-n", String(requests), "-c", "16", "-i", `${work}/urls`], { stdout: "pipe", stderr: "pipe" });
  expect(load.stdout.toString()).toContain(`${requests} succeeded`);
  await Bun.sleep(500);
  const summary = await t.stop();
  const flows = t.flows;

  // The ring did overflow (else this test tests nothing).
  const lostBytes = Number(/; (\d+) bytes lost, \d+ flows marked incomplete by it/.exec(summary)?.[1] ?? 0);
  expect(summary).toMatch(/ringbuf_events=\d+/);
  expect(lostBytes).toBeGreaterThan(0);

  let paired = 0;
  for (const f of flows) {
    if (f.request && f.response) {
      paired++;
      // nginx answered the request's own path: a mispaired flow shows another one.
      expect({ id: f.id, body: fromB64(f.response.body).toString() }).toEqual({ id: f.id, body: f.request.path });
    } else {
      // A flow with one side says why.
      expect(f.missing?.reason ?? `flow ${f.id} has one side and no reason`).toMatch(/lost|not seen|no response|incomplete/);
    }
  }
  expect(paired).toBeGreaterThan(1000);
  const marked = flows.filter((f) => Number(f.missing?.lostBytes ?? 0) > 0).length;
  expect(summary).toContain(`${lostBytes} bytes lost, ${marked} flows marked incomplete by it`);
  console.log(`saturation: ${flows.length} flows (${paired} with both sides, ${marked} marked by the loss) for ${requests} requests; ${summary}`);
}, 120_000);
