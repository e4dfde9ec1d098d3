// What a flow keeps alive in memory, against the estimate that bounds the history and the
// subscribers' queues (src/flows/flow-size.ts): N flows of a small keep-alive exchange made
// by the pipeline and held, heap and array buffers measured after full collections.
// Figures, not pass/fail.
//
//   bun bench/flow-memory.ts [--flows 20000] [--body 840]
import { parseArgs } from "node:util";
import type { Flow } from "../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../src/flows/pipeline.ts";
import { flowBytes } from "../src/flows/flow-size.ts";
import { createProcessRegistry } from "../src/procs/process-registry.ts";
import { connectionWriter, feed } from "../test/support/records.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { flows: { type: "string", default: "20000" }, body: { type: "string", default: "840" } } });
const n = Number(values.flows);
const body = "x".repeat(Number(values.body));
const request = "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
const response =
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 12:00:00 GMT\r\nContent-Type: text/html\r\n" +
  `Content-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`;

const kept: Flow[] = [];
const pipeline = createPipeline({
  onFlow: (f) => kept.push(f),
  clockOffsetNs: 0,
  maxBody: 1 << 20,
  processes: createProcessRegistry("/nonexistent"),
  forget: () => {},
  tlsLibrary: () => "?",
  onLibOpen: () => {},
  onExec: () => {},
});
const conns = Array.from({ length: 50 }, (_, i) => connectionWriter({ connId: i + 1, pid: 1000, origin: 1 }));
feed(pipeline, conns.map((c) => c.open()));
Bun.gc(true);
const before = process.memoryUsage();
for (let i = 0; i < n; i += 100) {
  const records: Uint8Array[] = [];
  for (let j = 0; j < 100; j++) {
    const c = conns[(i + j) % conns.length]!;
    records.push(c.data(1, request), c.data(0, response));
  }
  feed(pipeline, records);
}
Bun.gc(true);
const after = process.memoryUsage();
let estimate = 0;
for (const f of kept) estimate += flowBytes(f);
const per = (x: number) => (x / kept.length).toFixed(0);
console.log(
  `${kept.length} flows held: heap ${per(after.heapUsed - before.heapUsed)} B/flow, array buffers ${per(after.arrayBuffers - before.arrayBuffers)} B/flow, ` +
    `RSS ${per(after.rss - before.rss)} B/flow; flowBytes() estimates ${per(estimate)} B/flow`,
);
