// What tapwire costs a Go program over TLS: a Go client making N GETs with fixed concurrency
// against a Go server (both crypto/tls, keep-alive, loopback), timed without tapwire, with
// `tapwire capture --json > /dev/null` (uprobes placed by reading the code), and with
// `--uprobe-placement entry` (every probe at its function's entry), alternating in one run.
// Prints each throughput ratio, the flows captured against the 2 per request expected, and
// uprobe hits per request. Figures, not pass/fail. Needs root and Go (bootstrap.sh --test).
//
//   bun bench/go-tls-overhead.ts [--requests 20000] [--concurrency 16] [--rounds 3]
import { parseArgs } from "node:util";
import { goBinary } from "../test/support/go-build.ts";
import { makeCert } from "../test/e2e/tls-setup.ts";
import { waitForListener } from "./support/listening.ts";

const ROOT = `${import.meta.dir}/..`;
const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { requests: { type: "string", default: "20000" }, concurrency: { type: "string", default: "16" }, rounds: { type: "string", default: "3" }, port: { type: "string", default: "18490" } },
});
const requests = Number(values.requests);
const port = Number(values.port);
const GO = goBinary("plain");
const cert = await makeCert();

/** Requests per second of one client run. */
async function load(): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn([GO, "load", `https://127.0.0.1:${port}/text`, cert.cert, String(requests), values.concurrency!], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  if (out.trim() !== `ok ${requests}`) throw new Error(`the Go client said ${out.trim()}`);
  return (requests * 1000) / (performance.now() - t0);
}

async function withTapwire(extra: string[]): Promise<{ rps: number; flows: number; hits: number }> {
  const proc = Bun.spawn([`${ROOT}/dist/tapwire`, "capture", "--json", "--port", String(port), ...extra], { stdout: "ignore", stderr: "pipe" });
  const reader = proc.stderr.getReader();
  let err = "";
  while (!/^ready/m.test(err)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`tapwire exited: ${err}`);
    err += new TextDecoder().decode(value);
  }
  const rps = await load();
  proc.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    err += new TextDecoder().decode(value);
  }
  await proc.exited;
  const summary = err.split("\n").find((l) => /^tapwire: \d+ flows/.test(l)) ?? err;
  return { rps, flows: Number(/tapwire: (\d+) flows/.exec(summary)?.[1]), hits: Number(/(\d+) uprobe hits/.exec(summary)?.[1] ?? 0) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const server = Bun.spawn([GO, "server", String(port), cert.cert, cert.key], { stdout: "ignore", stderr: "inherit" });
try {
  await waitForListener(port, "the Go server");
  await load(); // warm-up
  const base: number[] = [];
  const placed: number[] = [];
  const entry: number[] = [];
  for (let i = 0; i < Number(values.rounds); i++) {
    base.push(await load());
    const p = await withTapwire([]);
    placed.push(p.rps);
    const e = await withTapwire(["--uprobe-placement", "entry"]);
    entry.push(e.rps);
    console.log(
      `round ${i + 1}: without ${base.at(-1)!.toFixed(0)} req/s; placed ${p.rps.toFixed(0)} req/s, ${p.flows} flows of ${2 * requests}, ${(p.hits / requests).toFixed(2)} hits per request; ` +
        `at entries ${e.rps.toFixed(0)} req/s, ${e.flows} flows, ${(e.hits / requests).toFixed(2)} hits per request`,
    );
  }
  console.log(`go tls overhead: placed throughput ratio ${(median(placed) / median(base)).toFixed(3)}; at entries ${(median(entry) / median(base)).toFixed(3)} (median without: ${median(base).toFixed(0)} req/s)`);
} finally {
  server.kill();
}
