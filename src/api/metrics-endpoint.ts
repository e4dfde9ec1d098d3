// GET /metrics on `tapwire serve`: what Prometheus scrapes. The flows' counts and durations
// (src/flows/flow-metrics.ts), and the agent's own counters as GetStats has them. It names
// processes and containers, so it asks for the token as the API does (Prometheus sends it
// with `authorization: {credentials: ...}` in its scrape config).
import type { agentStats } from "./tapwire-service.ts";
import type { FlowMetrics } from "../flows/flow-metrics.ts";
import type { PageHandler } from "./server.ts";

/** The agent's counters; undefined before capture is attached. */
type Stats = () => ReturnType<typeof agentStats> | undefined;

export function metricsEndpoint(metrics: FlowMetrics, stats: Stats): PageHandler {
  return (req, res, ctx) => {
    if (!ctx.authorized) {
      res.writeHead(401, { "content-type": "text/plain" });
      res.end("a valid bearer token is required (Authorization: Bearer TOKEN)\n");
      return;
    }
    const lines: string[] = [];
    const counter = (name: string, help: string, value: bigint | number, type = "counter") => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    const s = stats();
    if (s) {
      counter("tapwire_events_total", "Kernel records read.", s.events);
      counter("tapwire_event_bytes_total", "Bytes those records carried.", s.bytes);
      counter("tapwire_connections", "Connections open now.", s.connections, "gauge");
      counter("tapwire_uprobe_hits_total", "Runs of the TLS uprobe programs: each a trap the traced program paid for.", s.uprobeHits);
      counter("tapwire_exec_holds_total", "Programs held at their exec until probed.", s.execHolds);
      counter("tapwire_history_flows", "Flows in the history now.", s.historyFlows, "gauge");
      lines.push("# HELP tapwire_drops_total What was lost, by cause (kernel side, ring reader, outputs).", "# TYPE tapwire_drops_total counter");
      for (const [cause, n] of Object.entries(s.drops)) lines.push(`tapwire_drops_total{cause="${cause}"} ${n}`);
    }
    counter("tapwire_resident_memory_bytes", "tapwire's resident memory.", process.memoryUsage().rss, "gauge");
    const body = metrics.render() + lines.join("\n") + "\n";
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}
