// Runs every benchmark in turn (npm run bench). Each prints its own figures.
const benches = [
  ["bench/http1-parser.ts"],
  ["bench/replay.ts", "--json"],
  ["bench/ring-reader.ts"],
  ["bench/overhead.ts"],
  ["bench/overhead.ts", "--tls"],
  ["bench/go-tls-overhead.ts"],
  ["bench/uprobe-cost.ts"],
  ["bench/hpack.ts"],
  ["bench/http2-replay.ts"],
  ["bench/go-analysis.ts"],
  ["bench/exec-hold.ts"],
  ["bench/flow-memory.ts"],
  ["bench/filter.ts"],
  ["bench/redis-replay.ts"],
  ["bench/soak.ts", "--minutes", "2"],
];
for (const [file, ...args] of benches) {
  console.log(`\n== ${file} ${args.join(" ")}`);
  const p = Bun.spawn(["bun", `${import.meta.dir}/../${file}`, ...args], { stdout: "inherit", stderr: "inherit" });
  if ((await p.exited) !== 0) process.exitCode = 1;
}
