// Helpers for the kernel (end-to-end) tests: run the real dist/tapwire as a user would, real
// servers and clients on loopback, and collect the flows tapwire prints as JSON.
import { expect } from "bun:test";
import { connect } from "node:net";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { FlowEventSchema, FlowSchema } from "../../src/gen/tapwire/v1/flow_pb.ts";
import { atRunEnd } from "../support/run-end.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const TAPWIRE = `${ROOT}/dist/tapwire`;
export const PEERS = `${ROOT}/test/e2e/peers`;
/** Debian's python3, not whatever python3 comes first on PATH. */
export const PYTHON = "/usr/bin/python3";

/** A flow as printed by `tapwire capture --json` (canonical proto JSON). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonFlow = any;

/** How the exit summary ends when nothing was dropped: the holding of new programs' execs. */
export const NO_DROPS_END = "no drops; (?:\\d+ uprobe hits; )?(?:no exec held|\\d+ execs? held \\(longest [\\d.]+ ms\\))$";

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Kernel tests need root; without it they fail (never skip silently). */
export function requireRoot(): void {
  if (!isRoot()) throw new Error("kernel tests need root: run npm test as root");
}

// Ports are taken below the kernel's ephemeral range: a port in it may be the local end of a
// connection in TIME_WAIT (nothing answers a connect, yet a listener cannot bind it), which
// made a server fail to start now and then late in a full run.
const EPHEMERAL_LOW = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || 32768;
const PORT_LOW = Math.min(10000, EPHEMERAL_LOW - 2000);
let nextPort = PORT_LOW + Math.floor(Math.random() * (EPHEMERAL_LOW - PORT_LOW));
/** A TCP port nothing listens on (probed on both loopbacks), outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (;;) {
    if (nextPort >= EPHEMERAL_LOW) nextPort = PORT_LOW;
    const port = nextPort++;
    if (!(await canConnect("127.0.0.1", port)) && !(await canConnect("::1", port))) return port;
  }
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** Lines of a stream, as they come. */
/** `arrived`: when each line came (Date.now()), for tests that time what tapwire shows. */
function collectLines(stream: ReadableStream<Uint8Array>, into: string[], arrived?: number[]): Promise<void> {
  return (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      const now = Date.now();
      rest += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        into.push(rest.slice(0, i));
        arrived?.push(now);
        rest = rest.slice(i + 1);
      }
    }
    if (rest) {
      into.push(rest);
      arrived?.push(Date.now());
    }
  })();
}

/** A line of `--json --live`: a tapwire.v1.FlowEvent, and when it reached the test. */
export type JsonFlowEvent = any;

export interface Tapwire {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  flows: JsonFlow[];
  /** With --json --live: every event so far, each with `arrivedMs` (Date.now() when read). */
  events: JsonFlowEvent[];
  /** stdout's lines as printed (the terminal view when started without --json). */
  stdout: string[];
  stderr: string[];
  /** Flows seen so far that match. */
  matching(pred: (f: JsonFlow) => boolean): JsonFlow[];
  waitForFlows(pred: (f: JsonFlow) => boolean, count: number, timeoutMs?: number): Promise<JsonFlow[]>;
  /** SIGINT (or `signal`); fails unless tapwire exits 0 within 2 s with its summary line. Returns that line. */
  stop(signal?: "SIGINT" | "SIGTERM"): Promise<string>;
}

const freshDirs: string[] = [];
atRunEnd(() => {
  for (const d of freshDirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of `file` in a fresh directory (removed when the run ends): another file, which
 * nothing has run or probed — a program as a user meets it for the first time. */
export function freshCopy(file: string, name: string): string {
  const dir = mkdtempSync(`${tmpdir()}/tapwire-fresh-`);
  freshDirs.push(dir);
  copyFileSync(file, `${dir}/${name}`);
  chmodSync(`${dir}/${name}`, 0o755);
  return `${dir}/${name}`;
}

/** Every tapwire and every peer a test started: one a failed test left running is killed when
 * the run ends (test/support/run-end.ts), so none outlives the run. Tests stop their own in
 * `finally`: until the run ends, a leftover tapwire would probe what later tests run. */
const started = new Set<Subprocess>();
atRunEnd(() => {
  for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
});

/** `tapwire capture --json ARGS`, or with `{ json: false }` the terminal view. */
export async function startTapwire(args: string[] = [], opts: { json?: boolean; command?: "capture" | "serve" } = {}): Promise<Tapwire> {
  const command = opts.command ?? "capture";
  const json = opts.json ?? command === "capture";
  const proc = Bun.spawn([TAPWIRE, command, ...(json ? ["--json"] : []), ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  started.add(proc);
  void proc.exited.then(() => started.delete(proc));
  const out: string[] = [];
  const outArrived: number[] = [];
  const err: string[] = [];
  const outDone = collectLines(proc.stdout, out, outArrived);
  const errDone = collectLines(proc.stderr, err);
  const flows: JsonFlow[] = [];
  const events: JsonFlowEvent[] = [];
  let parsed = 0;
  const parse = () => {
    if (json) {
      for (; parsed < out.length; parsed++) {
        const line = out[parsed];
        if (!line.trim()) continue;
        if (line.startsWith('{"flowId":')) {
          // --live: every event is the canonical proto JSON of FlowEvent; an ended event's
          // flow is also one of `flows`.
          const canonical = toJsonString(FlowEventSchema, fromJsonString(FlowEventSchema, line));
          if (canonical !== line) throw new Error(`not canonical proto JSON:\n${line}\nexpected:\n${canonical}`);
          const ev = JSON.parse(line);
          events.push({ ...ev, arrivedMs: outArrived[parsed] });
          if (ev.ended) flows.push(ev.ended);
          continue;
        }
        // Every flow tapwire prints is the canonical proto JSON of its message, to the byte
        // (tapwire writes it by hand for speed: src/sinks/flow-json.ts).
        const canonical = toJsonString(FlowSchema, fromJsonString(FlowSchema, line));
        if (canonical !== line) throw new Error(`not canonical proto JSON:\n${line}\nexpected:\n${canonical}`);
        flows.push(JSON.parse(line));
      }
    }
    return flows;
  };
  try {
    await waitFor("tapwire's ready line", () => {
      if (proc.exitCode !== null) throw new Error(`tapwire exited with ${proc.exitCode}: ${err.join("\n")}`);
      return err.some((l) => l.startsWith("ready"));
    }, 30000);
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }
  const t: Tapwire = {
    proc,
    get flows() {
      return parse();
    },
    get events() {
      parse();
      return events;
    },
    stdout: out,
    stderr: err,
    matching: (pred) => parse().filter(pred),
    waitForFlows: (pred, count, timeoutMs = 10000) =>
      waitFor(`${count} flows`, () => {
        const m = parse().filter(pred);
        return m.length >= count ? m : undefined;
      }, timeoutMs).catch((e) => {
        throw new Error(`${e.message}; got ${parse().filter(pred).length} matching of ${parse().length}: ${JSON.stringify(parse()).slice(0, 3000)}\nstderr: ${err.join("\n")}`);
      }),
    async stop(signal = "SIGINT") {
      if (proc.exitCode !== null) throw new Error(`tapwire had already exited with ${proc.exitCode}: ${err.join("\n")}`);
      const t0 = performance.now();
      proc.kill(signal);
      const code = await Promise.race([proc.exited, Bun.sleep(2000).then(() => "timeout" as const)]);
      if (code === "timeout") {
        proc.kill("SIGKILL");
        throw new Error(`tapwire did not exit within 2 s of ${signal}`);
      }
      await Promise.all([outDone, errDone]);
      parse();
      expect(performance.now() - t0).toBeLessThan(2000);
      if (code !== 0) throw new Error(`tapwire exited with ${code} after ${signal}: ${err.join("\n").slice(-2000)}`);
      const summary = err.findLast((l) => l.startsWith("tapwire: "));
      if (!summary) throw new Error(`tapwire printed no summary line: ${err.join("\n")}`);
      return summary;
    },
  };
  return t;
}

export interface Peer {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  lines: string[];
  /** Its stderr, as it comes. */
  errLines: string[];
  waitLine(pred: (l: string) => boolean, timeoutMs?: number): Promise<string>;
  send(line: string): void;
  stop(): Promise<void>;
}

/** A long-running program (server or held client) whose stdout lines can be awaited. */
export function startPeer(cmd: string[], opts: { cwd?: string } = {}): Peer {
  const proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe", cwd: opts.cwd });
  started.add(proc);
  void proc.exited.then(() => started.delete(proc));
  const lines: string[] = [];
  const errLines: string[] = [];
  const outDone = collectLines(proc.stdout, lines);
  void collectLines(proc.stderr, errLines);
  return {
    proc,
    lines,
    errLines,
    waitLine: (pred, timeoutMs = 10000) =>
      waitFor(`a line from ${cmd.join(" ")}`, async () => {
        const line = lines.find(pred);
        if (line !== undefined) return line;
        if (proc.exitCode === null) return undefined;
        // It has exited: its last lines may still be on their way.
        await outDone;
        const last = lines.find(pred);
        if (last === undefined) throw new Error(`${cmd[0]} exited with ${proc.exitCode}: ${errLines.join("\n")}`);
        return last;
      }, timeoutMs),
    send(line) {
      proc.stdin.write(line + "\n");
      proc.stdin.flush();
    },
    async stop() {
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(2000)]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
}

/** Start a server and wait until it accepts connections. */
export async function startServer(cmd: string[], host: string, port: number, opts: { cwd?: string } = {}): Promise<Peer> {
  const peer = startPeer(cmd, opts);
  await waitFor(`${cmd.join(" ")} to listen on ${host}:${port}`, async () => {
    if (peer.proc.exitCode !== null) throw new Error(`${cmd[0]} exited with ${peer.proc.exitCode}: ${peer.errLines.join("\n").slice(-2000)}`);
    return canConnect(host, port);
  });
  return peer;
}

/** Debian's nginx on 127.0.0.1:`port`, its files in `dir`; `server` is the rest of its server
 * block (root, locations). One worker, no access log, keep-alive without limit. */
export function startNginx(dir: string, port: number, server: string): Promise<Peer> {
  chmodSync(dir, 0o755); // its workers run as nobody
  mkdirSync(`${dir}/logs`, { recursive: true });
  writeFileSync(
    `${dir}/nginx.conf`,
    `worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/logs/error.log;\nevents { worker_connections 256; }\n` +
      `http { access_log off; keepalive_requests 100000; client_body_temp_path ${dir}/tmp; server { listen 127.0.0.1:${port}; ${server} } }\n`,
  );
  return startServer(["/usr/sbin/nginx", "-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"], "127.0.0.1", port);
}

export interface RunResult {
  pid: number;
  exitCode: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Run a client to completion. */
export async function run(cmd: string[], opts: { stdin?: Uint8Array } = {}): Promise<RunResult> {
  const proc = Bun.spawn(cmd, { stdin: opts.stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text()]);
  const exitCode = await proc.exited;
  return { pid: proc.pid, exitCode, stdout, stderr };
}

export function header(list: { name: string; value: string }[] | undefined, name: string): string | undefined {
  return list?.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

export function b64(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString("base64");
}

export function fromB64(s: string | undefined): Buffer {
  return Buffer.from(s ?? "", "base64");
}
