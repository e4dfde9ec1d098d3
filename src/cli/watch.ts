// `tapwire watch`: a terminal client of a tapwire serve's WatchFlows, printing flows as
// capture does (a line, -v, --json). Ends with SIGINT/SIGTERM, or when the server goes.
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
    nodeOptions: ca ? { ca } : undefined,
    interceptors: args.token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${args.token}`), next(req))] : [],
  });
  const client = createClient(TapwireService, transport);
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
  const finish = async (code: number) => {
    await out.close(300);
    if (writeError && writeError.code !== "EPIPE") {
      process.stderr.write(`tapwire: cannot write to stdout: ${writeError.code ?? writeError.message}\n`);
      return 1;
    }
    return code;
  };
  let dropped = 0n;
  try {
    const stream = client.watchFlows({ filter: { pids: args.pids, processNames: args.comms, containers: args.containers }, last: args.last }, { signal: abort.signal, timeoutMs: 0 });
    process.stderr.write(`watching ${args.server}\n`);
    for await (const r of stream) {
      if (r.event.case === "flow") sink.flow(r.event.value);
      else if (r.event.case === "dropped") {
        dropped += r.event.value.count;
        process.stderr.write(`tapwire: the server dropped ${r.event.value.count} flows for this client (it did not keep up)\n`);
      }
      void sink.flush();
    }
  } catch (e) {
    const err = ConnectError.from(e);
    if (abort.signal.aborted || err.code === Code.Canceled) {
      const code = await finish(0);
      if (out.dropped) process.stderr.write(`tapwire: ${out.dropped} flows dropped on stdout (its reader did not keep up)${dropped ? `; ${dropped} dropped by the server` : ""}\n`);
      return code;
    }
    await out.close(300);
    process.stderr.write(`tapwire: ${args.server}: ${err.code === Code.Unavailable ? `cannot reach it (${err.rawMessage})` : `${Code[err.code].toLowerCase()}: ${err.rawMessage}`}\n`);
    return err.code === Code.Unauthenticated ? 2 : 1;
  }
  const code = await finish(0);
  process.stderr.write(`tapwire: ${args.server} ended the stream${dropped ? ` (${dropped} flows dropped)` : ""}${out.dropped ? `; ${out.dropped} flows dropped on stdout (its reader did not keep up)` : ""}\n`);
  return code;
}
