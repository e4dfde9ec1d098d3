// What a test run leaves behind (servers and tapwires a failed test did not stop, fresh
// directories) is cleaned when the run ends. bun test runs every file in one process and
// fires no "exit" event, so this file is preloaded (bunfig.toml) and its afterAll, at the top
// level of a preload, runs once after the last file.
import { afterAll } from "bun:test";

const cleanups: (() => void)[] = [];

/** Run `cleanup` when the test run ends. */
export function atRunEnd(cleanup: () => void): void {
  cleanups.push(cleanup);
}

const runAll = () => {
  for (const cleanup of cleanups.splice(0)) {
    try {
      cleanup();
    } catch {
      // the rest still run
    }
  }
};
try {
  afterAll(runAll);
} catch {
  // Not under bun test (a bench using the test helpers): the process's exit does it.
  process.on("exit", runAll);
}
