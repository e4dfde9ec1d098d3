// `tapwire capture`: capture, and print each flow (a line, or with -v its headers and
// bodies; --json the canonical JSON) until SIGINT or SIGTERM.
import { createJsonLinesSink } from "../sinks/json-lines.ts";
import { createTerminalSink } from "../sinks/terminal.ts";
import { createOutputWriter } from "../sinks/sink.ts";
import type { CaptureArgs } from "./args.ts";
import { startCapture } from "../capture/capture.ts";
import { execHolderCommand } from "./holder-command.ts";
import { stopSignal } from "./signals.ts";

export async function capture(args: CaptureArgs): Promise<number> {
  const stop = stopSignal();
  const out = createOutputWriter();
  const sink = args.json ? createJsonLinesSink(out) : createTerminalSink(out, { color: args.color, verbose: args.verbose });
  const engine = await startCapture({ ...args, holderCommand: execHolderCommand() }, { onFlow: (flow) => sink.flow(flow), afterBatch: () => void sink.flush() });
  process.stderr.write(engine.readyLine + "\n");
  await stop.signalled;
  const summary = await engine.stop();
  await sink.flush();
  process.stderr.write(summary + "\n");
  return 0;
}
