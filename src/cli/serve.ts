// `tapwire serve`: capture, keep a bounded history, serve TapwireService (src/api/server.ts)
// and the history as a HAR file (GET /har), and, with --trayce, push flows to a Trayce GUI.
// The port answers from the start; until capture is attached calls get `unavailable`.
// Capture is told where the API listens, and the Trayce push connects only once capture is
// attached: tapwire's own connections are not captured from either end.
import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { createFlowStore } from "../flows/flow-store.ts";
import { createFlowBroadcast } from "../flows/flow-broadcast.ts";
import { agentStats, tapwireService } from "../api/tapwire-service.ts";
import { connectTrayce, type TrayceLink } from "../api/trayce.ts";
import { startApiServer, ListenError } from "../api/server.ts";
import { harExport } from "../api/har-export.ts";
import { metricsEndpoint } from "../api/metrics-endpoint.ts";
import { createFlowMetrics } from "../flows/flow-metrics.ts";
import { webPages } from "../api/web-page.ts";
import { startCapture, type Capture } from "../capture/capture.ts";
import { UsageError, type ServeArgs } from "./args.ts";
import { execHolderCommand } from "./holder-command.ts";
import { stopSignal } from "./signals.ts";
import { fileError } from "./file-errors.ts";
import pkg from "../../package.json" with { type: "json" };

export async function serve(args: ServeArgs): Promise<number> {
  const stop = stopSignal();
  const store = createFlowStore({ maxFlows: args.historyFlows, maxBytes: args.historyBytes });
  const broadcast = createFlowBroadcast();
  const metrics = createFlowMetrics();
  let engine: Capture | undefined;
  let trayce: TrayceLink | undefined;
  const features = ["http1", "http2", "grpc", ...(args.tls ? ["tls"] : []), ...(args.redact.length ? ["redact"] : [])];
  const running = () => {
    if (!engine) throw new ConnectError("tapwire is starting: capture is not attached yet, try again in a moment", Code.Unavailable);
    return engine;
  };
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`${flag} ${fileError(path, e)}`);
    }
  };
  const tls = args.tlsCert ? { cert: read("--tls-cert", args.tlsCert), key: read("--tls-key", args.tlsKey) } : undefined;
  const deps = { version: pkg.version, engine: running, store, broadcast, ports: args.ports, features, trayce: () => trayce?.stats };
  let server;
  try {
    server = await startApiServer({
      host: args.host,
      port: args.port,
      token: args.token,
      allowHosts: args.allowHosts,
      tls,
      service: tapwireService(deps),
      pages: { ...webPages(), "/har": harExport(store), "/metrics": metricsEndpoint(metrics, () => (engine ? agentStats(deps) : undefined)) },
    });
  } catch (e) {
    if (e instanceof ListenError) throw new UsageError(`--listen ${e.message}`);
    throw e;
  }
  const { address } = server;
  try {
    engine = await startCapture({ ...args, holderCommand: execHolderCommand(), selfListeners: [{ ip: address.ip, port: address.port }] }, {
      onFlow(flow) {
        metrics.observe(flow);
        store.add(flow);
        broadcast.publish(flow);
        trayce?.send(flow);
      },
      // The history shows flows while they are open, and live watchers see them.
      live: {
        started(flow) {
          store.open(flow);
          broadcast.started(flow);
        },
        messages(flowId, messages) {
          store.messages(flowId, messages);
          broadcast.messages(flowId, messages);
        },
      },
      drops: () => ({ output: broadcast.dropped + (trayce?.stats.dropped ?? 0) }),
    });
  } catch (e) {
    server.close();
    throw e;
  }
  // Connected once capture is attached: its connection is then known as tapwire's own.
  trayce = args.trayce
    ? connectTrayce({
        address: args.trayce,
        version: pkg.version,
        log: (l) => process.stderr.write(l + "\n"),
        containers: () => engine?.containers.running() ?? [],
        batchBytes: args.trayceBatchBytes,
      })
    : undefined;
  const host = address.family === "IPv6" ? `[${address.ip}]` : address.ip;
  process.stderr.write(`${engine.readyLine}; serving ${tls ? "https" : "http"}://${host}:${address.port}${args.token ? " (token required)" : ""}\n`);
  await stop.signalled;
  server.close();
  trayce?.close();
  const summary = await engine.stop();
  const t = trayce?.stats;
  process.stderr.write(summary + (t ? `; trayce: ${t.sent} flows sent, ${t.dropped} dropped (queue full), ${t.refused} refused by the GUI, ${t.truncated} cut to fit` : "") + "\n");
  return 0;
}
