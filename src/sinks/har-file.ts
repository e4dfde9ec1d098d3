// A HAR file written a flow at a time that is a whole, valid HAR document after every flow —
// whenever tapwire stops, SIGKILL included. The file is the log's head, the entries, and the
// closing tail; each flow is written (one positioned write) where the tail began, followed by
// the tail again, so the bytes before it never change and the tail is always there. Memory
// is one entry. A write that fails (disk full) puts the tail back where it was — those bytes
// were the file's already — so the file stays valid, and the sink stops and says why once.
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync, constants } from "node:fs";
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { flowToHarEntry, HAR_HEAD, HAR_TAIL } from "./har.ts";
import type { FlowSink } from "./sink.ts";

export interface HarFileSink extends FlowSink {
  /** Entries written. */
  readonly written: number;
  /** The first write error; the sink writes nothing after it. */
  readonly failed: Promise<NodeJS.ErrnoException>;
  close(): void;
}

/** The file is created (0600: it holds cookies and credentials) or emptied. A symbolic link
 * is not followed and another user's file not taken (as for the key log); it must be a
 * regular file, since entries are written in place (a FIFO is refused, not waited on).
 * Throws an error with a `code`. */
export function createHarFileSink(path: string): HarFileSink {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error("not a regular file (a HAR file is rewritten in place)"), { code: "ENOTREG" });
    if (st.uid !== process.getuid?.()) throw Object.assign(new Error("owned by another user (the file will hold headers and cookies)"), { code: "EOWNER" });
    ftruncateSync(fd, 0);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const tail = Buffer.from(HAR_TAIL);
  /** Where the tail starts: the next entry goes there. */
  let end = writeAll(fd, Buffer.from(HAR_HEAD + HAR_TAIL), 0) - tail.length;
  let written = 0;
  let error: NodeJS.ErrnoException | undefined;
  let fail!: (e: NodeJS.ErrnoException) => void;
  const failed = new Promise<NodeJS.ErrnoException>((r) => (fail = r));
  let closed = false;

  return {
    flow(flow) {
      if (error || closed) return;
      const text = (written ? ",\n" : "") + JSON.stringify(flowToHarEntry(flow));
      const bytes = Buffer.allocUnsafe(Buffer.byteLength(text) + tail.length);
      const n = bytes.write(text);
      tail.copy(bytes, n);
      try {
        writeAll(fd, bytes, end);
        end += n;
        written++;
      } catch (e) {
        error = e as NodeJS.ErrnoException;
        // Put the tail back over whatever part of the entry got in, and cut the rest.
        try {
          writeAll(fd, tail, end);
          ftruncateSync(fd, end + tail.length);
        } catch {
          // nothing more can be done for the file
        }
        fail(error);
      }
    },
    flush() {},
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
    get written() {
      return written;
    },
    failed,
  };
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
