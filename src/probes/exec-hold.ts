// Holding the first exec of every file tapwire has not seen until its probes are attached,
// so a program started after tapwire is seen from its first request (a Go client that makes
// one request and exits would otherwise be over before its file is read).
//
// The kernel side is fanotify's exec permission event (FAN_OPEN_EXEC_PERM), on every
// filesystem of the host: an exec of a marked file waits until the event is answered. The
// answering is done by the exec holder (src/probes/exec-holder.ts), a process of its own with
// a hard deadline, so nothing in tapwire can leave an exec waiting. This side hears of each
// held exec, takes its own descriptor of the file (pidfd_getfd: the very file the kernel is
// executing, in whatever mount namespace), has it looked at, and answers. A file that is
// settled is marked ignored in the kernel: its next execs do not even wake tapwire.
import { fdPath } from "../procs/proc.ts";
import type { Subprocess } from "bun";
import { fstatSync } from "node:fs";
import { closeFd, pidfdGetfd, pidfdOpen } from "../bpf/fanotify.ts";
import type { FileVerdict } from "./tls-probes.ts";

export const DEFAULT_HOLD_TIMEOUT_MS = 200;
/** How long the holder may take to start and mark the filesystems. */
const START_TIMEOUT_MS = 5000;

export interface ExecHoldStats {
  /** Execs that waited for tapwire (first execs of files it had not settled). */
  held: number;
  /** ... of which the holder let go at the deadline, unprobed. */
  timedOut: number;
  /** The longest and the summed time tapwire took to answer, in ms. */
  maxMs: number;
  totalMs: number;
}

export interface ExecHold {
  readonly stats: ExecHoldStats;
  /** Filesystems whose execs are held. */
  readonly filesystems: number;
  /** Filesystems that could not be marked, with the reason (their execs are not held). */
  readonly skipped: string;
  /** Files already settled: their execs are never held. */
  ignore(paths: string[]): void;
  /** Let every held exec go and stop the holder. */
  close(): Promise<void>;
}

export class ExecHoldUnavailable extends Error {}

export interface ExecHoldOptions {
  timeoutMs: number;
  /** The command line that runs the holder (this executable with `__exec-holder`). */
  holderCommand: string[];
  /** Look at a held exec's file (`file` is tapwire's descriptor of it, /proc/self/fd/N); the
   * exec goes on when this returns. */
  decide(pid: number, file: string): FileVerdict;
  /** Called once the exec has been let go, with `file` still open. */
  afterAnswer?(file: string): void;
  log(line: string): void;
}

/** Lines of a stream, one call each, as they come. */
async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      onLine(line);
    }
  }
}

export async function startExecHold(opts: ExecHoldOptions): Promise<ExecHold> {
  const proc: Subprocess<"pipe", "pipe", "inherit"> = Bun.spawn([...opts.holderCommand, String(opts.timeoutMs), String(process.pid)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const stats: ExecHoldStats = { held: 0, timedOut: 0, maxMs: 0, totalMs: 0 };
  let pidfd = -1;
  let closed = false;
  let ready: (line: string) => void = () => {};
  const started = new Promise<string>((resolve) => (ready = resolve));

  const send = (line: string) => {
    if (closed) return;
    try {
      proc.stdin.write(line + "\n");
      proc.stdin.flush();
    } catch {
      // The holder is gone: the kernel has let its execs go.
    }
  };

  const onEvent = (id: number, pid: number, holderFd: number, ino: number) => {
    const t0 = performance.now();
    stats.held++;
    const fd = pidfdGetfd(pidfd, holderFd);
    if (fd < 0) return; // let go already (the deadline passed while this one waited)
    let verdict: FileVerdict = "retry";
    const file = fdPath("self", fd);
    try {
      // A number the holder has reused since would name another file.
      if (fstatSync(fd).ino !== ino) return closeFd(fd);
      verdict = opts.decide(pid, file);
    } catch (e) {
      opts.log(`tapwire: exec hold: ${(e as Error).message}`);
    }
    send(`A ${id} ${verdict === "known" ? "k" : "r"}`);
    const ms = performance.now() - t0;
    stats.totalMs += ms;
    if (ms > stats.maxMs) stats.maxMs = ms;
    try {
      opts.afterAnswer?.(file);
    } catch (e) {
      opts.log(`tapwire: exec hold: ${(e as Error).message}`);
    } finally {
      closeFd(fd);
    }
  };

  const lines = forEachLine(proc.stdout, (line) => {
    const [kind, ...f] = line.split(" ");
    if (kind === "E") onEvent(Number(f[0]), Number(f[1]), Number(f[2]), Number(f[3]));
    else if (kind === "T") stats.timedOut++;
    else if (kind === "R" || kind === "X") ready(line);
    else if (kind === "W") opts.log(`tapwire: exec hold: ${f.join(" ")}`);
  }).catch(() => {});
  void lines.then(() => {
    if (!closed) opts.log("tapwire: the exec holder has stopped: programs started from now on may be seen only from their second request");
    ready("X the exec holder exited");
  });

  const first = await Promise.race([started, Bun.sleep(START_TIMEOUT_MS).then(() => "X the exec holder did not start")]);
  if (!first.startsWith("R ")) {
    proc.kill("SIGKILL");
    throw new ExecHoldUnavailable(first.slice(2));
  }
  pidfd = pidfdOpen(proc.pid);
  if (pidfd < 0) {
    proc.kill("SIGKILL");
    throw new ExecHoldUnavailable("pidfd_open is not supported (Linux 5.6+ needed)");
  }
  const fields = Object.fromEntries(first.slice(2).split(/ (?=\w+=)/).map((kv) => kv.split("=", 2) as [string, string]));

  return {
    stats,
    filesystems: Number(fields.marked ?? 0),
    skipped: fields.skipped ?? "",
    ignore(paths) {
      for (const p of paths) if (!p.includes("\n")) send(`I ${p}`);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        proc.stdin.end();
      } catch {}
      // Its pipe ended, the holder lets everything go and exits.
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(1000).then(() => false)]);
      if (!exited) proc.kill("SIGKILL");
      if (pidfd >= 0) closeFd(pidfd);
    },
  };
}
