// HTTP/2 replay benchmark: the user-side pipeline (decode -> connections -> frames -> HPACK ->
// streams -> flows) fed kernel records holding real HTTP/2 bytes. The bytes are recorded
// once from h2load against nghttpd over loopback, through a relay that keeps what each side
// wrote; the recording is then replayed as many connections, interleaved as a busy host's
// ring would hold them. Prints streams (flows) per second on one core. Target: 250,000.
//
//   bun bench/http2-replay.ts [--streams N] [--rounds N]
import { parseArgs } from "node:util";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createPipeline } from "../src/flows/pipeline.ts";
import { createProcessRegistry } from "../src/procs/process-registry.ts";
import { connectionWriter } from "../test/support/records.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { streams: { type: "string", default: "200000" }, rounds: { type: "string", default: "5" } },
});
const totalStreams = Number(values.streams);
const rounds = Number(values.rounds);
const STREAMS_PER_CONNECTION = 100;

interface Chunk {
  toServer: boolean;
  bytes: Uint8Array;
}

/** h2load -> relay -> nghttpd on loopback; the relay keeps each side's writes in order. */
async function record(): Promise<Chunk[]> {
  const root = mkdtempSync(`${tmpdir()}/tapwire-h2bench-`);
  writeFileSync(`${root}/index.html`, "<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><p>It works.</p></body></html>\n");
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = Bun.spawn(["nghttpd", "--no-tls", "-d", root, "--address=127.0.0.1", String(port)], { stdout: "ignore", stderr: "ignore" });
  await Bun.sleep(300);
  const chunks: Chunk[] = [];
  const relay = await Bun.listen<{ upstream?: ReturnType<typeof Bun.connect> extends Promise<infer S> ? S : never; pending: Uint8Array[] }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(client) {
        client.data = { pending: [] };
        client.data.upstream = await Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            data(_s, bytes) {
              chunks.push({ toServer: false, bytes: new Uint8Array(bytes) });
              client.write(bytes);
            },
            close() {
              client.end();
            },
          },
        });
        for (const p of client.data.pending.splice(0)) client.data.upstream.write(p);
      },
      data(client, bytes) {
        chunks.push({ toServer: true, bytes: new Uint8Array(bytes) });
        if (client.data.upstream) client.data.upstream.write(bytes);
        else client.data.pending.push(new Uint8Array(bytes));
      },
      close(client) {
        client.data.upstream?.end();
      },
    },
  });
  const load = Bun.spawn(["h2load", "-n", String(STREAMS_PER_CONNECTION), "-c", "1", "-m", "10", `http://127.0.0.1:${relay.port}/index.html`], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(load.stdout).text();
  await load.exited;
  relay.stop(true);
  server.kill();
  if (!out.includes(`${STREAMS_PER_CONNECTION} succeeded`)) throw new Error(`h2load did not succeed:\n${out}`);
  return chunks;
}

const chunks = await record();
const nConns = Math.ceil(totalStreams / STREAMS_PER_CONNECTION);
// Connections interleaved chunk by chunk, in record order within each.
const writers = Array.from({ length: nConns }, (_, i) =>
  connectionWriter({ connId: i + 1, pid: 1000, fd: 10 + i, comm: "nghttpd", origin: 1, connClass: 2, local: ["127.0.0.1", 8080], remote: ["127.0.0.1", 30000 + (i % 30000)] }),
);
const records: Uint8Array[] = writers.map((w) => w.open());
let payloadBytes = 0;
for (const c of chunks) {
  for (const w of writers) records.push(w.data(c.toServer ? 1 : 0, c.bytes));
  payloadBytes += c.bytes.length * nConns;
}
for (const w of writers) records.push(w.close());
const total = records.reduce((n, r) => n + r.length, 0);
const buf = new Uint8Array(total);
const offsets: number[] = [];
let at = 0;
for (const r of records) {
  buf.set(r, at);
  offsets.push(at);
  at += r.length;
}
const view = new DataView(buf.buffer);

console.log(`recorded: ${chunks.length} writes, ${STREAMS_PER_CONNECTION} streams over one h2c connection; replayed as ${nConns} connections (${(total / 1e6).toFixed(1)} MB of records)`);
const rates: number[] = [];
for (let round = 0; round < rounds; round++) {
  let flows = 0;
  const pipeline = createPipeline({ onFlow: () => flows++, clockOffsetNs: 0, maxBody: 1 << 20, processes: createProcessRegistry("/nonexistent") });
  const t0 = performance.now();
  for (let i = 0; i < offsets.length; i++) {
    pipeline.record(buf, view, offsets[i]!, records[i]!.length);
    if ((i & 1023) === 1023) pipeline.endBatch();
  }
  pipeline.endBatch();
  const ms = performance.now() - t0;
  if (flows !== nConns * STREAMS_PER_CONNECTION) throw new Error(`expected ${nConns * STREAMS_PER_CONNECTION} flows, got ${flows}`);
  rates.push(flows / (ms / 1000));
  console.log(`round ${round + 1}: ${flows} streams in ${ms.toFixed(0)} ms: ${Math.round(flows / (ms / 1000)).toLocaleString("en")} streams/s, ${((payloadBytes / 1e6) / (ms / 1000)).toFixed(1)} MB/s of HTTP/2`);
}
rates.sort((a, b) => a - b);
console.log(`median: ${Math.round(rates[rates.length >> 1]!).toLocaleString("en")} streams/s (target 250,000)`);
