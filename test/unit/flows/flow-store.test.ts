// The flow history, filters, live subscriptions with bounded queues, and redaction.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowMessageSchema, FlowSchema, Protocol, Role, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { FlowFilterSchema } from "../../../src/gen/tapwire/v1/service_pb.ts";
import { createFlowStore, MAX_OPEN_MESSAGES, PageTokenError } from "../../../src/flows/flow-store.ts";
import { compileFlowFilter } from "../../../src/flows/flow-filter.ts";
import { createFlowBroadcast } from "../../../src/flows/flow-broadcast.ts";
import { flowBytes } from "../../../src/flows/flow-size.ts";
import { createRedactor, DEFAULT_REDACTED } from "../../../src/flows/redact.ts";

function flow(i: number, over: { path?: string; status?: number; method?: string; comm?: string; pid?: number; authority?: string; body?: number } = {}): Flow {
  return create(FlowSchema, {
    id: `f${i}`,
    protocol: Protocol.HTTP1,
    connection: { process: { pid: over.pid ?? 100 + (i % 3), comm: over.comm ?? "curl" } },
    request: { method: over.method ?? "GET", path: over.path ?? `/p/${i}`, authority: over.authority ?? "a.test:80", headers: [{ name: "Authorization", value: "Bearer secret" }] },
    response: { status: over.status ?? 200, body: new Uint8Array(over.body ?? 0), headers: [{ name: "Set-Cookie", value: "s=1" }, { name: "X-Other", value: "kept" }] },
  });
}
const all = () => true;

describe("flow store", () => {
  test("bounded by count: the oldest go first; get by id", () => {
    const s = createFlowStore({ maxFlows: 3, maxBytes: 1 << 30 });
    for (let i = 1; i <= 5; i++) s.add(flow(i));
    expect(s.count).toBe(3);
    expect([s.get("f1"), s.get("f2")]).toEqual([undefined, undefined]);
    expect(s.get("f5")!.id).toBe("f5");
    expect(s.newest(all, 10).map((f) => f.id)).toEqual(["f3", "f4", "f5"]);
  });

  test("bounded by bytes", () => {
    const maxBytes = 2 * flowBytes(flow(0, { body: 4000 })) + 100;
    const s = createFlowStore({ maxFlows: 100, maxBytes });
    for (let i = 1; i <= 5; i++) s.add(flow(i, { body: 4000 }));
    expect(s.count).toBe(2);
    expect(s.bytes).toBeLessThanOrEqual(maxBytes);
  });

  test("pages newest first, with a filter; a bad token is an error", () => {
    const s = createFlowStore({ maxFlows: 100, maxBytes: 1 << 30 });
    for (let i = 1; i <= 10; i++) s.add(flow(i, { status: i % 2 ? 200 : 404 }));
    const match = compileFlowFilter(create(FlowFilterSchema, { statusMin: 400 }));
    const p1 = s.list(match, 2, "");
    expect(p1.flows.map((f) => f.id)).toEqual(["f10", "f8"]);
    const p2 = s.list(match, 2, p1.nextPageToken);
    expect(p2.flows.map((f) => f.id)).toEqual(["f6", "f4"]);
    const p3 = s.list(match, 2, p2.nextPageToken);
    expect([p3.flows.map((f) => f.id), p3.nextPageToken]).toEqual([["f2"], ""]);
    expect(() => s.list(all, 2, "nonsense")).toThrow(PageTokenError);
  });
});

describe("flow store, oldest first", () => {
  test("pages oldest first with a filter, through a token taken before more flows came, past evictions", () => {
    const s = createFlowStore({ maxFlows: 8, maxBytes: 1 << 30 });
    for (let i = 1; i <= 10; i++) s.add(flow(i, { status: i % 2 ? 200 : 404 })); // f3..f10 kept
    const through = s.lastToken;
    s.add(flow(11, { status: 404 })); // after the token: not listed through it
    const match = compileFlowFilter(create(FlowFilterSchema, { statusMin: 400 }));
    const p1 = s.list(match, 2, "", { oldestFirst: true, through });
    expect(p1.flows.map((f) => f.id)).toEqual(["f4", "f6"]);
    s.add(flow(12)); // evicts f4 (listed already): the token still finds its place
    const p2 = s.list(match, 2, p1.nextPageToken, { oldestFirst: true, through });
    expect([p2.flows.map((f) => f.id), p2.nextPageToken]).toEqual([["f8", "f10"], ""]);
    const all = s.list(() => true, 100, "", { oldestFirst: true });
    expect([all.flows.map((f) => f.id), all.nextPageToken]).toEqual([["f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12"], ""]);
  });

  test("newest first and oldest first list the same flows, page by page, whatever the page size", () => {
    const s = createFlowStore({ maxFlows: 1000, maxBytes: 1 << 30 });
    for (let i = 1; i <= 57; i++) s.add(flow(i, { status: 200 + (i % 3) }));
    const match = compileFlowFilter(create(FlowFilterSchema, { statusMin: 201 }));
    for (const size of [1, 2, 5, 38, 100]) {
      const walk = (oldestFirst: boolean) => {
        const ids: string[] = [];
        let token = "";
        do {
          const page = s.list(match, size, token, { oldestFirst });
          expect(page.flows.length).toBeLessThanOrEqual(size);
          ids.push(...page.flows.map((f) => f.id));
          token = page.nextPageToken;
        } while (token);
        return ids;
      };
      const oldest = walk(true);
      expect(oldest).toHaveLength(38);
      expect(walk(false)).toEqual(oldest.slice().reverse());
    }
  });
});

describe("flow filter", () => {
  test("every field, and a flow must match all that are set", () => {
    const f = flow(1, { path: "/api/users", status: 201, method: "POST", comm: "node", pid: 7, authority: "Api.Test:8080" });
    const m = (filter: object) => compileFlowFilter(create(FlowFilterSchema, filter))(f);
    expect(m({})).toBe(true);
    expect([m({ pids: [7, 8] }), m({ pids: [8] })]).toEqual([true, false]);
    expect([m({ processNames: ["node"] }), m({ processNames: ["curl"] })]).toEqual([true, false]);
    expect([m({ hosts: ["api.test"] }), m({ hosts: ["api.test:8080"] }), m({ hosts: ["other"] })]).toEqual([true, true, false]);
    expect([m({ pathPrefix: "/api/" }), m({ pathPrefix: "/web" })]).toEqual([true, false]);
    expect([m({ methods: ["post"] }), m({ methods: ["GET"] })]).toEqual([true, false]);
    expect([m({ statusMin: 200, statusMax: 299 }), m({ statusMin: 400 })]).toEqual([true, false]);
    expect([m({ protocols: [Protocol.HTTP1] }), m({ protocols: [Protocol.GRPC] })]).toEqual([true, false]);
    expect(m({ pids: [7], methods: ["GET"] })).toBe(false);
    expect(m({ containers: ["abc"] })).toBe(false);
  });
});

describe("flow broadcast", () => {
  test("a subscriber that does not read loses flows beyond its queue, is told how many, and another is unaffected", async () => {
    const b = createFlowBroadcast();
    const slow = b.subscribe(all, { queue: 3 });
    const fast = b.subscribe(all, { queue: 100 });
    const got: string[] = [];
    const reading = (async () => {
      for await (const ev of fast) {
        if ("flow" in ev) got.push(ev.flow.id);
        if (got.length === 10) break;
      }
    })();
    for (let i = 1; i <= 10; i++) b.publish(flow(i));
    await reading;
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `f${i + 1}`));
    expect(slow.dropped).toBe(7);
    const seen: string[] = [];
    for await (const ev of slow) {
      seen.push("flow" in ev ? ev.flow.id : "dropped" in ev ? `dropped ${ev.dropped}` : "event");
      if (seen.length === 4) break;
    }
    expect(seen).toEqual(["dropped 7", "f1", "f2", "f3"]);
    expect(b.subscribers).toBe(0);
  });

  test("a burst of 10,000 flows at once reaches a subscriber that reads: every one, in order", async () => {
    const b = createFlowBroadcast();
    const sub = b.subscribe(all);
    for (let i = 0; i < 10_000; i++) b.publish(flow(i));
    const seen: string[] = [];
    for await (const ev of sub) {
      seen.push("flow" in ev ? ev.flow.id : "dropped" in ev ? `dropped ${ev.dropped}` : "event");
      if (seen.length === 5_000) for (let i = 10_000; i < 12_000; i++) b.publish(flow(i));
      if (seen.length === 12_000) break;
    }
    expect(seen).toEqual(Array.from({ length: 12_000 }, (_, i) => `f${i}`));
    expect(sub.dropped).toBe(0);
  });

  test("a queue is bounded in bytes too: a stalled subscriber keeps at most that many bytes of flows", async () => {
    const big = (i: number) => flow(i, { body: 15 * 1024 });
    const b = createFlowBroadcast(1_000_000, 4 * flowBytes(big(0)) + 100);
    const sub = b.subscribe(all);
    for (let i = 0; i < 10; i++) b.publish(big(i));
    expect(sub.dropped).toBe(6); // 4 fit
    const seen: string[] = [];
    for await (const ev of sub) {
      seen.push("flow" in ev ? ev.flow.id : "dropped" in ev ? `dropped ${ev.dropped}` : "event");
      if (seen.length === 5) break;
    }
    expect(seen).toEqual(["dropped 6", "f0", "f1", "f2", "f3"]);
  });

  test("first flows come before live ones; a filter applies to live ones", async () => {
    const b = createFlowBroadcast();
    const sub = b.subscribe((f) => f.request!.method === "POST", { first: [flow(0)] });
    b.publish(flow(1));
    b.publish(flow(2, { method: "POST" }));
    const seen: string[] = [];
    for await (const ev of sub) {
      if ("flow" in ev) seen.push(ev.flow.id);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(["f0", "f2"]);
  });
});

describe("redaction", () => {
  test("the default names' values are replaced in requests and responses, names kept, others untouched", () => {
    const f = flow(1);
    createRedactor(DEFAULT_REDACTED)(f);
    expect(f.request!.headers).toEqual([expect.objectContaining({ name: "Authorization", value: "[redacted]" })]);
    expect(f.response!.headers.map((h) => [h.name, h.value])).toEqual([
      ["Set-Cookie", "[redacted]"],
      ["X-Other", "kept"],
    ]);
  });
});

describe("open flows in the history", () => {
  test("a stream that goes on past what an open flow shows costs nothing more: the other flows stay", () => {
    const s = createFlowStore({ maxFlows: 1000, maxBytes: 10 << 20 });
    for (let i = 0; i < 100; i++) s.add(flow(i));
    const open = create(FlowSchema, { id: "open-1", protocol: Protocol.GRPC, grpc: { service: "s", method: "Watch" }, open: true });
    s.open(open);
    const data = new Uint8Array(4000);
    for (let i = 0; i < 5000; i++) {
      s.messages("open-1", [create(FlowMessageSchema, { sender: Role.SERVER, index: i, message: { case: "grpc", value: { size: 4000, data } } })]);
    }
    expect(s.count).toBe(101);
    const shown = s.get("open-1")!;
    expect(shown.open).toBe(true);
    expect(shown.grpc!.responseMessages).toHaveLength(MAX_OPEN_MESSAGES);
    expect(s.bytes).toBeLessThan(10 << 20);
    // Its end replaces it where it was.
    s.add(create(FlowSchema, { id: "open-1", protocol: Protocol.GRPC, grpc: { service: "s", method: "Watch" } }));
    expect(s.get("open-1")!.open).toBe(false);
    expect(s.count).toBe(101);
  });
});
