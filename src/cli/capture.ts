// `tapwire capture`: capture, and print each flow (a line, or with -v its headers and
// bodies; --json the canonical JSON) until SIGINT or SIGTERM — or until stdout's reader goes
// away (`tapwire --json | head`: quietly, exit 0). A reader that falls behind costs whole
// flows (dropped, counted as "output" in the summary), never memory or a wait.
import { createJsonLinesSink } from "../sinks/json-lines.ts";
import { createTerminalSink } from "../sinks/terminal.ts";
import { createOutputWriter } from "../sinks/output.ts";
import type { CaptureArgs } from "./args.ts";
import { startCapture } from "../capture/capture.ts";
import { execHolderCommand } from "./holder-command.ts";
import { stopSignal } from "./signals.ts";

/** How long a stop waits for stdout to take what is queued. */
const OUTPUT_GRACE_MS = 300;

export async function capture(args: CaptureArgs): Promise<number> {
  const stop = stopSignal();
  const out = createOutputWriter({ budgetBytes: args.outputBuffer });
  const sink = args.json ? createJsonLinesSink(out, { live: args.live }) : createTerminalSink(out, { color: args.color, verbose: args.verbose });
  // The terminal always shows open flows; JSON shows them when asked (--live).
  const live = sink.started && sink.messages ? { started: sink.started, messages: sink.messages } : undefined;
  let saidDropping = false;
  const engine = await startCapture(
    { ...args, holderCommand: execHolderCommand() },
    {
      onFlow(flow) {
        sink.flow(flow);
        if (out.dropped && !saidDropping && args.verbose) {
          saidDropping = true;
          process.stderr.write("tapwire: stdout is not keeping up: flows are dropped whole (counted in the summary as output)\n");
        }
      },
      live,
      afterBatch: () => void out.flush(),
      drops: () => ({ output: out.dropped }),
    },
  );
  process.stderr.write(engine.readyLine + "\n");
  const ticker = sink.tick ? setInterval(() => sink.tick!(Date.now()), 100) : undefined;
  const ended = await Promise.race([stop.signalled.then(() => undefined), out.failed]);
  clearInterval(ticker);
  const summary = await engine.stop();
  await out.close(OUTPUT_GRACE_MS);
  process.stderr.write(summary + "\n");
  // The reader went away: what it wanted it had. Any other failure is said.
  if (ended && ended.code !== "EPIPE") {
    process.stderr.write(`tapwire: cannot write to stdout: ${ended.code ?? ended.message}\n`);
    return 1;
  }
  return 0;
}
