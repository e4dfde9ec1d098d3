// Where printed flows go (stdout): a queue with a fixed budget, written out on its own.
// Whatever the reader does — reads slowly, stops reading, goes away — capture never waits
// for it and memory stays bounded: a flow that does not fit in the budget is dropped whole
// (never half a line) and counted. A reader that goes away (`tapwire | head`) is said by
// `failed` (EPIPE), as is any other write error; closing waits a little for what is queued,
// then drops the rest (counted), so tapwire stops promptly even when no one reads again.
import { write } from "node:fs";

export const DEFAULT_OUTPUT_BUDGET = 32 << 20;
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
  let queue: string[] = [];
  /** Queued texts' length (UTF-16 units: bytes, for the ASCII flows mostly are). */
  let queued = 0;
  /** The buffer being written, and how far. */
  let writing: Buffer | undefined;
  let dropped = 0;
  let error: NodeJS.ErrnoException | undefined;
  let fail!: (e: NodeJS.ErrnoException) => void;
  const failed = new Promise<NodeJS.ErrnoException>((r) => (fail = r));
  let idle: (() => void)[] = [];

  const settle = () => {
    for (const r of idle.splice(0)) r();
  };

  function pump(): void {
    if (writing || error) return;
    if (!queue.length) return settle();
    writing = Buffer.from(queue.length === 1 ? queue[0]! : queue.join(""));
    queue = [];
    queued = 0;
    const writeFrom = (buf: Buffer, at: number) => {
      write(fd, buf, at, buf.length - at, null, (err, n) => {
        // A non-blocking stdout whose reader is behind: try again shortly.
        if (err?.code === "EAGAIN") return void setTimeout(() => writeFrom(buf, at), RETRY_MS);
        if (err) {
          error = err;
          writing = undefined;
          fail(err);
          settle();
          return;
        }
        if (at + n < buf.length) return writeFrom(buf, at + n);
        writing = undefined;
        pump();
      });
    };
    writeFrom(writing, 0);
  }

  return {
    write(text) {
      if (error) return false;
      // What is being written counts against the budget too, until it is out.
      if (queued + text.length + (writing?.length ?? 0) > budget) {
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
      dropped += queue.length;
      queue = [];
      queued = 0;
    },
    get dropped() {
      return dropped;
    },
    failed,
  };
}
