// Filter benchmark: what a --filter / FlowFilter.expression costs per flow, compiled once and
// applied to every flow as capture, serve's subscribers and the history do. Prints ns per
// flow and the share of one core it would take at 100,000 flows/s. Figures, not pass/fail.
//
//   bun bench/filter.ts [--flows N]
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role, type Flow } from "../src/gen/tapwire/v1/flow_pb.ts";
import { compileFilter } from "../src/flows/flow-filter.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { flows: { type: "string", default: "2000000" } } });
const total = Number(values.flows);

const ts = (ms: number) => ({ seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
const body = new TextEncoder().encode('{"items":[{"id":1,"name":"widget"}],"next":null}'.repeat(8));
// 1,000 distinct flows of the shape the replay benchmark makes (curl → nginx, a JSON body).
const flows: Flow[] = Array.from({ length: 1000 }, (_, i) =>
  create(FlowSchema, {
    id: String(i),
    startTime: ts(i),
    endTime: ts(i + (i % 50)),
    protocol: i % 5 ? Protocol.HTTP1 : Protocol.HTTP2,
    connection: { role: Role.SERVER, source: { ip: "127.0.0.1", port: 30000 + i }, destination: { ip: "127.0.0.1", port: 8080 }, process: { pid: 100 + (i % 7), comm: i % 3 ? "nginx" : "curl", exe: "/usr/sbin/nginx" } },
    request: { method: i % 4 ? "GET" : "POST", path: `/api/v${i % 3}/items/${i}`, authority: "127.0.0.1:8080", version: "HTTP/1.1", headers: [{ name: "Host", value: "127.0.0.1:8080" }, { name: "User-Agent", value: "curl/7.88.1" }, { name: "Accept", value: "*/*" }] },
    response: { status: i % 10 ? 200 : 503, version: "HTTP/1.1", headers: [{ name: "Server", value: "nginx/1.22.1" }, { name: "Content-Type", value: "application/json" }], body, bodySize: BigInt(body.length) },
  }),
);

const EXPRESSIONS = [
  "status >= 500",
  "method == POST and host == 127.0.0.1",
  'path ~ "^/api/v1/"',
  "(process == curl or status >= 500) and duration > 10ms",
  'resp.header["content-type"] contains "json" and not tls',
  'resp.body contains "widget"',
  "process in [curl, wget, python3] or protocol == http2 or grpc.status != OK",
];

console.log(`filter: ${total.toLocaleString()} flows per expression (1,000 distinct)`);
for (const expression of EXPRESSIONS) {
  const match = compileFilter(expression).matches;
  let hits = 0;
  for (let i = 0; i < 200_000; i++) if (match(flows[i % 1000]!)) hits++; // warm up
  hits = 0;
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < total; i++) if (match(flows[i % 1000]!)) hits++;
  const ns = (Bun.nanoseconds() - t0) / total;
  console.log(`  ${ns.toFixed(1).padStart(6)} ns/flow  ${((ns * 100_000) / 1e7).toFixed(2).padStart(5)} % of a core at 100k flows/s  ${String(Math.round((hits / total) * 100)).padStart(3)} % match  ${expression}`);
}
