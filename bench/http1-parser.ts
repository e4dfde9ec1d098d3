// The HTTP/1 parser alone: small keep-alive GET requests and their responses, as one
// connection's two directions deliver them (one push per message). Prints messages/s.
//
//   bun bench/http1-parser.ts [--messages N]
import { parseArgs } from "node:util";
import { createHttp1Parser } from "../src/protocols/http1/parser.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { messages: { type: "string", default: "300000" }, rounds: { type: "string", default: "5" } } });
const n = Number(values.messages);
const enc = (s: string) => new TextEncoder().encode(s);
const request = enc("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n");
const body = "<!DOCTYPE html>\n<html><body><p>It works.</p></body></html>\n";
const response = enc(
  `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 12:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`,
);

function round(): number {
  let count = 0;
  const requests = createHttp1Parser("request", { onMessage: () => count++, onRequestHead: (m) => responses.expectResponseTo(m) });
  const responses = createHttp1Parser("response", { onMessage: () => count++ });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    requests.push(request, i);
    responses.push(response, i);
  }
  const s = (performance.now() - t0) / 1000;
  if (count !== 2 * n) throw new Error(`expected ${2 * n} messages, got ${count}`);
  return s;
}

const bytes = (request.length + response.length) * n;
const times = Array.from({ length: Number(values.rounds) }, round).sort((a, b) => a - b);
const median = times[times.length >> 1];
console.log(`http1 parser: ${n} request/response pairs, median ${((2 * n) / median).toFixed(0)} messages/s, ${(bytes / 1e6 / median).toFixed(1)} MB/s (best ${((2 * n) / times[0]).toFixed(0)})`);
