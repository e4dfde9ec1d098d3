// Flows counted for Prometheus: how many, and how long they took, by protocol, method, status
// class, side, process and container. Label sets are bounded: past `maxSeries` distinct ones,
// new flows are counted under process="other" and container="other" (their protocol, method,
// status class and side kept), and the series that could not be made are counted. Methods
// outside the standard set are "other" too, so a client sending odd methods cannot grow it.
import { Protocol, Role, type Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { HTTP1_METHODS } from "../protocols/sniff.ts";

/** Upper bounds of the duration buckets, in seconds. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const DEFAULT_MAX_SERIES = 2000;

const PROTOCOLS: Record<number, string> = { [Protocol.HTTP1]: "http1", [Protocol.HTTP2]: "http2", [Protocol.GRPC]: "grpc", [Protocol.WEBSOCKET]: "websocket", [Protocol.REDIS]: "redis" };
const METHODS = new Set<string>(HTTP1_METHODS);
const LABELS = ["protocol", "method", "status_class", "role", "process", "container"] as const;

interface Series {
  labels: string[];
  count: number;
  sum: number;
  /** Flows at or under each bucket's bound (cumulative when written). */
  buckets: number[];
}

export interface FlowMetrics {
  observe(flow: Flow): void;
  /** The metrics in Prometheus' text format (version 0.0.4). */
  render(): string;
  readonly seriesDropped: number;
}

function statusClass(f: Flow): string {
  if (f.database) return f.database.error ? "error" : f.database.replyType ? "ok" : "none";
  if (f.grpc?.status !== undefined) return f.grpc.status === 0 ? "ok" : "error";
  const s = f.response?.status;
  return s ? `${Math.floor(s / 100)}xx` : "none";
}

export function createFlowMetrics(opts: { maxSeries?: number } = {}): FlowMetrics {
  const maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
  const series = new Map<string, Series>();
  let seriesDropped = 0;

  const seriesOf = (labels: string[]): Series => {
    const key = labels.join("\u0000");
    let s = series.get(key);
    if (!s) {
      if (series.size >= maxSeries && labels[4] !== "other") {
        seriesDropped++;
        return seriesOf([...labels.slice(0, 4), "other", "other"]);
      }
      s = { labels, count: 0, sum: 0, buckets: new Array(DURATION_BUCKETS.length).fill(0) };
      series.set(key, s);
    }
    return s;
  };

  return {
    get seriesDropped() {
      return seriesDropped;
    },
    observe(f) {
      if (f.open) return;
      const method = f.database ? f.database.operation || "other" : (f.request?.method ?? "");
      const c = f.connection;
      const s = seriesOf([
        PROTOCOLS[f.protocol] ?? "other",
        f.database ? method.split(" ")[0]!.slice(0, 32) : METHODS.has(method) ? method : method ? "other" : "none",
        statusClass(f),
        c?.role === Role.SERVER ? "server" : c?.role === Role.CLIENT ? "client" : "unknown",
        c?.process?.comm ?? "",
        c?.container ? c.container.name || c.container.id.slice(0, 12) : "",
      ]);
      const seconds = f.startTime && f.endTime ? Number(f.endTime.seconds - f.startTime.seconds) + (f.endTime.nanos - f.startTime.nanos) / 1e9 : 0;
      s.count++;
      s.sum += seconds;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) if (seconds <= DURATION_BUCKETS[i]!) s.buckets[i]!++;
    },
    render() {
      const out: string[] = [];
      const labelText = (s: Series, extra = "") => `{${LABELS.map((l, i) => `${l}="${escapeLabel(s.labels[i]!)}"`).join(",")}${extra}}`;
      out.push("# HELP tapwire_flows_total Flows (an exchange: a request and its response, a gRPC call, a Redis command) that ended.");
      out.push("# TYPE tapwire_flows_total counter");
      for (const s of series.values()) out.push(`tapwire_flows_total${labelText(s)} ${s.count}`);
      out.push("# HELP tapwire_flow_duration_seconds From a flow's first byte to its last.");
      out.push("# TYPE tapwire_flow_duration_seconds histogram");
      for (const s of series.values()) {
        DURATION_BUCKETS.forEach((le, i) => out.push(`tapwire_flow_duration_seconds_bucket${labelText(s, `,le="${le}"`)} ${s.buckets[i]}`));
        out.push(`tapwire_flow_duration_seconds_bucket${labelText(s, ',le="+Inf"')} ${s.count}`);
        out.push(`tapwire_flow_duration_seconds_sum${labelText(s)} ${s.sum}`);
        out.push(`tapwire_flow_duration_seconds_count${labelText(s)} ${s.count}`);
      }
      out.push("# HELP tapwire_metric_series_dropped_total Label sets not made (past the bound): their flows are counted under process and container \"other\".");
      out.push("# TYPE tapwire_metric_series_dropped_total counter");
      out.push(`tapwire_metric_series_dropped_total ${seriesDropped}`);
      return out.join("\n") + "\n";
    },
  };
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
