// Replay benchmark: the user-side pipeline (decode -> connections -> HTTP/1 parsing ->
// flows) fed kernel records in their exact binary layout, as the ring buffer holds them.
// Prints flows/s and MB/s; optionally also with --json's whole output path: the Flow JSON
// (src/sinks/flow-json.ts) encoded and written to /dev/null by the stdout writer, as
// `tapwire --json > /dev/null` does (the text must be written out to be paid for in full).
// Figures, not pass/fail.
//
//   bun bench/replay.ts [--flows N] [--connections N] [--json]
import { parseArgs } from "node:util";
import { openSync } from "node:fs";
import { createJsonLinesSink } from "../src/sinks/json-lines.ts";
import { createOutputWriter } from "../src/sinks/output.ts";
import { createPipeline } from "../src/flows/pipeline.ts";
import { createProcessRegistry } from "../src/procs/process-registry.ts";
import { connectionWriter } from "../test/support/records.ts";
import { layOutRecords } from "./support/ring-layout.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    flows: { type: "string", default: "200000" },
    connections: { type: "string", default: "100" },
    json: { type: "boolean", default: false },
    rounds: { type: "string", default: "5" },
  },
});
const totalFlows = Number(values.flows);
const nConns = Number(values.connections);
const rounds = Number(values.rounds);

// A small keep-alive exchange as curl and nginx write it.
const request =
  "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
const body = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><p>It works.</p></body></html>\n";
const response =
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 12:00:00 GMT\r\nContent-Type: text/html\r\n" +
  `Content-Length: ${body.length}\r\nLast-Modified: Sun, 22 Nov 2026 11:00:00 GMT\r\nConnection: keep-alive\r\n` +
  'ETag: "6560a1b0-64"\r\nAccept-Ranges: bytes\r\n\r\n' + body;

/** One contiguous buffer of records, interleaving connections round-robin, as a busy server's ring would. */
function buildRecording(): { buf: Uint8Array; offsets: number[]; lengths: number[]; payloadBytes: number } {
  const writers = Array.from({ length: nConns }, (_, i) =>
    connectionWriter({ connId: i + 1, pid: 1000, fd: 10 + i, comm: "nginx", origin: 1, local: ["127.0.0.1", 8080], remote: ["127.0.0.1", 30000 + i] }),
  );
  const records: Uint8Array[] = writers.map((w) => w.open());
  let payloadBytes = 0;
  for (let n = 0; n < totalFlows; n++) {
    const w = writers[n % nConns];
    records.push(w.data(1, request), w.data(0, response));
    payloadBytes += request.length + response.length;
  }
  for (const w of writers) records.push(w.close());
  const { buf, offsets, lengths } = layOutRecords(records);
  return { buf, offsets, lengths, payloadBytes };
}

const rec = buildRecording();
const view = new DataView(rec.buf.buffer);

const devNull = openSync("/dev/null", "w");

function runOnce(withJson: boolean): { seconds: number; flows: number } {
  let flows = 0;
  const out = createOutputWriter({ fd: devNull });
  const sink = createJsonLinesSink(out);
  const pipeline = createPipeline({
    onFlow: withJson
      ? (f) => {
          sink.flow(f);
          flows++;
        }
      : () => flows++,
    clockOffsetNs: 0,
    maxBody: 1 << 20,
    processes: createProcessRegistry("/nonexistent"),
  });
  const t0 = performance.now();
  const { offsets, lengths, buf } = rec;
  for (let i = 0; i < offsets.length; i++) {
    pipeline.record(buf, view, offsets[i], lengths[i]);
    if ((i & 4095) === 4095) {
      pipeline.endBatch();
      if (withJson) void sink.flush();
    }
  }
  pipeline.endBatch();
  if (withJson) void sink.flush();
  const seconds = (performance.now() - t0) / 1000;
  if (flows !== totalFlows) throw new Error(`expected ${totalFlows} flows, got ${flows}`);
  if (out.dropped) throw new Error(`${out.dropped} flows dropped on the way to /dev/null`);
  return { seconds, flows };
}

const mb = rec.payloadBytes / 1e6;
console.log(`replay: ${totalFlows} keep-alive HTTP/1.1 flows over ${nConns} connections, ${mb.toFixed(1)} MB of payload, ${rec.offsets.length} records`);
for (const withJson of values.json ? [false, true] : [false]) {
  const results = Array.from({ length: rounds }, () => runOnce(withJson));
  const best = results.reduce((a, b) => (a.seconds < b.seconds ? a : b));
  const median = [...results].sort((a, b) => a.seconds - b.seconds)[Math.floor(rounds / 2)];
  const label = withJson ? "pipeline + JSON" : "pipeline";
  console.log(
    `${label.padEnd(16)} median ${(totalFlows / median.seconds).toFixed(0)} flows/s, ${(mb / median.seconds).toFixed(1)} MB/s` +
      `  (best ${(totalFlows / best.seconds).toFixed(0)} flows/s; ${rounds} rounds)`,
  );
}
