// The same TLS traffic under `--uprobe-placement entry` (every probe at its function's entry)
// and under the places read from the code (the default): the flows must be the same, field by
// field. Each run starts tapwire first, then servers and clients (Go ones from fresh copies):
// curl and Python (SSL_read/SSL_write and their _ex forms), nginx, and Go client and server
// (Write and Read past the stack check, with handlers deep enough to grow their stacks).
import { beforeAll, describe, expect, test } from "bun:test";
import { PEERS, PYTHON, freePort, freshCopy, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type Peer } from "./harness.ts";
import { makeCert, startNginxTls, type Cert } from "./tls-setup.ts";
import { goBinary } from "../support/go-build.ts";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const CURL = "/usr/bin/curl";
let cert: Cert;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  goBinary("plain");
}, 300_000);

/** A flow without what differs from run to run (pids, times, ids; ports named by their role). */
function comparable(f: JsonFlow, ports: number[]): string {
  const drop = new Set(["id", "pid", "startTime", "endTime", "exe"]);
  const clean = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(clean);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (drop.has(k)) continue;
        if (k === "port") {
          out[k] = ports.includes(x as number) ? "PORT" : "CLIENT-PORT";
          continue;
        }
        // Date says when; nginx's Last-Modified and ETag, when its files were written.
        if (k === "value" && /^(date|last-modified|etag)$/i.test((v as { name?: string }).name ?? "")) continue;
        out[k] = clean(x);
      }
      return out;
    }
    if (typeof v === "string") return ports.reduce((s, p) => s.replaceAll(String(p), "PORT"), v);
    return v;
  };
  return JSON.stringify(clean(f));
}

/** One run of all the traffic under `placement`; the flows, comparable and sorted. */
async function trafficUnder(placement: "entry" | "chosen"): Promise<{ flows: string[]; summary: string }> {
  const pyPort = await freePort();
  const goPort = await freePort();
  const nginxPort = await freePort();
  const tapwire = await startTapwire(["--uprobe-placement", placement, "--port", String(pyPort), "--port", String(goPort), "--port", String(nginxPort)]);
  const dir = mkdtempSync(`${tmpdir()}/tapwire-placement-`);
  const index = "static over TLS\n".repeat(300);
  const big = new Uint8Array(256 * 1024).map((_, i) => (i * 13) % 256);
  writeFileSync(`${dir}/big.bin`, big);
  const servers: Peer[] = [];
  let expected = 0;
  let summary: string;
  try {
    const py = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(pyPort), cert.cert, cert.key], "127.0.0.1", pyPort);
    servers.push(py);
    const goServer = freshCopy(goBinary("plain"), "gosrv");
    servers.push(await startServer([goServer, "server", String(goPort), cert.cert, cert.key], "127.0.0.1", goPort));
    servers.push(await startNginxTls(nginxPort, cert, { "index.html": index, "big.bin": big }));
    const curl = async (...args: string[]) => {
      const r = await run([CURL, "-sS", "--cacert", cert.cert, "-o", "/dev/null", ...args]);
      expect(r.exitCode).toBe(0);
      expected += 2;
    };
    await curl(`https://127.0.0.1:${pyPort}/text?d=1`);
    await curl("--data-binary", `@${dir}/big.bin`, "-H", "Content-Type: application/octet-stream", `https://127.0.0.1:${pyPort}/echo?d=2`);
    const pyClient = startPeer([PYTHON, `${PEERS}/https_client.py`, String(pyPort), cert.cert, "5000"]);
    await waitFor("two responses", () => pyClient.lines.length >= 3);
    await pyClient.stop();
    expected += 4;
    await curl(`https://127.0.0.1:${nginxPort}/index.html`);
    await curl(`https://127.0.0.1:${nginxPort}/big.bin`);
    const goClient = freshCopy(goBinary("plain"), "gocli");
    const r1 = await run([goClient, "client", `https://127.0.0.1:${goPort}/text?d=3`, cert.cert, "3"]);
    expect(new TextDecoder().decode(r1.stdout)).toBe("200 14\n".repeat(3));
    expected += 6;
    const r2 = await run([goClient, "post", `https://127.0.0.1:${goPort}/echo?d=4`, cert.cert, "posted from go ".repeat(500)]);
    expect(r2.exitCode).toBe(0);
    expected += 2;
    // Handlers that grow their stacks: the runtime restarts functions at their entry.
    const r3 = await run([goClient, "load", `https://127.0.0.1:${goPort}/deep?n=40`, cert.cert, "40", "4"]);
    expect(new TextDecoder().decode(r3.stdout)).toBe("ok 40\n");
    expected += 80;
    await tapwire.waitForFlows(() => true, expected, 20_000);
    await Bun.sleep(300); // nothing more arrives
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
    summary = await tapwire.stop();
  }
  const ports = [pyPort, goPort, nginxPort];
  return { flows: tapwire.flows.map((f) => comparable(f, ports)).sort(), summary };
}

describe("uprobes placed by reading the code see what entry probes see", () => {
  test("curl, Python, nginx and Go over TLS: the same flows, field by field, under both placements", async () => {
    const atEntry = await trafficUnder("entry");
    const placed = await trafficUnder("chosen");
    expect(atEntry.flows.length).toBe(2 + 2 + 4 + 2 + 2 + 6 + 2 + 80);
    for (const f of atEntry.flows) {
      const flow = JSON.parse(f);
      expect(flow.connection.tls).toBe(true);
      expect(flow.missing).toBeUndefined();
    }
    expect(placed.flows).toEqual(atEntry.flows);
    // The probes ran fewer times: Go's Write has no RET probes past its stack check.
    const hits = (s: string) => Number(/(\d+) uprobe hits/.exec(s)?.[1]);
    expect(hits(placed.summary)).toBeGreaterThan(0);
    expect(hits(placed.summary)).toBeLessThan(hits(atEntry.summary));
  }, 120_000);
});
