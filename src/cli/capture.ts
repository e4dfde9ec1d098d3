// `tapwire capture`: capture, and print each flow (a line, or with -v its headers and
// bodies; --json the canonical JSON) until SIGINT or SIGTERM — or until stdout's reader goes
// away (`tapwire --json | head`: quietly, exit 0). A reader that falls behind costs whole
// flows (dropped, counted as "output" in the summary), never memory or a wait. With --har,
// every flow also goes to a HAR file; a write to it that fails ends capture (exit 1).
import { createJsonLinesSink } from "../sinks/json-lines.ts";
import { createTerminalSink } from "../sinks/terminal.ts";
import { createOutputWriter } from "../sinks/output.ts";
import type { CaptureArgs } from "./args.ts";
import { startCapture } from "../capture/capture.ts";
import { execHolderCommand } from "./holder-command.ts";
import { stopSignal } from "./signals.ts";
import { pollFds } from "../bpf/fanotify.ts";
import { compileFilter } from "../flows/flow-filter.ts";
import type { Flow, FlowMessage } from "../gen/tapwire/v1/flow_pb.ts";
import { harDropped, harWriteFailed, openHarFile } from "./har-output.ts";

/** How long a stop waits for stdout to take what is queued. */
const OUTPUT_GRACE_MS = 300;
/** How long a stop waits for the HAR writer to write what it was given. */
const HAR_GRACE_MS = 1000;
/** How often stdout is asked whether its reader is still there. */
const READER_CHECK_MS = 250;
const POLLERR = 0x8;

/** Whether stdout is a pipe whose reader has gone: poll(2) reports POLLERR on such a write
 * end (a file or a terminal never does). */
function readerGone(): boolean {
  const fd = new Int32Array([1, 0]); // struct pollfd: fd 1, no events asked (errors always come)
  return pollFds(fd, 1, 0) > 0 && ((fd[1]! >>> 16) & POLLERR) !== 0;
}

export async function capture(args: CaptureArgs): Promise<number> {
  const stop = stopSignal();
  const har = args.har ? openHarFile(args.har) : undefined;
  const out = createOutputWriter({ budgetBytes: args.outputBuffer });
  const sink = args.json ? createJsonLinesSink(out, { live: args.live }) : createTerminalSink(out, { color: args.color, verbose: args.verbose });
  // --filter: a flow whose start was shown is shown to its end, whatever the end says.
  const filter = args.filter ? compileFilter(args.filter) : undefined;
  const shownOpen = new Set<string>();
  // The terminal always shows open flows; JSON shows them when asked (--live).
  const live =
    sink.started && sink.messages
      ? {
          started: (flow: Flow) => {
            if (filter && !filter.startMatches(flow)) return;
            if (filter) shownOpen.add(flow.id);
            sink.started!(flow);
          },
          messages: (flowId: string, messages: FlowMessage[]) => {
            if (!filter || shownOpen.has(flowId)) sink.messages!(flowId, messages);
          },
        }
      : undefined;
  let saidDropping = false;
  const engine = await startCapture(
    { ...args, holderCommand: execHolderCommand() },
    {
      onFlow(flow) {
        if (filter && !shownOpen.delete(flow.id) && !filter.matches(flow)) return;
        sink.flow(flow);
        har?.flow(flow);
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
  // A reader that went away shows at the next write (EPIPE); on a quiet host there may be
  // none for long, so the pipe is also asked, a few times a second.
  let watchReader: ReturnType<typeof setInterval> | undefined;
  const readerLeft = new Promise<undefined>((resolve) => {
    watchReader = setInterval(() => readerGone() && resolve(undefined), READER_CHECK_MS);
  });
  let harError: { error: NodeJS.ErrnoException; written: number } | undefined;
  const harFailed = har ? har.failed.then((e) => void (harError = e)) : new Promise<undefined>(() => {});
  const ended = await Promise.race([stop.signalled.then(() => undefined), out.failed, readerLeft, harFailed]);
  clearInterval(ticker);
  clearInterval(watchReader);
  const summary = await engine.stop();
  await Promise.all([out.close(OUTPUT_GRACE_MS), har?.close(HAR_GRACE_MS)]);
  process.stderr.write(summary + "\n");
  if (har?.dropped) process.stderr.write(harDropped(args.har, har.dropped) + "\n");
  if (harError) {
    process.stderr.write(harWriteFailed(args.har, harError) + "\n");
    return 1;
  }
  // The reader went away: what it wanted it had. Any other failure is said.
  if (ended && ended.code !== "EPIPE") {
    process.stderr.write(`tapwire: cannot write to stdout: ${ended.code ?? ended.message}\n`);
    return 1;
  }
  return 0;
}
