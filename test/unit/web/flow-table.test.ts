// The page's flow table: rows from Flows, history above live rows, the cap, facet counts.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { FlowTable } from "../../../web/src/flow-table.ts";
import { toRow, urlOf } from "../../../web/src/flow-row.ts";
import { facetExpression, narrow } from "../../../web/src/facet-filter.ts";

let n = 0;
function flow(over: { comm?: string; status?: number; authority?: string; container?: string; open?: boolean; id?: string } = {}): Flow {
  return create(FlowSchema, {
    id: over.id ?? `f${++n}`,
    startTime: { seconds: 1_700_000_000n, nanos: 5_000_000 },
    endTime: over.open ? undefined : { seconds: 1_700_000_000n, nanos: 7_500_000 },
    open: !!over.open,
    protocol: Protocol.HTTP1,
    connection: {
      role: Role.CLIENT,
      destination: { ip: "127.0.0.1", port: 8080 },
      process: { pid: 42, comm: over.comm ?? "curl" },
      container: over.container ? { id: "ab".repeat(32), name: over.container } : undefined,
    },
    request: { method: "GET", path: "/x?y=1", authority: over.authority ?? "example.com:8080", bodySize: 10n },
    response: over.status === undefined || over.status === 0 ? undefined : { status: over.status, bodySize: 32n },
  });
}

describe("rows", () => {
  test("a flow as a row: URL, host without port, status, size, duration", () => {
    const r = toRow(flow({ status: 404 }));
    expect(r).toMatchObject({ url: "http://example.com:8080/x?y=1", host: "example.com", status: 404, size: 42, method: "GET", comm: "curl", pid: 42, role: "client", open: false });
    expect(r.durationMs).toBeCloseTo(2.5, 5);
    expect(toRow(flow({ open: true })).durationMs).toBeUndefined();
    const tls = flow();
    tls.connection!.tls = true;
    expect(urlOf(tls)).toBe("https://example.com:8080/x?y=1");
    const v6 = flow({ authority: "[::1]:9000" });
    expect(toRow(v6).host).toBe("[::1]");
  });
});

describe("the table", () => {
  test("history goes above, oldest first; live rows below; a known id is updated in place", () => {
    const t = new FlowTable(100);
    t.upsert(toRow(flow({ id: "live1", open: true })));
    t.prepend([toRow(flow({ id: "h2", status: 200 })), toRow(flow({ id: "h1", status: 200 }))]);
    expect(t.rows.map((r) => r.id)).toEqual(["h1", "h2", "live1"]);
    expect(t.shifted).toBe(2);
    t.upsert(toRow(flow({ id: "live1", status: 500 })));
    expect(t.rows.map((r) => [r.id, r.status, r.open])).toEqual([["h1", 200, false], ["h2", 200, false], ["live1", 500, false]]);
    // The same flow from both the history and the live stream is one row.
    t.prepend([toRow(flow({ id: "live1", status: 500 }))]);
    expect(t.size).toBe(3);
  });

  test("facets count rows and follow a row's change", () => {
    const t = new FlowTable(100);
    t.upsert(toRow(flow({ id: "a", open: true, container: "web" })));
    t.upsert(toRow(flow({ id: "b", status: 200, comm: "python3" })));
    expect(Object.fromEntries(t.facets.status)).toEqual({ none: 1, "2xx": 1 });
    t.upsert(toRow(flow({ id: "a", status: 503, container: "web" })));
    expect(Object.fromEntries(t.facets.status)).toEqual({ "5xx": 1, "2xx": 1 });
    expect(Object.fromEntries(t.facets.container)).toEqual({ web: 1 });
    expect(t.top("process", 5)).toEqual([["curl", 1], ["python3", 1]]);
  });

  test("past the cap the oldest rows go, a tenth at a time, and their counts with them", () => {
    const t = new FlowTable(100);
    for (let i = 0; i < 101; i++) t.upsert(toRow(flow({ id: `r${i}`, status: 200 })));
    expect(t.size).toBe(90);
    expect(t.rows[0]!.id).toBe("r11");
    expect(t.evicted).toBe(11);
    expect(t.shifted).toBe(-11);
    expect(t.byId.has("r10")).toBe(false);
    expect(t.facets.status.get("2xx")).toBe(90);
    // History beyond what the cap leaves room for is not taken.
    const h = new FlowTable(3);
    h.prepend([toRow(flow({ id: "n4" })), toRow(flow({ id: "n3" })), toRow(flow({ id: "n2" })), toRow(flow({ id: "n1" }))]);
    expect(h.rows.map((r) => r.id)).toEqual(["n2", "n3", "n4"]);
    expect(h.facets.process.get("curl")).toBe(3);
  });
});

describe("facet expressions", () => {
  test("each facet writes the expression of the filter language", () => {
    expect(facetExpression("process", "curl")).toBe('process == "curl"');
    expect(facetExpression("container", 'we"b')).toBe('container == "we\\"b"');
    expect(facetExpression("host", "example.com")).toBe('host == "example.com"');
    expect(facetExpression("status", "4xx")).toBe("status >= 400 and status < 500");
    expect(facetExpression("status", "none")).toBe("not status");
    expect(narrow("method == GET or method == HEAD", 'host == "a"')).toBe('(method == GET or method == HEAD) and host == "a"');
    expect(narrow("  ", 'host == "a"')).toBe('host == "a"');
  });
});
