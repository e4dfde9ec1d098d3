// Ring reader benchmark: the walk over ring buffer records (src/bpf/ring-reader.ts) on a
// ring laid out in plain memory as the kernel lays it out, with a handler that reads one
// field of each record and nothing else, so the figure is the reader's own cost per record.
// Record sizes are a mix as tapwire's ring holds them (data events of small and large
// payloads, connection events). Figures, not pass/fail.
//
//   bun bench/ring-reader.ts [--ring-mib N] [--rounds N] [--passes N]
import { parseArgs } from "node:util";
import { readRing } from "../src/bpf/ring-reader.ts";
import { createFakeRing, payload, recordSpace } from "../test/unit/bpf/fake-ring.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    "ring-mib": { type: "string", default: "16" },
    rounds: { type: "string", default: "7" },
    passes: { type: "string", default: "50" },
  },
});
const dataSize = Number(values["ring-mib"]) << 20;
const rounds = Number(values.rounds);
const passes = Number(values.passes);

// Payload sizes of the records, in turn: a data event header (56) with requests and
// responses of a few sizes, connection open/close events.
const sizes = [56 + 90, 56 + 410, 104, 56 + 16, 56 + 1400, 56 + 90, 56 + 410, 40];
const ring = createFakeRing(dataSize);
const start = dataSize - 4096; // so the records wrap the end of the area once
ring.producer = ring.consumer = start;
let records = 0;
let bytes = 0;
for (let i = 0; ; i++) {
  const n = sizes[i % sizes.length]!;
  if (ring.producer + recordSpace(n) - start > dataSize) break;
  ring.write(payload(n, i));
  records++;
  bytes += n;
}

const reader = readRing(ring.memory);
let sink = 0;
const handler = (b: Uint8Array, _v: DataView, off: number, _len: number) => {
  sink += b[off]!;
};

function round(): number {
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) {
    ring.consumer = start;
    if (reader.drain(handler) !== records) throw new Error("the walk lost records");
  }
  return (performance.now() - t0) / 1000;
}

round(); // warm-up
const times = Array.from({ length: rounds }, round).sort((a, b) => a - b);
const median = times[Math.floor(rounds / 2)]!;
const best = times[0]!;
const perRound = records * passes;
console.log(`ring-reader: ${records} records, ${(bytes / 1e6).toFixed(1)} MB in a ${dataSize >> 20} MiB ring, ${passes} passes a round`);
console.log(
  `drain            median ${(perRound / median / 1e6).toFixed(2)} M records/s, ${((bytes * passes) / median / 1e9).toFixed(2)} GB/s` +
    `  (best ${(perRound / best / 1e6).toFixed(2)} M records/s; ${rounds} rounds)`,
);
if (sink === -1) console.log(sink);
