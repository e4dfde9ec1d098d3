#!/usr/bin/env bun
// tapwire's entry point. The exec holder (src/probes/exec-holder.ts) and the HAR writer
// (src/sinks/har-file.ts) are this executable run again with a command of their own; they
// load only what they need, so they start at once.
import { EXEC_HOLDER_COMMAND, HAR_WRITER_COMMAND } from "./holder-command.ts";
import { catchSignals } from "./signals.ts";

const argv = process.argv.slice(2);
if (argv[0] === EXEC_HOLDER_COMMAND) {
  const { runExecHolder } = await import("../probes/exec-holder.ts");
  process.exit(runExecHolder({ deadlineMs: Number(argv[1]), parentPid: Number(argv[2]) }));
}
if (argv[0] === HAR_WRITER_COMMAND) {
  // It ends when tapwire closes its input (or dies): a Ctrl-C to the terminal's process group
  // must not end it before tapwire has handed it the last flows.
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, () => {});
  process.stdout.on("error", () => {}); // tapwire gone: its reports have no reader, the writes go on
  const { runHarWriter } = await import("../sinks/har-file.ts");
  process.exit(await runHarWriter(process.stdin, 3, Number(argv[1]), (line) => process.stdout.write(line + "\n")));
}

// Before anything else: a signal that comes before a listener is lost (see signals.ts).
catchSignals();

// A reader that goes away (tapwire --json | head) ends tapwire quietly.
process.stdout.on?.("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
});

const { run } = await import("./run.ts");
process.exit(await run(argv));
