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
/** Bytes per chunk of the queue: one write. */
const CHUNK_BYTES = 1 << 20;
/** How soon a write that found the pipe full (EAGAIN) is tried again. */
const RETRY_MS = 10;

export interface OutputWriter {
  /** A flow's text, whole; false when it did not fit in the budget (dropped, counted). */
  write(text: string): boolean;
  /** The same for a flow already in UTF-8 (copied: `bytes` may be reused at once). */
  writeBytes(bytes: Uint8Array): boolean;
  /** Starts writing what is queued; resolves once it is written (or the writer failed). */
  flush(): Promise<void>;
  /** Waits up to `graceMs` for what is queued; what is left is dropped, counted. */
  close(graceMs: number): Promise<void>;
  /** Texts (flows) dropped: the budget was full, or left at close. */
  readonly dropped: number;
  /** The first write error: EPIPE when the reader went away. */
  readonly failed: Promise<NodeJS.ErrnoException>;
}

/** Queued bytes: flows copied in as they come, written out a chunk at a time. */
interface Chunk {
  buf: Buffer;
  /** Bytes filled. */
  len: number;
  /** Where each flow in it ends: those not written out when the writer closes are dropped. */
  ends: number[];
}

export function createOutputWriter(opts: { fd?: number; budgetBytes?: number } = {}): OutputWriter {
  const fd = opts.fd ?? 1;
  const budget = opts.budgetBytes ?? DEFAULT_OUTPUT_BUDGET;
  // Chunks waiting, taken from `head` on (no shift(): it moves every element). The last one
  // is filled; one being written asynchronously is no longer filled.
  let chunks: Chunk[] = [];
  let head = 0;
  let sealed: Chunk | null = null;
  /** Bytes of the sealed chunk written so far. */
  let sealedWritten = 0;
  let closed = false;
  /** Bytes queued and not yet out, the chunk being written included. */
  let queued = 0;
  let writing = false;
  let dropped = 0;
  let error: NodeJS.ErrnoException | undefined;
  let fail!: (e: NodeJS.ErrnoException) => void;
  const failed = new Promise<NodeJS.ErrnoException>((r) => (fail = r));
  // One promise for "all queued is out", however many flushes wait for it (capture asks after
  // every batch: a reader that stays behind must not make them pile up).
  let idle: { promise: Promise<void>; resolve: () => void } | null = null;
  /** Chunk buffers written out, kept for reuse (a few: allocating 1 MiB is not free). */
  const spare: Buffer[] = [];
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

  const settle = () => {
    const waiting = idle;
    idle = null;
    waiting?.resolve();
  };

  /** The chunk to append n bytes to: the last one if it has room and is not being written. */
  function tailWithRoom(n: number): Chunk {
    const last = chunks[chunks.length - 1];
    if (last !== undefined && last !== sealed && last.buf.length - last.len >= n) return last;
    const buf = n <= CHUNK_BYTES ? (spare.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES)) : Buffer.allocUnsafe(n);
    const chunk: Chunk = { buf, len: 0, ends: [] };
    chunks.push(chunk);
    return chunk;
  }

  function written(chunk: Chunk): void {
    if (chunks[head] !== chunk) return; // let go at close
    queued -= chunk.len;
    if (chunk.buf.length === CHUNK_BYTES && spare.length < 2) spare.push(chunk.buf);
    chunks[head++] = undefined as unknown as Chunk;
    if (head === chunks.length) {
      chunks = [];
      head = 0;
    }
  }

  function failWith(e: NodeJS.ErrnoException): void {
    error = e;
    writing = false;
    sealed = null;
    fail(e);
    settle();
  }

  function pump(): void {
    if (error) return settle();
    if (writing) return;
    if (writesAtOnce) {
      try {
        while (head < chunks.length) {
          const chunk = chunks[head]!;
          for (let at = 0; at < chunk.len; ) at += writeSync(fd, chunk.buf, at, chunk.len - at);
          written(chunk);
        }
      } catch (e) {
        return failWith(e as NodeJS.ErrnoException);
      }
      return settle();
    }
    if (head === chunks.length) return settle();
    const chunk = chunks[head]!;
    sealed = chunk;
    sealedWritten = 0;
    writing = true;
    const writeFrom = (at: number) => {
      write(fd, chunk.buf, at, chunk.len - at, null, (err, n) => {
        // A non-blocking stdout whose reader is behind: try again shortly (not once closed).
        if (err?.code === "EAGAIN") return void (closed || setTimeout(() => writeFrom(at), RETRY_MS));
        if (err) return failWith(err);
        sealedWritten = at + n;
        if (at + n < chunk.len) return writeFrom(at + n);
        writing = false;
        sealed = null;
        written(chunk);
        pump();
      });
    };
    writeFrom(0);
  }

  return {
    write(text) {
      if (error) return false;
      if (closed) {
        dropped++; // offered after close: never written
        return false;
      }
      // A UTF-16 unit is at most 3 bytes of UTF-8: room for that, the bytes counted as written.
      if (queued + text.length > budget) {
        dropped++;
        return false;
      }
      const chunk = tailWithRoom(text.length * 3);
      const n = chunk.buf.write(text, chunk.len);
      if (queued + n > budget) {
        dropped++;
        return false;
      }
      chunk.len += n;
      chunk.ends.push(chunk.len);
      queued += n;
      return true;
    },
    writeBytes(bytes) {
      if (error) return false;
      if (closed) {
        dropped++;
        return false;
      }
      // What is being written counts against the budget too, until it is out.
      const n = bytes.length;
      if (queued + n > budget) {
        dropped++;
        return false;
      }
      const chunk = tailWithRoom(n);
      chunk.buf.set(bytes, chunk.len);
      chunk.len += n;
      chunk.ends.push(chunk.len);
      queued += n;
      return true;
    },
    flush() {
      if (idle === null) {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        idle = { promise, resolve };
      }
      const done = idle.promise;
      pump();
      return done;
    },
    async close(graceMs) {
      await Promise.race([this.flush(), Bun.sleep(graceMs)]);
      closed = true;
      // What is not out is dropped: whole chunks waiting, and the flows of the one being
      // written that had not been written in full.
      for (let i = head; i < chunks.length; i++) {
        const chunk = chunks[i]!;
        const out = chunk === sealed ? sealedWritten : 0;
        for (const end of chunk.ends) if (end > out) dropped++;
      }
      chunks = [];
      head = 0;
      queued = 0;
      settle();
    },
    get dropped() {
      return dropped;
    },
    failed,
  };
}
