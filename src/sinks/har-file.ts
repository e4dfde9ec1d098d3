// A HAR file written a flow at a time that is a whole, valid HAR document after every flow,
// whenever tapwire stops — SIGKILL included. The file is the log's head, the entries and the
// closing tail; each entry is written (one positioned write) where the tail began, followed
// by the tail again, so the bytes before it never change and the tail is always there.
//
// The writes are made by a small process of its own (`tapwire __har-writer`), fed entries
// through a pipe: the kernel copies a long write a page at a time and stops between pages
// when its process is killed, which would leave an entry cut in the file — and no layout of
// the file avoids that, since nothing but white space may follow a JSON document's end. When
// tapwire is killed, the writer reads what is in the pipe, writes every whole entry, and
// leaves (an entry cut in the pipe is left out). A write that fails (disk full) puts the tail
// back where it was — those bytes were the file's already — so the file stays valid; the
// writer says why and stops. Memory is bounded: past `maxQueuedBytes` waiting for the
// writer, entries are dropped, counted.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, fstatSync, ftruncateSync, openSync, writeSync } from "node:fs";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { flowToHarEntry, HAR_HEAD, HAR_TAIL, isHarFlow } from "./har.ts";
import type { FlowSink } from "./sink.ts";

export interface HarFileSink extends FlowSink {
  /** Entries handed to the writer (all written unless `failed` says otherwise). */
  readonly sent: number;
  /** Entries the file holds, as the writer last said. */
  readonly written: number;
  /** Entries dropped because the writer fell `maxQueuedBytes` behind. */
  readonly dropped: number;
  /** The first write error, with how many entries the file holds. Nothing more is written. */
  readonly failed: Promise<{ error: NodeJS.ErrnoException; written: number }>;
  /** Lets the writer finish what it was given (at most `graceMs`), then ends it. */
  close(graceMs?: number): Promise<void>;
}

export interface HarFileOptions {
  /** How to start the writer process: the command, to which the file's tail offset is added. */
  writerCommand: string[];
  maxQueuedBytes?: number;
}

const DEFAULT_QUEUE = 16 << 20;
const FRAME_HEADER = 4;

/** Opens the file — created 0600 (it holds cookies and credentials) or emptied; a symbolic
 * link is not followed and another user's file not taken (as for the key log); a regular
 * file, since entries are written in place (a FIFO is refused, not waited on) — writes an
 * empty log, and starts the writer. Throws an error with a `code`. */
export function createHarFileSink(path: string, opts: HarFileOptions): HarFileSink {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  let child: ChildProcess;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error("not a regular file (a HAR file is rewritten in place)"), { code: "ENOTREG" });
    if (st.uid !== process.getuid?.()) throw Object.assign(new Error("owned by another user (the file will hold headers and cookies)"), { code: "EOWNER" });
    ftruncateSync(fd, 0);
    const empty = Buffer.from(HAR_HEAD + HAR_TAIL);
    writeAll(fd, empty, 0);
    const [cmd, ...args] = opts.writerCommand;
    // The file is the writer's fd 3; it reports on its stdout.
    child = spawn(cmd!, [...args, String(empty.length - HAR_TAIL.length)], { stdio: ["pipe", "pipe", "inherit", fd] });
  } finally {
    closeSync(fd);
  }
  const budget = opts.maxQueuedBytes ?? DEFAULT_QUEUE;
  let sent = 0;
  let dropped = 0;
  let stopped = false;
  let fail!: (f: { error: NodeJS.ErrnoException; written: number }) => void;
  const failed = new Promise<{ error: NodeJS.ErrnoException; written: number }>((r) => (fail = r));
  // The writer's reports, a line each: "wrote N BYTES" (entries in the file, input bytes
  // taken), "failed CODE N message". Bytes sent and not yet taken are what waits: bounded.
  let written = 0;
  let sentBytes = 0;
  let takenBytes = 0;
  let report = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (text: string) => {
    report += text;
    let nl;
    while ((nl = report.indexOf("\n")) >= 0) {
      const line = report.slice(0, nl);
      report = report.slice(nl + 1);
      const wrote = /^wrote (\d+) (\d+)$/.exec(line);
      if (wrote) [written, takenBytes] = [Number(wrote[1]), Number(wrote[2])];
      const m = /^failed (\S+) (\d+) (.*)$/.exec(line);
      if (m && !stopped) {
        stopped = true;
        written = Number(m[2]);
        fail({ error: Object.assign(new Error(m[3]!), { code: m[1] }) as NodeJS.ErrnoException, written });
      }
    }
  });
  child.stdin!.on("error", () => {}); // the writer gone: said by its report or its exit
  const exited = new Promise<number | null>((r) => {
    child.once("exit", (code) => r(code));
    // It could not be started at all: as if it had failed at once.
    child.once("error", (e: NodeJS.ErrnoException) => {
      if (!stopped) {
        stopped = true;
        fail({ error: Object.assign(new Error(`the HAR writer could not start: ${e.message}`), { code: "EIO" }) as NodeJS.ErrnoException, written: 0 });
      }
      r(null);
    });
  });
  void exited.then((code) => {
    if (!stopped && code !== 0 && !closing) {
      stopped = true;
      fail({ error: Object.assign(new Error(`the HAR writer ended (exit ${code})`), { code: "EIO" }) as NodeJS.ErrnoException, written: sent });
    }
  });
  let closing = false;

  return {
    flow(flow) {
      if (stopped || closing || !isHarFlow(flow)) return;
      const text = JSON.stringify(flowToHarEntry(flow));
      const n = Buffer.byteLength(text);
      if (sentBytes - takenBytes + n + FRAME_HEADER > budget) {
        dropped++;
        return;
      }
      const frame = Buffer.allocUnsafe(FRAME_HEADER + n);
      frame.writeUInt32LE(n, 0);
      frame.write(text, FRAME_HEADER);
      child.stdin!.write(frame);
      sentBytes += frame.length;
      sent++;
    },
    flush() {},
    async close(graceMs = 1000) {
      if (closing) return;
      closing = true;
      child.stdin!.end();
      const code = await Promise.race([exited, Bun.sleep(graceMs).then(() => "late" as const)]);
      if (code === "late") child.kill("SIGKILL");
    },
    get sent() {
      return sent;
    },
    get written() {
      return written;
    },
    get dropped() {
      return dropped;
    },
    failed,
  };
}

/** The writer process: entries framed [u32 LE length][JSON] on `input`, the file on `fd`, its
 * tail at `end`. Each whole entry is written with the tail after it in one positioned write,
 * "wrote N BYTES" said after each chunk of input (entries written, input bytes taken); on an error the tail is put back, "failed CODE N
 * message" said, and 1 returned. */
export async function runHarWriter(input: AsyncIterable<Uint8Array>, fd: number, end: number, say: (line: string) => void): Promise<number> {
  const tail = Buffer.from(HAR_TAIL);
  let written = 0;
  let taken = 0;
  let pending = Buffer.alloc(0);
  for await (const chunk of input) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : Buffer.from(chunk);
    let at = 0;
    while (pending.length - at >= FRAME_HEADER) {
      const n = pending.readUInt32LE(at);
      if (pending.length - at - FRAME_HEADER < n) break;
      const sep = written ? 2 : 0;
      const out = Buffer.allocUnsafe(sep + n + tail.length);
      if (sep) out.write(",\n");
      pending.copy(out, sep, at + FRAME_HEADER, at + FRAME_HEADER + n);
      tail.copy(out, sep + n);
      at += FRAME_HEADER + n;
      taken += FRAME_HEADER + n;
      try {
        writeAll(fd, out, end);
        end += sep + n;
        written++;
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        try {
          writeAll(fd, tail, end);
          ftruncateSync(fd, end + tail.length);
        } catch {
          // nothing more can be done for the file
        }
        say(`failed ${err.code ?? "EIO"} ${written} ${err.message.split("\n")[0]}`);
        return 1;
      }
    }
    pending = pending.subarray(at);
    if (at) say(`wrote ${written} ${taken}`);
  }
  // Input ended (tapwire closed it, or is gone): an entry cut short in the pipe is left out.
  return 0;
}

/** Writes all of `bytes` at `at`; returns the end. */
function writeAll(fd: number, bytes: Uint8Array, at: number): number {
  for (let off = 0; off < bytes.length; ) {
    const n = writeSync(fd, bytes, off, bytes.length - off, at + off);
    if (n === 0) throw Object.assign(new Error("wrote nothing"), { code: "EIO" });
    off += n;
  }
  return at + bytes.length;
}
