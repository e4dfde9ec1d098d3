// Redis replay benchmark: the user-side pipeline fed kernel records of Redis connections (a
// client's pipelined commands and the server's replies, as redis-cli and redis-server write
// them) in their exact binary layout. Prints commands/s on one core. Figures, not pass/fail.
//
//   bun bench/redis-replay.ts [--commands N] [--connections N] [--rounds N]
import { parseArgs } from "node:util";
import { createPipeline } from "../src/flows/pipeline.ts";
import { createProcessRegistry } from "../src/procs/process-registry.ts";
import { connectionWriter } from "../test/support/records.ts";
import { layOutRecords } from "./support/ring-layout.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { commands: { type: "string", default: "200000" }, connections: { type: "string", default: "50" }, rounds: { type: "string", default: "5" } },
});
const total = Number(values.commands);
const nConns = Number(values.connections);
const rounds = Number(values.rounds);
const REDIS_CLASS = 7; // enum tw_class: TW_CLASS_REDIS

const resp = (...words: string[]) => `*${words.length}\r\n` + words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join("");
// A mix as an application makes: GET of a cached value, SET, INCR, an HGETALL of 4 fields.
const value = '{"user":42,"name":"ada","roles":["admin","dev"]}';
const exchanges: [string, string][] = [
  [resp("GET", "session:42"), `$${value.length}\r\n${value}\r\n`],
  [resp("SET", "session:43", value, "EX", "3600"), "+OK\r\n"],
  [resp("INCR", "hits:/index"), ":1234\r\n"],
  [resp("HGETALL", "user:42"), "*8\r\n$4\r\nname\r\n$3\r\nada\r\n$4\r\nmail\r\n$15\r\nada@example.com\r\n$4\r\nrole\r\n$5\r\nadmin\r\n$4\r\nseen\r\n$10\r\n1733480000\r\n"],
];

const writers = Array.from({ length: nConns }, (_, i) => connectionWriter({ connId: i + 1, pid: 1000, fd: 10 + i, comm: "app", origin: 2, local: ["127.0.0.1", 40000 + i], remote: ["127.0.0.1", 6379], connClass: REDIS_CLASS }));
const records: Uint8Array[] = writers.map((w) => w.open());
let payload = 0;
for (let n = 0; n < total; n++) {
  const w = writers[n % nConns]!;
  const [command, reply] = exchanges[n % exchanges.length]!;
  records.push(w.data(0, command), w.data(1, reply));
  payload += command.length + reply.length;
}
for (const w of writers) records.push(w.close());
const { buf, view, offsets, lengths } = layOutRecords(records);

function runOnce(): number {
  let flows = 0;
  const pipeline = createPipeline({ onFlow: () => flows++, clockOffsetNs: 0, maxBody: 1 << 20, processes: createProcessRegistry("/nonexistent") });
  const t0 = performance.now();
  for (let i = 0; i < offsets.length; i++) {
    pipeline.record(buf, view, offsets[i]!, lengths[i]!);
    if ((i & 4095) === 4095) pipeline.endBatch();
  }
  pipeline.endBatch();
  const seconds = (performance.now() - t0) / 1000;
  if (flows !== total) throw new Error(`expected ${total} flows, got ${flows}`);
  return seconds;
}

console.log(`redis-replay: ${total} commands and replies over ${nConns} connections, ${(payload / 1e6).toFixed(1)} MB`);
const times = Array.from({ length: rounds }, runOnce).sort((a, b) => a - b);
const median = times[Math.floor(rounds / 2)]!;
console.log(`pipeline: ${Math.round(total / median).toLocaleString()} commands/s median of ${rounds} (best ${Math.round(total / times[0]!).toLocaleString()})`);
