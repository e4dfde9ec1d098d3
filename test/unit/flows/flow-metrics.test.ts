// Flow metrics in Prometheus' text format: counts and cumulative duration buckets by label
// set, label values escaped, and the number of label sets bounded (the rest under "other").
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createFlowMetrics, DURATION_BUCKETS } from "../../../src/flows/flow-metrics.ts";

const ts = (ms: number) => ({ seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
const flow = (o: { comm: string; method?: string; status?: number; ms: number; role?: Role }) =>
  create(FlowSchema, {
    startTime: ts(1000),
    endTime: ts(1000 + o.ms),
    protocol: Protocol.HTTP1,
    connection: { role: o.role ?? Role.CLIENT, process: { pid: 1, comm: o.comm } },
    request: { method: o.method ?? "GET", path: "/" },
    response: o.status ? { status: o.status } : undefined,
  });

describe("flow metrics", () => {
  test("counts, sums and cumulative buckets per label set; odd methods and labels made safe", () => {
    const m = createFlowMetrics();
    m.observe(flow({ comm: "curl", status: 200, ms: 3 }));
    m.observe(flow({ comm: "curl", status: 204, ms: 300 }));
    m.observe(flow({ comm: 'we"ird\\app', method: "BREW", ms: 1 }));
    const text = m.render();
    const curl = 'protocol="http1",method="GET",status_class="2xx",role="client",process="curl",container=""';
    expect(text).toContain(`tapwire_flows_total{${curl}} 2\n`);
    expect(text).toContain(`tapwire_flow_duration_seconds_bucket{${curl},le="0.0025"} 0\n`);
    expect(text).toContain(`tapwire_flow_duration_seconds_bucket{${curl},le="0.005"} 1\n`);
    expect(text).toContain(`tapwire_flow_duration_seconds_bucket{${curl},le="0.5"} 2\n`);
    expect(text).toContain(`tapwire_flow_duration_seconds_bucket{${curl},le="+Inf"} 2\n`);
    expect(text).toContain(`tapwire_flow_duration_seconds_sum{${curl}} 0.303\n`);
    expect(text).toContain('tapwire_flows_total{protocol="http1",method="other",status_class="none",role="client",process="we\\"ird\\\\app",container=""} 1\n');
    expect(text.split("\n").filter((l) => l.startsWith("tapwire_flow_duration_seconds_bucket{" + curl))).toHaveLength(DURATION_BUCKETS.length + 1);
  });

  test("past the bound, new label sets are counted under process and container \"other\"", () => {
    const m = createFlowMetrics({ maxSeries: 3 });
    for (let i = 0; i < 10; i++) m.observe(flow({ comm: `p${i}`, status: 200, ms: 1 }));
    const text = m.render();
    expect(text.split("\n").filter((l) => l.startsWith("tapwire_flows_total{"))).toHaveLength(4);
    expect(text).toContain('tapwire_flows_total{protocol="http1",method="GET",status_class="2xx",role="client",process="other",container="other"} 7\n');
    expect(text).toContain("tapwire_metric_series_dropped_total 7\n");
    expect(m.seriesDropped).toBe(7);
  });

  test("open flows are not counted until they end", () => {
    const m = createFlowMetrics();
    m.observe(create(FlowSchema, { ...flow({ comm: "node", ms: 1 }), open: true }));
    expect(m.render()).not.toContain("tapwire_flows_total{");
  });
});
