// `tapwire capture`: capture, and print each flow (a line, or with -v its headers and
// bodies; --json the canonical JSON) until SIGINT or SIGTERM.
import { createJsonLinesSink } from "../sinks/json-lines.ts";
import { createTerminalSink } from "../sinks/terminal.ts";
import { createOutputWriter } from "../sinks/sink.ts";
import type { CaptureArgs } from "./args.ts";
import { startCapture, untilSignal } from "./engine.ts";

export async function capture(args: CaptureArgs): Promise<number> {
  const out = createOutputWriter();
  const sink = args.json ? createJsonLinesSink(out) : createTerminalSink(out, { color: args.color, verbose: args.verbose });
  const engine = await startCapture(args, { onFlow: (flow) => sink.flow(flow), afterBatch: () => void sink.flush() });
  process.stderr.write(engine.readyLine + "\n");
  await untilSignal();
  const summary = await engine.stop();
  await sink.flush();
  process.stderr.write(summary + "\n");
  return 0;
}
