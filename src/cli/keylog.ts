// `tapwire keylog [-o FILE]`: the TLS secrets of every Go program on the host, in the NSS
// key log format Wireshark reads ("LABEL <client random hex> <secret hex>"). Go programs
// running now and those started later are probed at crypto/tls.(*Config).writeKeyLog; each
// line is written once (client and server of one connection derive the same secrets, and a
// restarted function entry reports one twice) and flushed at once, so a Wireshark reading
// the file while it grows decrypts live traffic. A Go program started later waits at its
// first exec until its file is probed (the exec hold that capture uses), so its very first
// handshake is seen; with --no-hold or --pid it is probed on its exec, a few ms late.
import { exePath, pids, rootPath } from "../procs/proc.ts";
import { closeSync, constants, fchmodSync, fstatSync, openSync, writeSync } from "node:fs";
import { loadProbes, type UprobeLink } from "../bpf/loader.ts";
import { readBpfObject } from "../bpf/object.ts";
import { decodeEvent, DecodeError } from "../bpf/events.ts";
import { openElf, ElfError } from "../elfkit/elf.ts";
import { goKeyLogTarget } from "../probes/go-keylog.ts";
import { fileIdentity } from "../probes/file-identity.ts";
import { stopSignal } from "./signals.ts";
import { startExecHold, ExecHoldUnavailable, type ExecHold } from "../probes/exec-hold.ts";
import { holdSummary } from "../capture/holding.ts";
import { execHolderCommand } from "./holder-command.ts";
import { startDrainLoop } from "../capture/drain-loop.ts";
import { fileError } from "./file-errors.ts";
import { UsageError, type KeylogArgs } from "./args.ts";

/** Lines remembered to write each once; older ones are forgotten past this many. */
const MAX_REMEMBERED = 100_000;

export async function keylog(args: KeylogArgs): Promise<number> {
  const stop = stopSignal();
  const log = (line: string) => process.stderr.write(line + "\n");
  const object = await readBpfObject();
  const probes = loadProbes({
    object,
    ringBytes: 1 << 20,
    selfPid: process.pid,
    programFilter: (name) => name === "tw_go_keylog" || name === "tw_process_exec" || name === "tw_process_exit",
    filters: { pids: args.pids },
  });
  // Opened after the probes load: a mistake in them leaves no empty file behind.
  let fd = 1;
  if (args.output) {
    try {
      fd = openKeyLog(args.output);
    } catch (e) {
      await probes.close();
      throw e;
    }
  }

  /** Probed files by identity, with the processes running them: a file's probe goes when its last process does. */
  const probed = new Map<string, { link: UprobeLink; pids: Set<number> }>();
  const fileOfPid = new Map<number, string>();
  /** Files looked at that have nothing to probe (not Go, no crypto/tls). */
  const nothing = new Set<string>();
  let programs = 0;
  /** Files settled at the start (probed, or nothing to probe): their execs are never held. */
  const settledPaths: string[] = [];
  /** Looks at `path`, the file `pid` runs (`exe` names it in messages), and probes it if it is
   * Go with crypto/tls. True when the file is settled: probed, or with nothing to probe. */
  const probeFile = (pid: number, path: string, exe: string): boolean => {
    const key = fileIdentity(path);
    if (key === undefined) return false;
    if (nothing.has(key)) return true;
    const known = probed.get(key);
    if (known) {
      known.pids.add(pid);
      fileOfPid.set(pid, key);
      return true;
    }
    let elf;
    try {
      elf = openElf(path);
    } catch (e) {
      if (!(e instanceof ElfError)) log(`keylog: cannot read ${exe}: ${(e as Error).message}`);
      nothing.add(key);
      return true;
    }
    try {
      const target = goKeyLogTarget(elf);
      if (target?.fileOffset === undefined) {
        if (args.verbose && target && target.unsupported !== "it does not use crypto/tls") log(`keylog: not probing ${exe}: ${target.unsupported}`);
        nothing.add(key);
        return true;
      }
      const link = probes.attachUprobe({ program: "tw_go_keylog", path, targets: [{ offset: target.fileOffset, cookie: 0 }], retprobe: false });
      probed.set(key, { link, pids: new Set([pid]) });
      fileOfPid.set(pid, key);
      programs++;
      if (args.verbose) log(`keylog: probing ${target.buildInfo.version} in ${exe} (pid ${pid})`);
      return true;
    } catch (e) {
      log(`keylog: cannot probe ${exe}: ${(e as Error).message}`);
      nothing.add(key);
      return true;
    } finally {
      elf.close();
    }
  };
  const consider = (pid: number, atStart = false) => {
    const exe = exePath(pid);
    if (exe === undefined) return; // gone, or a kernel thread
    const path = rootPath(pid, exe);
    if (probeFile(pid, path, exe) && atStart) settledPaths.push(path);
  };
  const exited = (pid: number) => {
    const key = fileOfPid.get(pid);
    if (key === undefined) return;
    fileOfPid.delete(pid);
    const p = probed.get(key);
    if (!p) return;
    p.pids.delete(pid);
    if (p.pids.size === 0) {
      p.link.detach();
      probed.delete(key);
    }
  };
  for (const pid of args.pids.length ? args.pids : pids()) if (pid !== process.pid) consider(pid, true);

  // Go programs started from now on wait at their first exec until probed (not with --pid:
  // only the processes named are followed).
  let hold: ExecHold | undefined;
  if (args.hold && !args.pids.length) {
    try {
      hold = await startExecHold({
        timeoutMs: args.holdTimeoutMs,
        holderCommand: execHolderCommand(),
        // `file` is keylog's own descriptor of the very file being executed.
        decide: (pid, file) => (probeFile(pid, file, exePath(pid) ?? file) ? "known" : "retry"),
        log,
      });
      hold.ignore(settledPaths);
    } catch (e) {
      if (!(e instanceof ExecHoldUnavailable)) throw e;
      log(`tapwire: programs started from now on are not held until probed (${e.message}): their first handshakes may be missed`);
    }
  }

  const written = new Set<string>();
  let secrets = 0;
  let unreadable = 0;
  /** Set when the output cannot be written: keylog stops. */
  let writeFailure: NodeJS.ErrnoException | undefined;
  let failed!: () => void;
  const writeFailed = new Promise<void>((resolve) => (failed = resolve));
  const onRecord = (bytes: Uint8Array, view: DataView, offset: number, length: number) => {
    if (writeFailure) return;
    let e;
    try {
      e = decodeEvent(bytes, view, offset, length);
    } catch (err) {
      if (err instanceof DecodeError) return;
      throw err;
    }
    if (e.kind === "proc-exec") consider(e.pid);
    else if (e.kind === "proc-exit") exited(e.pid);
    if (e.kind !== "tls-secret") return;
    if (!e.label || !e.clientRandom || !e.secret) {
      unreadable++;
      return;
    }
    const line = `${e.label} ${e.clientRandom} ${e.secret}\n`;
    if (written.has(line)) return;
    if (written.size >= MAX_REMEMBERED) written.delete(written.values().next().value!);
    written.add(line);
    try {
      writeSync(fd, line);
      secrets++;
    } catch (err) {
      writeFailure = err as NodeJS.ErrnoException;
      failed();
    }
  };

  log(`ready: ${programs} Go program${programs === 1 ? "" : "s"} probed for TLS secrets; writing ${args.output || "to stdout"}`);
  const drain = startDrainLoop(probes.ring, onRecord);
  await Promise.race([stop.signalled, writeFailed]);
  drain.stop();
  await hold?.close();
  const drops = probes.counters().drop_ringbuf_events ?? 0;
  for (const p of probed.values()) p.link.detach();
  await probes.close();
  if (fd !== 1) closeSync(fd);
  // A reader that went away (keylog | head) ends keylog quietly; any other failure is said.
  if (writeFailure && writeFailure.code !== "EPIPE") {
    log(`tapwire: cannot write ${args.output || "stdout"}: ${writeFailure.code ?? writeFailure.message}`);
    return 1;
  }
  log(
    `tapwire: ${secrets} secrets written from ${programs} Go program${programs === 1 ? "" : "s"}` +
      (unreadable ? `; ${unreadable} could not be read` : "") +
      (drops ? `; ${drops} lost (ring buffer full)` : "") +
      (hold ? `; ${holdSummary(hold)}` : ""),
  );
  return 0;
}

/** The key log file, appended to: created 0600; an existing one must be ours and private. */
function openKeyLog(path: string): number {
  let fd;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === "ELOOP" ? `-o ${path}: a symbolic link (not followed: the file will hold secrets)` : `-o ${fileError(path, e)}`);
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.uid !== process.getuid?.()) {
    closeSync(fd);
    throw new UsageError(`-o ${path}: ${st.isFile() ? "owned by another user" : "not a regular file"} (the file will hold TLS secrets)`);
  }
  if (st.mode & 0o077) fchmodSync(fd, 0o600); // secrets: for its owner only
  return fd;
}
