// --har FILE for capture and watch: the file opened before anything starts (a path that
// cannot be written is a usage mistake, exit 2), and a write that fails later said in one line.
import { createHarFileSink, type HarFileSink } from "../sinks/har-file.ts";
import { UsageError } from "./args.ts";
import { fileError } from "./file-errors.ts";

export function openHarFile(path: string): HarFileSink {
  try {
    return createHarFileSink(path);
  } catch (e) {
    throw new UsageError(`--har ${fileError(path, e)}`);
  }
}

/** The line for a write that failed (disk full...): what was written before stays valid. */
export function harWriteFailed(path: string, e: NodeJS.ErrnoException, written: number): string {
  return `tapwire: --har ${fileError(path, e)}; writing stopped after ${written} flows (the file holds them, valid)`;
}
