// Live events as the page takes them: compact list changes, and the selected flow's updates.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { WatchFlowsResponseSchema, type WatchFlowsResponse } from "../../../src/gen/tapwire/v1/service_pb.ts";
import { applyToTable, digest } from "../../../web/src/live-events.ts";
import { addMessages } from "../../../web/src/live-detail.ts";
import { FlowTable } from "../../../web/src/flow-table.ts";

const grpcFlow = (id: string, open: boolean): Flow =>
  create(FlowSchema, { id, open, protocol: Protocol.GRPC, request: { method: "POST", path: "/a.B/C", authority: "h" }, grpc: { service: "a.B", method: "C" }, response: open ? undefined : { status: 200 } });
const started = (f: Flow): WatchFlowsResponse => create(WatchFlowsResponseSchema, { event: { case: "flowEvent", value: { flowId: f.id, event: { case: "started", value: f } } } });
const ended = (f: Flow): WatchFlowsResponse => create(WatchFlowsResponseSchema, { event: { case: "flowEvent", value: { flowId: f.id, event: { case: "ended", value: f } } } });
const reply = (id: string, index: number): WatchFlowsResponse =>
  create(WatchFlowsResponseSchema, {
    event: { case: "flowEvent", value: { flowId: id, event: { case: "messages", value: { messages: [{ sender: Role.SERVER, index, message: { case: "grpc", value: { size: 3, json: `{"1":${index}}` } } }] } } } },
  });

describe("live events", () => {
  test("an open call: started, replies, ended — one row, its count rising, then closed", () => {
    const t = new FlowTable(10);
    applyToTable(t, digest([started(grpcFlow("s1", true)), reply("s1", 0), reply("s1", 1)], undefined).list);
    expect(t.rows.map((r) => [r.id, r.open, r.messages])).toEqual([["s1", true, 2]]);
    applyToTable(t, digest([ended(grpcFlow("s1", false)), create(WatchFlowsResponseSchema, { event: { case: "dropped", value: { count: 3n } } })], undefined).list);
    expect(t.rows.map((r) => [r.id, r.open, r.status])).toEqual([["s1", false, 200]]);
  });

  test("the selected flow: its newest version and the messages after it; others' are not kept", () => {
    const d = digest([started(grpcFlow("s1", true)), reply("s1", 0), reply("other", 0), reply("s1", 1)], "s1");
    expect(d.selected?.id).toBe("s1");
    expect(d.selectedMessages.map((m) => m.index)).toEqual([0, 1]);
    addMessages(d.selected!, d.selectedMessages);
    expect(d.selected!.grpc!.responseMessages.map((m) => m.json)).toEqual(['{"1":0}', '{"1":1}']);
    // The same message again (GetFlow raced the event): not twice.
    addMessages(d.selected!, digest([reply("s1", 1)], "s1").selectedMessages);
    expect(d.selected!.grpc!.responseMessages).toHaveLength(2);
    // An ended version replaces what came before it.
    const e = digest([reply("s1", 2), ended(grpcFlow("s1", false))], "s1");
    expect([e.selected?.open, e.selectedMessages]).toEqual([false, []]);
    expect(digest([create(WatchFlowsResponseSchema, { event: { case: "dropped", value: { count: 3n } } })], "s1").dropped).toBe(3);
  });
});
