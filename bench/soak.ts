// Soak: tapwire left on under mixed traffic, watched for memory and for flows unaccounted
// for. For --minutes (default 10): HTTP/1.1 keep-alive, HTTP/1.1 one connection per request
// and h2c (prior knowledge), all against nginx on loopback, through `tapwire serve`, with
// three consumers of its flows: a fast WatchFlows subscriber, a stalled one (it never reads),
// and `tapwire watch --json` writing to a pipe whose reader stalls every other second.
// Every 30 s: serve's RSS and its counters. At the end: whether every flow serve made reached
// the fast subscriber or was counted as dropped for it, and the same for the watch's pipe.
// Figures, not pass/fail. Needs root, nginx and h2load (bootstrap.sh --test).
//
//   bun bench/soak.ts [--minutes 10]
import { parseArgs } from "node:util";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { waitForListener } from "./support/listening.ts";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../src/gen/tapwire/v1/service_pb.ts";

const ROOT = `${import.meta.dir}/..`;
const { values } = parseArgs({ args: Bun.argv.slice(2), options: { minutes: { type: "string", default: "10" } } });
const seconds = Number(values.minutes) * 60;
const H1 = 18590;
const H2 = 18591;
const API = 18592;

function startNginx() {
  const prefix = mkdtempSync(`${tmpdir()}/tapwire-soak-`);
  chmodSync(prefix, 0o755);
  mkdirSync(`${prefix}/www`);
  mkdirSync(`${prefix}/logs`);
  writeFileSync(`${prefix}/www/index.html`, "<p>" + "tapwire soak. ".repeat(60) + "</p>\n");
  writeFileSync(
    `${prefix}/nginx.conf`,
    `worker_processes 1;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents { worker_connections 1024; }\n` +
      `http { access_log off; keepalive_requests 1000000; client_body_temp_path ${prefix}/tmp;\n` +
      `  server { listen 127.0.0.1:${H1}; root ${prefix}/www; }\n  server { listen 127.0.0.1:${H2} http2; root ${prefix}/www; } }\n`,
  );
  const p = Bun.spawn(["/usr/sbin/nginx", "-p", prefix, "-c", `${prefix}/nginx.conf`, "-g", "daemon off;"], { stdout: "inherit", stderr: "inherit" });
  return { stop: () => p.kill("SIGQUIT") };
}


const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))![1]) / 1024;

async function h2load(args: string[]) {
  const p = Bun.spawn(["h2load", ...args], { stdout: "ignore", stderr: "ignore" });
  await p.exited;
}

const nginx = startNginx();
let watchProc: { exitCode: number | null; kill(signal?: number | NodeJS.Signals): void } | undefined;
await waitForListener(H1, "nginx");
await waitForListener(H2, "nginx");
const serve = Bun.spawn([`${ROOT}/dist/tapwire`, "serve", "--listen", `127.0.0.1:${API}`, "--port", String(H1), "--port", String(H2)], { stdout: "ignore", stderr: "pipe" });
// Whatever happens to this script, nothing it started is left running.
process.on("exit", () => {
  if (serve.exitCode === null) serve.kill("SIGKILL");
  if (watchProc?.exitCode === null) watchProc.kill("SIGKILL");
  nginx.stop();
});
let serveErr = "";
void (async () => {
  for await (const c of serve.stderr) serveErr += new TextDecoder().decode(c);
})();
while (!serveErr.includes("ready")) {
  if (serve.exitCode !== null) throw new Error(serveErr);
  await Bun.sleep(50);
}
const client = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${API}`, httpVersion: "2", useBinaryFormat: true }));

// The fast subscriber: counts flows and what it was told was dropped for it.
const fast = { flows: 0, dropped: 0 };
const abort = new AbortController();
const fastDone = (async () => {
  try {
    for await (const ev of client.watchFlows({}, { signal: abort.signal, timeoutMs: 0 })) {
      if (ev.event.case === "flow") fast.flows++;
      else if (ev.event.case === "dropped") fast.dropped += Number(ev.event.value.count);
    }
  } catch {}
})();
// The stalled subscriber: subscribes, and never reads.
const stalledClient = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${API}`, httpVersion: "2", useBinaryFormat: true }));
const stalled = stalledClient.watchFlows({}, { signal: abort.signal, timeoutMs: 0 })[Symbol.asyncIterator]();
void stalled.next().catch(() => {});

// tapwire watch --json into a pipe whose reader stalls every other second.
const watch = Bun.spawn([`${ROOT}/dist/tapwire`, "watch", "--server", `http://127.0.0.1:${API}`, "--json"], { stdout: "pipe", stderr: "pipe" });
watchProc = watch;
let watchLines = 0;
const watchDone = (async () => {
  const reader = watch.stdout.getReader();
  let second = 0;
  for (;;) {
    if (Math.floor(Date.now() / 1000) % 2 === 0) {
      await Bun.sleep(100); // stalled
      if (++second > 1e9) break;
      continue;
    }
    const { value, done } = await reader.read();
    if (done) break;
    for (const b of value) if (b === 10) watchLines++;
  }
})();
let watchErr = "";
void (async () => {
  for await (const c of watch.stderr) watchErr += new TextDecoder().decode(c);
})();

// Every consumer subscribed before the first request: then each flow serve makes is owed to
// each of them, delivered or counted as dropped.
for (let i = 0; (await client.getStats({})).subscribers < 3; i++) {
  if (i > 200) throw new Error("the three subscribers did not all subscribe");
  await Bun.sleep(50);
}

// Traffic, in rounds of about a second.
let stop = false;
const traffic = (async () => {
  while (!stop) {
    await Promise.all([
      h2load(["--h1", "-n", "1500", "-c", "4", `http://127.0.0.1:${H1}/index.html`]), // keep-alive
      h2load(["--h1", "-n", "50", "-c", "50", `http://127.0.0.1:${H1}/index.html`]), // one connection per request
      h2load(["-n", "1500", "-c", "4", "-m", "8", `http://127.0.0.1:${H2}/index.html`]), // h2c
      Bun.sleep(1000),
    ]);
  }
})();

const t0 = Date.now();
const rows: string[] = [];
const sample = async () => {
  const s = await client.getStats({});
  const drops = Object.entries(s.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
  const row = `${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s  RSS ${rssMiB(serve.pid).toFixed(0).padStart(5)} MiB  flows ${s.flows}  history ${s.historyFlows}  drops ${drops}  fast ${fast.flows} (+${fast.dropped} dropped)  watch lines ${watchLines}`;
  rows.push(row);
  console.log(row);
};
await sample();
while (Date.now() - t0 < seconds * 1000) {
  await Bun.sleep(30_000);
  await sample();
}
stop = true;
await traffic;
await Bun.sleep(2000); // the last flows reach every consumer
await sample();
const final = await client.getStats({});
abort.abort();
await fastDone;
watch.kill("SIGINT");
await watch.exited;
await Promise.race([watchDone, Bun.sleep(2000)]);
serve.kill("SIGINT");
await serve.exited;
nginx.stop();

const rss = rows.map((r) => Number(/RSS\s+(\d+)/.exec(r)![1]));
const afterMinute = rss[Math.min(2, rss.length - 1)]!;
console.log(`\nRSS after the first minute ${afterMinute} MiB, highest later ${Math.max(...rss.slice(2))} MiB (target: never above ${2 * afterMinute}), last ${rss.at(-1)} MiB`);
console.log(`fast subscriber: ${fast.flows} flows + ${fast.dropped} dropped for it = ${fast.flows + fast.dropped} of ${final.flows} flows serve made`);
const watchLast = watchErr.trim().split("\n").at(-1) ?? "";
const watchDropped = Number(/the server dropped (\d+) flows/.exec(watchLast)?.[1] ?? 0);
const watchStdoutDropped = Number(/(\d+) flows dropped on stdout/.exec(watchLast)?.[1] ?? 0);
console.log(
  `tapwire watch --json: ${watchLines} lines + ${watchDropped} dropped by the server for it + ${watchStdoutDropped} dropped on its stdout = ${watchLines + watchDropped + watchStdoutDropped} of ${final.flows} flows serve made`,
);
console.log(`serve: ${serveErr.trim().split("\n").at(-1)}`);
