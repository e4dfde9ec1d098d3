#!/usr/bin/env bun
// tapwire's entry point. The exec holder (src/probes/exec-holder.ts) is this executable run
// again with a command of its own; it loads only what it needs, so it starts at once.
import { EXEC_HOLDER_COMMAND } from "./holder-command.ts";
import { catchSignals } from "./signals.ts";

const argv = process.argv.slice(2);
if (argv[0] === EXEC_HOLDER_COMMAND) {
  const { runExecHolder } = await import("../probes/exec-holder.ts");
  process.exit(runExecHolder({ deadlineMs: Number(argv[1]), parentPid: Number(argv[2]) }));
}

// Before anything else: a signal that comes before a listener is lost (see signals.ts).
catchSignals();

// A reader that goes away (tapwire --json | head) ends tapwire quietly.
process.stdout.on?.("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
});

const { run } = await import("./run.ts");
process.exit(await run(argv));
