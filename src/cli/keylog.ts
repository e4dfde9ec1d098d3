// `tapwire keylog [-o FILE]`: the TLS secrets of every Go program on the host, in the NSS
// key log format Wireshark reads ("LABEL <client random hex> <secret hex>"). Go programs
// running now and those started later are probed at crypto/tls.(*Config).writeKeyLog; each
// line is written once (client and server of one connection derive the same secrets, and a
// restarted function entry reports one twice) and flushed at once, so a Wireshark reading
// the file while it grows decrypts live traffic.
import { closeSync, openSync, readdirSync, readlinkSync, writeSync } from "node:fs";
import { loadProbes, type UprobeLink } from "../bpf/loader.ts";
import { readBpfObject } from "../bpf/object.ts";
import { decodeEvent, DecodeError } from "../bpf/events.ts";
import { openElf, ElfError } from "../elfkit/elf.ts";
import { goKeyLogTarget } from "../probes/go-keylog.ts";
import { fileIdentity } from "../probes/file-identity.ts";
import { untilSignal } from "./engine.ts";
import { UsageError } from "./args.ts";

export interface KeylogArgs {
  /** "" for stdout. */
  output: string;
  pids: number[];
  verbose: boolean;
}

/** Lines remembered to write each once; older ones are forgotten past this many. */
const MAX_REMEMBERED = 100_000;
const POLL_MS = 5;

export async function keylog(args: KeylogArgs): Promise<number> {
  const log = (line: string) => process.stderr.write(line + "\n");
  const object = await readBpfObject();
  const probes = loadProbes({
    object,
    ringBytes: 1 << 20,
    selfPid: process.pid,
    programFilter: (name) => name === "tw_go_keylog" || name === "tw_process_exec",
    filters: { pids: args.pids },
  });
  if (!probes.uprobeMulti) {
    await probes.close();
    log("tapwire: keylog needs multi-uprobe links (Linux 6.6+)");
    return 2;
  }
  // Opened after the probes load: a mistake in them leaves no empty file behind.
  let fd = 1;
  if (args.output) {
    try {
      fd = openSync(args.output, "a", 0o600);
    } catch (e) {
      await probes.close();
      throw new UsageError(`-o ${args.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  const seenFiles = new Set<string>();
  const links: UprobeLink[] = [];
  let programs = 0;
  const consider = (pid: number) => {
    let exe;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
    } catch {
      return; // gone, or a kernel thread
    }
    const path = `/proc/${pid}/root${exe}`;
    const key = fileIdentity(path);
    if (key === undefined || seenFiles.has(key)) return;
    seenFiles.add(key);
    let elf;
    try {
      elf = openElf(path);
    } catch (e) {
      if (!(e instanceof ElfError)) log(`keylog: cannot read ${exe}: ${(e as Error).message}`);
      return;
    }
    try {
      const target = goKeyLogTarget(elf);
      if (!target) return;
      if (target.fileOffset === undefined) {
        if (args.verbose && target.unsupported !== "it does not use crypto/tls") log(`keylog: not probing ${exe}: ${target.unsupported}`);
        return;
      }
      links.push(probes.attachUprobe({ program: "tw_go_keylog", path, targets: [{ offset: target.fileOffset, cookie: 0 }], retprobe: false }));
      programs++;
      if (args.verbose) log(`keylog: probing ${target.buildInfo.version} in ${exe} (pid ${pid})`);
    } catch (e) {
      log(`keylog: cannot probe ${exe}: ${(e as Error).message}`);
    } finally {
      elf.close();
    }
  };
  for (const entry of readdirSync("/proc")) if (/^\d+$/.test(entry) && Number(entry) !== process.pid) consider(Number(entry));

  const written = new Set<string>();
  let secrets = 0;
  let unreadable = 0;
  const onRecord = (bytes: Uint8Array, view: DataView, offset: number, length: number) => {
    let e;
    try {
      e = decodeEvent(bytes, view, offset, length);
    } catch (err) {
      if (err instanceof DecodeError) return;
      throw err;
    }
    if (e.kind === "proc-exec") consider(e.pid);
    if (e.kind !== "tls-secret") return;
    if (!e.label || !e.clientRandom || !e.secret) {
      unreadable++;
      return;
    }
    const line = `${e.label} ${e.clientRandom} ${e.secret}\n`;
    if (written.has(line)) return;
    if (written.size >= MAX_REMEMBERED) written.delete(written.values().next().value!);
    written.add(line);
    writeSync(fd, line);
    secrets++;
  };

  log(`ready: ${programs} Go program${programs === 1 ? "" : "s"} probed for TLS secrets; writing ${args.output || "to stdout"}`);
  let stopping = false;
  const loop = () => {
    if (stopping) return;
    probes.ring.drain(onRecord);
    setTimeout(loop, POLL_MS);
  };
  loop();
  await untilSignal();
  stopping = true;
  probes.ring.drain(onRecord);
  const drops = probes.counters().drop_ringbuf_events ?? 0;
  for (const l of links.splice(0)) l.detach();
  await probes.close();
  if (fd !== 1) closeSync(fd);
  log(
    `tapwire: ${secrets} secrets written from ${programs} Go program${programs === 1 ? "" : "s"}` +
      (unreadable ? `; ${unreadable} could not be read` : "") +
      (drops ? `; ${drops} lost (ring buffer full)` : ""),
  );
  return 0;
}
