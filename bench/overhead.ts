// Overhead benchmark: wrk against nginx on loopback, without tapwire and with
// `tapwire capture --json > /dev/null`, alternating in one run. Prints the throughput ratio,
// the flows tapwire captured against the requests wrk completed, and the drop counters.
// Figures, not pass/fail. Needs root, nginx and wrk (scripts/bootstrap.sh --test).
//
//   bun bench/overhead.ts [--seconds 8] [--rounds 2] [--connections 32]
import { parseArgs } from "node:util";
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";

const ROOT = `${import.meta.dir}/..`;
const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    port: { type: "string", default: "18480" },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const port = Number(values.port);

function startNginx(): { stop(): void } {
  const prefix = mkdtempSync(`${tmpdir()}/tapwire-bench-nginx-`);
  chmodSync(prefix, 0o755); // nginx's workers run as nobody and must read the page
  mkdirSync(`${prefix}/www`);
  mkdirSync(`${prefix}/logs`);
  writeFileSync(`${prefix}/www/index.html`, "<!DOCTYPE html>\n<html><body>" + "tapwire overhead benchmark. ".repeat(20) + "</body></html>\n");
  // sendfile off: tapwire then copies every body byte, the costlier case for it.
  writeFileSync(
    `${prefix}/nginx.conf`,
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile off;
  keepalive_requests 10000000;
  client_body_temp_path ${prefix}/tmp;
  server { listen 127.0.0.1:${port}; root ${prefix}/www; }
}
`,
  );
  const proc = Bun.spawn(["/usr/sbin/nginx", "-p", prefix, "-c", `${prefix}/nginx.conf`, "-g", "daemon off;"], { stdout: "inherit", stderr: "inherit" });
  return { stop: () => proc.kill("SIGQUIT") };
}

async function waitListening() {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: "127.0.0.1", port });
      s.once("connect", () => (s.destroy(), res(true)));
      s.once("error", () => res(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error("nginx did not start");
}

async function wrk(): Promise<{ rps: number; requests: number }> {
  const p = Bun.spawn(["wrk", "-t1", `-c${values.connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/index.html`], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errors) throw new Error(`wrk: ${errors[0]}: the benchmark's nginx is not serving its page`);
  return { rps, requests };
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

async function withTapwire(): Promise<{ rps: number; requests: number; flows: number; summary: string; cpu: number }> {
  const tw = Bun.spawn([`${ROOT}/dist/tapwire`, "capture", "--json"], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
  const reader = tw.stderr.getReader();
  let err = "";
  while (!err.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`tapwire exited: ${err}`);
    err += new TextDecoder().decode(value);
  }
  const r = await wrk();
  await Bun.sleep(300); // let the last responses drain out of the ring
  const cpu = cpuSeconds(tw.pid);
  tw.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    err += new TextDecoder().decode(value);
  }
  await tw.exited;
  const summary = err.split("\n").find((l) => l.startsWith("tapwire:")) ?? err;
  const flows = Number(/tapwire: (\d+) flows/.exec(summary)?.[1] ?? NaN);
  return { ...r, flows, summary, cpu };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const nginx = startNginx();
try {
  await waitListening();
  await wrk(); // warm-up
  const base: number[] = [];
  const traced: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = await wrk();
    base.push(b.rps);
    console.log(`round ${i + 1}: without tapwire ${b.rps.toFixed(0)} req/s`);
    const t = await withTapwire();
    traced.push(t.rps);
    const expected = 2 * t.requests; // wrk's flow and nginx's flow for each request
    console.log(
      `round ${i + 1}: with tapwire    ${t.rps.toFixed(0)} req/s; ${t.requests} requests -> ${t.flows} flows ` +
        `(${expected} expected: client and server side), tapwire CPU ${(t.cpu / seconds * 100).toFixed(0)}% of a core\n  ${t.summary}`,
    );
  }
  const ratio = median(traced) / median(base);
  console.log(`overhead: throughput ratio ${ratio.toFixed(3)} (median ${median(traced).toFixed(0)} / ${median(base).toFixed(0)} req/s)`);
} finally {
  nginx.stop();
}
