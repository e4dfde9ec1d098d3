// Overhead benchmark: wrk against nginx on loopback, without tapwire and with
// `tapwire capture --json > /dev/null`, alternating in one run. Prints the throughput ratio,
// the flows tapwire captured against the requests wrk completed, and the drop counters.
// With --tls, wrk speaks https to nginx, and a peer runs in the same rounds: a bpftrace
// program with uprobes on the same OpenSSL functions that prints every plaintext buffer
// (what bcc's sslsniff does); its cost and the requests it saw are printed beside tapwire's.
// tapwire then also runs with --uprobe-placement entry (every probe at its function's entry),
// and with --port 1 both ways (the uprobes' and tracepoints' cost alone).
// With --container-filter, tapwire also runs in each round with `--container` naming a
// container that does not run: every syscall of the load then meets the kernel's container
// filter (the cgroup and its ancestors looked up) and nothing is captured — the cost a
// host's other traffic pays when tapwire watches one container.
// With --compare PATH, another tapwire executable (an earlier build) runs in each round too,
// so a change is measured against what it changed, side by side.
// Figures, not pass/fail. Needs root, nginx, wrk, openssl and bpftrace (bootstrap.sh --test).
//
//   bun bench/overhead.ts [--tls] [--container-filter] [--compare PATH] [--seconds 8] [--rounds 2] [--connections 32]
import { parseArgs } from "node:util";
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { waitForListener } from "./support/listening.ts";

const ROOT = `${import.meta.dir}/..`;
const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    port: { type: "string", default: "18480" },
    tls: { type: "boolean", default: false },
    "container-filter": { type: "boolean", default: false },
    compare: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const port = Number(values.port);
const tls = values.tls!;
const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

function startNginx(): { stop(): void } {
  const prefix = mkdtempSync(`${tmpdir()}/tapwire-bench-nginx-`);
  chmodSync(prefix, 0o755); // nginx's workers run as nobody and must read the page
  mkdirSync(`${prefix}/www`);
  mkdirSync(`${prefix}/logs`);
  writeFileSync(`${prefix}/www/index.html`, "<!DOCTYPE html>\n<html><body>" + "tapwire overhead benchmark. ".repeat(20) + "</body></html>\n");
  let listen = `listen 127.0.0.1:${port};`;
  if (tls) {
    const r = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", `${prefix}/key.pem`, "-out", `${prefix}/cert.pem`],
      { stderr: "pipe" },
    );
    if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`);
    listen = `listen 127.0.0.1:${port} ssl; ssl_certificate ${prefix}/cert.pem; ssl_certificate_key ${prefix}/key.pem; ssl_protocols TLSv1.2 TLSv1.3;`;
  }
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
  server { ${listen} root ${prefix}/www; }
}
`,
  );
  const proc = Bun.spawn(["/usr/sbin/nginx", "-p", prefix, "-c", `${prefix}/nginx.conf`, "-g", "daemon off;"], { stdout: "inherit", stderr: "inherit" });
  return { stop: () => proc.kill("SIGQUIT") };
}

async function wrk(): Promise<{ rps: number; requests: number }> {
  const url = `${tls ? "https" : "http"}://127.0.0.1:${port}/index.html`;
  const p = Bun.spawn(["wrk", "-t1", `-c${values.connections}`, `-d${seconds}s`, url], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errors) throw new Error(`wrk: ${errors[0]}: the benchmark's nginx is not serving its page`);
  return { rps, requests };
}

function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return NaN; // it has exited
  }
}

/**
 * Start a capturing process, wait until `ready` matches its stderr (tapwire) or its stdout
 * (bpftrace), run wrk, stop it. Returns wrk's figures, its CPU time and stderr, and how many
 * times "GET /index.html" appeared in its stdout when that is read.
 */
async function withCapture(cmd: string[], ready: RegExp, readyOn: "stderr" | "stdout") {
  const proc = Bun.spawn(cmd, { stdout: readyOn === "stdout" ? "pipe" : Bun.file("/dev/null"), stderr: "pipe" });
  let gets = 0;
  let err = "";
  let markReady!: () => void;
  const isReady = new Promise<void>((res) => (markReady = res));
  const exited = proc.exited.then((code) => {
    throw new Error(`${cmd.join(" ").slice(0, 60)} exited with ${code}: ${err}`);
  });
  const readAll = async (stream: ReadableStream<Uint8Array>, onText: (text: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
  };
  const errDone = readAll(proc.stderr, (t) => {
    err += t;
    if (readyOn === "stderr" && ready.test(err)) markReady();
  });
  let head = "";
  let tail = "";
  const outDone =
    readyOn === "stdout"
      ? readAll(proc.stdout as ReadableStream<Uint8Array>, (t) => {
          if (head.length < 4096) {
            head += t;
            if (ready.test(head)) markReady();
          }
          // The peer's output is counted as it streams: "GET /index.html" once per request seen.
          const text = tail + t;
          gets += text.split("GET /index.html").length - (tail.split("GET /index.html").length);
          tail = text.slice(-20);
        })
      : Promise.resolve();
  await Promise.race([isReady, exited]);
  exited.catch(() => {}); // from here on its exit is expected
  const r = await wrk();
  await Bun.sleep(300); // let the last responses drain
  const cpu = cpuSeconds(proc.pid);
  proc.kill("SIGINT");
  await proc.exited;
  await Promise.all([errDone, outDone]);
  return { ...r, cpu, stderr: err, gets };
}

async function withTapwire(extra: string[] = [], executable = `${ROOT}/dist/tapwire`) {
  const r = await withCapture([executable, "capture", "--json", ...extra], /^ready/m, "stderr");
  const summary = r.stderr.split("\n").find((l) => /^tapwire: \d+ flows/.test(l)) ?? r.stderr;
  const hits = Number(/(\d+) uprobe hits/.exec(summary)?.[1] ?? 0);
  return { ...r, flows: Number(/tapwire: (\d+) flows/.exec(summary)?.[1] ?? NaN), summary, hits };
}

/** The peer: every SSL_read/SSL_write(_ex) buffer printed, as sslsniff does, by bpftrace. */
const BPFTRACE_PROGRAM = `
uprobe:${LIBSSL}:SSL_write, uprobe:${LIBSSL}:SSL_write_ex { printf("W %d %d %r\\n", pid, arg2, buf(arg1, arg2)); }
uprobe:${LIBSSL}:SSL_read { @buf[tid] = arg1; @ex[tid] = 0; }
uprobe:${LIBSSL}:SSL_read_ex { @buf[tid] = arg1; @len[tid] = arg3; @ex[tid] = 1; }
uretprobe:${LIBSSL}:SSL_read, uretprobe:${LIBSSL}:SSL_read_ex /@buf[tid]/ {
  $n = @ex[tid] ? (retval == 1 ? *(uint64 *)@len[tid] : 0) : (int32)retval;
  if ($n > 0) { printf("R %d %d %r\\n", pid, $n, buf(@buf[tid], $n)); }
  delete(@buf[tid]); delete(@len[tid]); delete(@ex[tid]);
}
`;

async function withBpftrace() {
  // bpftrace says "Attaching N probes..." on stdout once it is attached.
  const r = await withCapture(["env", "BPFTRACE_STRLEN=200", "bpftrace", "-e", BPFTRACE_PROGRAM], /Attaching \d+ probes/, "stdout");
  const lost = /Lost (\d+) events/.exec(r.stderr)?.[1];
  return { ...r, summary: lost ? `bpftrace lost ${lost} events` : "bpftrace reported no lost events" };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const nginx = startNginx();
try {
  await waitForListener(port, "nginx");
  await wrk(); // warm-up
  const base: number[] = [];
  const traced: number[] = [];
  const peer: number[] = [];
  const filtered: number[] = [];
  const byPid: number[] = [];
  const compared: number[] = [];
  const atEntry: number[] = [];
  const kernelOnly: number[] = [];
  const kernelOnlyAtEntry: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = await wrk();
    base.push(b.rps);
    console.log(`round ${i + 1}: without tapwire ${b.rps.toFixed(0)} req/s`);
    const t = await withTapwire();
    traced.push(t.rps);
    const expected = 2 * t.requests; // wrk's flow and nginx's flow for each request
    console.log(
      `round ${i + 1}: with tapwire    ${t.rps.toFixed(0)} req/s; ${t.requests} requests -> ${t.flows} flows ` +
        `(${expected} expected: client and server side), tapwire CPU ${((t.cpu / seconds) * 100).toFixed(0)}% of a core, ` +
        `${((t.cpu * 1000) / t.flows).toFixed(3)} CPU s per 1,000 flows\n  ${t.summary}`,
    );
    if (values.compare) {
      const c = await withTapwire([], values.compare);
      compared.push(c.rps);
      console.log(
        `round ${i + 1}: with ${values.compare} ${c.rps.toFixed(0)} req/s; ${c.requests} requests -> ${c.flows} flows, CPU ${((c.cpu / seconds) * 100).toFixed(0)}% of a core\n  ${c.summary}`,
      );
    }
    if (values["container-filter"]) {
      const f = await withTapwire(["--container", "tapwire-bench-no-such-container", "--docker-socket", ""]);
      filtered.push(f.rps);
      console.log(`round ${i + 1}: with tapwire --container (not running) ${f.rps.toFixed(0)} req/s; ${f.flows} flows (0 expected), tapwire CPU ${((f.cpu / seconds) * 100).toFixed(0)}% of a core`);
      // For reference: the tracepoints alone, every event turned away by the first check.
      const p = await withTapwire(["--pid", "2147483647", "--docker-socket", ""]);
      byPid.push(p.rps);
      console.log(`round ${i + 1}: with tapwire --pid (no such process) ${p.rps.toFixed(0)} req/s; ${p.flows} flows (0 expected)`);
    }
    if (tls) {
      // The uprobes' own cost: every probe placed at its function's entry (as before
      // src/probes/uprobe-placement.ts), and every connection turned away in the kernel
      // (--port 1: the probes still fire, nothing reaches user space).
      const e = await withTapwire(["--uprobe-placement", "entry"]);
      atEntry.push(e.rps);
      console.log(`round ${i + 1}: with tapwire --uprobe-placement entry ${e.rps.toFixed(0)} req/s; ${e.requests} requests -> ${e.flows} flows (${2 * e.requests} expected)`);
      // Hits also count wrk's warm-up-free start and nginx's handshakes: per request, both sides.
      console.log(`round ${i + 1}: uprobe hits per request (wrk and nginx together): ${(t.hits / t.requests).toFixed(2)} placed, ${(e.hits / e.requests).toFixed(2)} at entries`);
      const k = await withTapwire(["--port", "1"]);
      kernelOnly.push(k.rps);
      const ke = await withTapwire(["--port", "1", "--uprobe-placement", "entry"]);
      kernelOnlyAtEntry.push(ke.rps);
      console.log(`round ${i + 1}: with tapwire --port 1 ${k.rps.toFixed(0)} req/s; with --port 1 --uprobe-placement entry ${ke.rps.toFixed(0)} req/s`);
      const p = await withBpftrace();
      peer.push(p.rps);
      // Each request is seen twice by the peer: wrk's SSL_write and nginx's SSL_read.
      console.log(
        `round ${i + 1}: with bpftrace   ${p.rps.toFixed(0)} req/s; ${p.requests} requests -> ${p.gets} request buffers printed ` +
          `(${2 * p.requests} expected: client and server side), bpftrace CPU ${((p.cpu / seconds) * 100).toFixed(0)}% of a core\n  ${p.summary}`,
      );
    }
  }
  const ratio = median(traced) / median(base);
  console.log(`overhead${tls ? " (https)" : ""}: tapwire throughput ratio ${ratio.toFixed(3)} (median ${median(traced).toFixed(0)} / ${median(base).toFixed(0)} req/s)`);
  if (compared.length) console.log(`overhead${tls ? " (https)" : ""}: ${values.compare} throughput ratio ${(median(compared) / median(base)).toFixed(3)} (median ${median(compared).toFixed(0)} req/s)`);
  if (byPid.length) console.log(`overhead${tls ? " (https)" : ""}: tapwire filtering out every process by pid: throughput ratio ${(median(byPid) / median(base)).toFixed(3)} (median ${median(byPid).toFixed(0)} req/s)`);
  if (filtered.length) console.log(`overhead${tls ? " (https)" : ""}: tapwire filtering out every process by container: throughput ratio ${(median(filtered) / median(base)).toFixed(3)} (median ${median(filtered).toFixed(0)} req/s)`);
  const r = (xs: number[]) => `${(median(xs) / median(base)).toFixed(3)} (median ${median(xs).toFixed(0)} req/s)`;
  if (tls) {
    console.log(`overhead (https): tapwire --uprobe-placement entry throughput ratio ${r(atEntry)}`);
    console.log(`overhead (https): tapwire --port 1 (kernel side only) throughput ratio ${r(kernelOnly)}; at entries ${r(kernelOnlyAtEntry)}`);
  }
  if (tls) console.log(`overhead (https): bpftrace peer throughput ratio ${(median(peer) / median(base)).toFixed(3)} (median ${median(peer).toFixed(0)} req/s)`);
} finally {
  nginx.stop();
}
