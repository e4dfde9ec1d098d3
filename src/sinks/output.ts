// Where printed flows go (stdout): a queue with a fixed budget, written out on its own.
// Whatever the reader does — reads slowly, stops reading, goes away — capture never waits
// for it and memory stays bounded: a flow that does not fit in the budget is dropped whole
// (never half a line) and counted. A reader that goes away (`tapwire | head`) is said by
// `failed` (EPIPE), as is any other write error; closing waits a little for what is queued,
// then drops the rest (counted), so tapwire stops promptly even when no one reads again.
import { fstatSync, write, writeSync } from "node:fs";

export const DEFAULT_OUTPUT_BUDGET = 32 << 20;
/** /dev/null's device number (1, 3). */
const DEV_NULL = (1 << 8) | 3;
/** Bytes encoded for one write. */
const CHUNK_BYTES = 1 << 20;
/** How soon a write that found the pipe full (EAGAIN) is tried again. */
const RETRY_MS = 10;

export interface OutputWriter {
  /** A flow's text, whole; false when it did not fit in the budget (dropped, counted). */
  write(text: string): boolean;
  /** Starts writing what is queued; resolves once it is written (or the writer failed). */
  flush(): Promise<void>;
  /** Waits up to `graceMs` for what is queued; what is left is dropped, counted. */
  close(graceMs: number): Promise<void>;
  /** Texts (flows) dropped: the budget was full, or left at close. */
  readonly dropped: number;
  /** The first write error: EPIPE when the reader went away. */
  readonly failed: Promise<NodeJS.ErrnoException>;
}

export function createOutputWriter(opts: { fd?: number; budgetBytes?: number } = {}): OutputWriter {
  const fd = opts.fd ?? 1;
  const budget = opts.budgetBytes ?? DEFAULT_OUTPUT_BUDGET;
  // Texts waiting, taken from `head` on (no shift(): it moves every element).
  let queue: string[] = [];
  let head = 0;
  /** Queued texts' length (UTF-16 units: bytes, for the ASCII flows mostly are). */
  let queued = 0;
  /** Bytes being written, until they are out. */
  let writing = 0;
  let dropped = 0;
  let error: NodeJS.ErrnoException | undefined;
  let fail!: (e: NodeJS.ErrnoException) => void;
  const failed = new Promise<NodeJS.ErrnoException>((r) => (fail = r));
  let idle: (() => void)[] = [];
  // A regular file or /dev/null takes a write at once: written in place, no round trip through
  // the thread pool (whose completions wait for the event loop, which capture keeps busy).
  // A pipe, socket or terminal can block: written asynchronously.
  const writesAtOnce = (() => {
    try {
      const st = fstatSync(fd);
      return st.isFile() || (st.isCharacterDevice() && st.rdev === DEV_NULL);
    } catch {
      return false;
    }
  })();
  /** Reused for writes made at once; an asynchronous write gets a buffer of its own. */
  const syncChunk = Buffer.allocUnsafe(CHUNK_BYTES);

  const settle = () => {
    for (const r of idle.splice(0)) r();
  };

  /** Encodes queued texts straight into `into` (no joined string, no second copy), as many as
   * fit; a text larger than the chunk gets a buffer of its size. Returns the bytes to write. */
  function takeChunk(into: Buffer): Buffer {
    let buf = into;
    let at = 0;
    while (head < queue.length) {
      const text = queue[head]!;
      // A UTF-16 unit is at most 3 bytes of UTF-8.
      if (at + text.length * 3 > buf.length) {
        if (at > 0) break;
        buf = Buffer.allocUnsafe(text.length * 3);
      }
      at += buf.write(text, at);
      queued -= text.length;
      queue[head++] = "";
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
    }
    return buf.subarray(0, at);
  }

  function failWith(e: NodeJS.ErrnoException): void {
    error = e;
    writing = 0;
    fail(e);
    settle();
  }

  function pump(): void {
    if (writing || error) return;
    if (writesAtOnce) {
      try {
        while (head < queue.length) {
          const chunk = takeChunk(syncChunk);
          for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
        }
      } catch (e) {
        return failWith(e as NodeJS.ErrnoException);
      }
      return settle();
    }
    if (head === queue.length) return settle();
    const chunk = takeChunk(Buffer.allocUnsafe(CHUNK_BYTES));
    writing = chunk.length;
    const writeFrom = (at: number) => {
      write(fd, chunk, at, chunk.length - at, null, (err, n) => {
        // A non-blocking stdout whose reader is behind: try again shortly.
        if (err?.code === "EAGAIN") return void setTimeout(() => writeFrom(at), RETRY_MS);
        if (err) return failWith(err);
        if (at + n < chunk.length) return writeFrom(at + n);
        writing = 0;
        pump();
      });
    };
    writeFrom(0);
  }

  return {
    write(text) {
      if (error) return false;
      // What is being written counts against the budget too, until it is out.
      if (queued + text.length + writing > budget) {
        dropped++;
        return false;
      }
      queue.push(text);
      queued += text.length;
      return true;
    },
    flush() {
      const done = new Promise<void>((r) => idle.push(r));
      pump();
      return done;
    },
    async close(graceMs) {
      await Promise.race([this.flush(), Bun.sleep(graceMs)]);
      dropped += queue.length - head;
      queue = [];
      head = 0;
      queued = 0;
    },
    get dropped() {
      return dropped;
    },
    failed,
  };
}
