// Micro benchmark of the HTTP/1 parser alone: small keep-alive GET requests and their
// responses, as the two directions of one connection deliver them. Prints figures only
// (messages/s and MB/s of HTTP bytes, median of several rounds); it passes or fails nothing.
//
//   bun bench/http1-parser.ts [--pairs N] [--rounds R]
//
// Scenarios:
//   one push per message   — each request and each response in its own push (the usual case)
//   64 pairs per push      — pipelined / batched reads: many messages in one push
//   split in two pushes    — every message cut in the middle of its head (the pending path)
//   chunked response       — the response body sent as two chunks with a terminating chunk
import { parseArgs } from "node:util";
import { createHttp1Parser } from "../src/protocols/http1/parser.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { pairs: { type: "string", default: "200000" }, rounds: { type: "string", default: "7" } },
});
const pairs = Number(values.pairs);
const rounds = Number(values.rounds);

const encode = (s: string) => new TextEncoder().encode(s);
const html = "<!doctype html>\n<html><body><p>It works.</p></body></html>\n";
const request = encode("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n");
const response = encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Sun, 22 Nov 2026 12:00:00 GMT\r\nContent-Type: text/html\r\n" +
    `Content-Length: ${html.length}\r\nConnection: keep-alive\r\n\r\n${html}`,
);
const half = html.length >> 1;
const chunkedResponse = encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n" +
    `${half.toString(16)}\r\n${html.slice(0, half)}\r\n${(html.length - half).toString(16)}\r\n${html.slice(half)}\r\n0\r\n\r\n`,
);

function repeat(msg: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(msg.length * n);
  for (let i = 0; i < n; i++) out.set(msg, i * msg.length);
  return out;
}

interface Scenario {
  name: string;
  /** The pushes of one round for each direction, in order. */
  requests: Uint8Array[];
  responses: Uint8Array[];
}

function splitEach(msg: Uint8Array, at: number): Uint8Array[] {
  return [msg.subarray(0, at), msg.subarray(at)];
}

const batch = 64;
const scenarios: Scenario[] = [
  { name: "one push per message", requests: [request], responses: [response] },
  { name: `${batch} pairs per push`, requests: [repeat(request, batch)], responses: [repeat(response, batch)] },
  { name: "split in two pushes", requests: splitEach(request, 40), responses: splitEach(response, 60) },
  { name: "chunked response", requests: [request], responses: [chunkedResponse] },
];

function round(s: Scenario): { seconds: number; messages: number; bytes: number } {
  let messages = 0;
  const responses = createHttp1Parser("response", { onMessage: () => messages++ });
  const requests = createHttp1Parser("request", { onMessage: () => messages++, onRequestHead: (m) => responses.expectResponseTo(m) });
  const perPush = s.requests[0].length === request.length * batch ? batch : 1;
  const iterations = Math.ceil(pairs / perPush);
  let bytes = 0;
  for (const b of s.requests) bytes += b.length;
  for (const b of s.responses) bytes += b.length;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    for (const b of s.requests) requests.push(b, i);
    for (const b of s.responses) responses.push(b, i);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (messages !== 2 * iterations * perPush) throw new Error(`${s.name}: expected ${2 * iterations * perPush} messages, got ${messages}`);
  return { seconds, messages, bytes: bytes * iterations };
}

console.log(`http1 parser, ${pairs} GET request/response pairs per round, median of ${rounds} rounds (bun ${Bun.version})`);
for (const s of scenarios) {
  round(s); // warm-up
  const results = Array.from({ length: rounds }, () => round(s)).sort((a, b) => a.seconds - b.seconds);
  const median = results[results.length >> 1];
  const rate = median.messages / median.seconds;
  const mbps = median.bytes / 1e6 / median.seconds;
  console.log(`  ${s.name.padEnd(22)} ${Math.round(rate).toLocaleString("en-US").padStart(11)} messages/s  ${mbps.toFixed(1).padStart(7)} MB/s`);
}
