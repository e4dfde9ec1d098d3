// `tapwire watch`: a terminal client of a tapwire serve's WatchFlows, printing flows as
// capture does (a line, -v, --json), and with --har writing them to a HAR file too. Ends with
// SIGINT/SIGTERM, or when the server goes (or the HAR file cannot be written: exit 1).
import { readFileSync } from "node:fs";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../gen/tapwire/v1/service_pb.ts";
import { createJsonLinesSink } from "../sinks/json-lines.ts";
import { createTerminalSink } from "../sinks/terminal.ts";
import { createOutputWriter } from "../sinks/output.ts";
import { UsageError, type WatchArgs } from "./args.ts";
import { stopSignal } from "./signals.ts";
import { fileError } from "./file-errors.ts";
import { harDropped, harWriteFailed, openHarFile } from "./har-output.ts";

/** How often, at most, watch says that the server keeps dropping flows for it. */
const DROP_NOTE_MS = 10_000;

export async function watch(args: WatchArgs): Promise<number> {
  let ca: string | undefined;
  if (args.cacert) {
    try {
      ca = readFileSync(args.cacert, "utf8");
    } catch (e) {
      throw new UsageError(`--cacert ${fileError(args.cacert, e)}`);
    }
  }
  const transport = createConnectTransport({
    baseUrl: args.server,
    httpVersion: "2",
    // Binary protobuf: the server encodes every flow for every subscriber, and JSON costs it
    // several times more.
    useBinaryFormat: true,
    nodeOptions: ca ? { ca } : undefined,
    interceptors: args.token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${args.token}`), next(req))] : [],
  });
  const client = createClient(TapwireService, transport);
  const har = args.har ? openHarFile(args.har) : undefined;
  const out = createOutputWriter();
  const sink = args.json ? createJsonLinesSink(out) : createTerminalSink(out, { color: args.color, verbose: args.verbose });
  const abort = new AbortController();
  void stopSignal().signalled.then(() => abort.abort());
  // stdout's reader gone (watch | head): stop quietly; another write error is said.
  let writeError: NodeJS.ErrnoException | undefined;
  void out.failed.then((e) => {
    writeError = e;
    abort.abort();
  });
  let harError: { error: NodeJS.ErrnoException; written: number } | undefined;
  void har?.failed.then((e) => {
    harError = e;
    abort.abort();
  });
  const finish = async (code: number) => {
    await Promise.all([out.close(300), har?.close()]);
    if (har?.dropped) process.stderr.write(harDropped(args.har, har.dropped) + "\n");
    if (harError) {
      process.stderr.write(harWriteFailed(args.har, harError) + "\n");
      return 1;
    }
    if (writeError && writeError.code !== "EPIPE") {
      process.stderr.write(`tapwire: cannot write to stdout: ${writeError.code ?? writeError.message}\n`);
      return 1;
    }
    return code;
  };
  // Drops told by the server: said when they start, then at most every DROP_NOTE_MS, and in
  // the last line (a subscriber that falls behind gets a drop message per burst).
  let dropped = 0n;
  let droppedSaid = 0n;
  let dropSaidAt = -Infinity;
  const sayDrops = (now: number) => {
    if (dropped === droppedSaid || now - dropSaidAt < DROP_NOTE_MS) return;
    process.stderr.write(`tapwire: the server dropped ${dropped - droppedSaid} flows for this client (it did not keep up)${droppedSaid ? `; ${dropped} in all` : ""}\n`);
    droppedSaid = dropped;
    dropSaidAt = now;
  };
  const lastWords = (how: string) => {
    const parts = [dropped ? `the server dropped ${dropped} flows for this client` : "", out.dropped ? `${out.dropped} flows dropped on stdout (its reader did not keep up)` : ""].filter(Boolean);
    if (how || parts.length) process.stderr.write(`tapwire: ${[how, ...parts].filter(Boolean).join("; ")}\n`);
  };
  try {
    const stream = client.watchFlows({ filter: { pids: args.pids, processNames: args.comms, containers: args.containers, expression: args.filter }, last: args.last }, { signal: abort.signal, timeoutMs: 0 });
    process.stderr.write(`watching ${args.server}\n`);
    for await (const r of stream) {
      if (r.event.case === "flow") {
        sink.flow(r.event.value);
        har?.flow(r.event.value);
      }
      else if (r.event.case === "dropped") {
        dropped += r.event.value.count;
        sayDrops(performance.now());
      }
      void sink.flush();
    }
  } catch (e) {
    const err = ConnectError.from(e);
    if (abort.signal.aborted || err.code === Code.Canceled) {
      const code = await finish(0);
      lastWords("");
      return code;
    }
    await Promise.all([out.close(300), har?.close()]);
    process.stderr.write(`tapwire: ${args.server}: ${err.code === Code.Unavailable ? `cannot reach it (${err.rawMessage})` : `${Code[err.code].toLowerCase()}: ${err.rawMessage}`}\n`);
    return err.code === Code.Unauthenticated ? 2 : 1;
  }
  const code = await finish(0);
  lastWords(`${args.server} ended the stream`);
  return code;
}
