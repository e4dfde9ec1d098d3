// --har FILE for capture and watch: the file opened, and its writer started, before anything
// else (a path that cannot be written is a usage mistake, exit 2); a write that fails later
// is said in one line.
import { createHarFileSink, type HarFileSink } from "../sinks/har-file.ts";
import { UsageError } from "./args.ts";
import { fileError } from "./file-errors.ts";
import { harWriterCommand } from "./holder-command.ts";

export function openHarFile(path: string): HarFileSink {
  try {
    return createHarFileSink(path, { writerCommand: harWriterCommand() });
  } catch (e) {
    throw new UsageError(`--har ${fileError(path, e)}`);
  }
}

/** The line for a write that failed (disk full...): what was written before stays valid. */
export function harWriteFailed(path: string, f: { error: NodeJS.ErrnoException; written: number }): string {
  return `tapwire: --har ${fileError(path, f.error)}; writing stopped after ${f.written} flows (the file holds them, valid)`;
}

/** Said at the end when the writer fell behind. */
export function harDropped(path: string, dropped: number): string {
  return `tapwire: --har ${path}: ${dropped} flows dropped (the disk did not keep up)`;
}
