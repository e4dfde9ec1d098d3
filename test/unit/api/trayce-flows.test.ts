// What the Trayce push makes of flows with messages of their own: a WebSocket connection and
// an event stream show in the GUI as the upgrade (or request) and a response whose payload
// lists the messages, one per line.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { toTrayceFlows } from "../../../src/api/trayce.ts";

describe("Trayce flows", () => {
  test("a WebSocket connection: the upgrade, and its messages as the response's payload", () => {
    const flow = create(FlowSchema, {
      protocol: Protocol.WEBSOCKET,
      connection: { source: { ip: "127.0.0.1", port: 5000 }, destination: { ip: "127.0.0.1", port: 80 } },
      request: { method: "GET", path: "/chat", version: "HTTP/1.1", headers: [{ name: "Upgrade", value: "websocket" }] },
      response: { status: 101, reason: "Switching Protocols", version: "HTTP/1.1" },
      messages: [
        { sender: Role.CLIENT, message: { case: "websocket", value: { type: "text", text: "hi" } } },
        { sender: Role.SERVER, message: { case: "websocket", value: { type: "binary", data: new Uint8Array([1, 255]) } } },
        { sender: Role.CLIENT, message: { case: "websocket", value: { type: "close", closeCode: 1000, closeReason: "bye" } } },
      ],
      messagesDropped: 2,
    });
    const [req, res] = toTrayceFlows(flow);
    expect(req!.request.case).toBe("httpRequest");
    expect(res!.response.case).toBe("httpResponse");
    const payload = new TextDecoder().decode((res!.response.value as { payload: Uint8Array }).payload);
    expect(payload).toBe("> text: hi\n< binary: 2 bytes: 01ff\n> close: 1000 bye\n(2 more messages not kept)\n");
  });

  test("an event stream: its events", () => {
    const flow = create(FlowSchema, {
      protocol: Protocol.HTTP1,
      request: { method: "GET", path: "/events", version: "HTTP/1.1" },
      response: { status: 200, version: "HTTP/1.1", body: new TextEncoder().encode("data: a\n\n") },
      messages: [{ sender: Role.SERVER, message: { case: "sse", value: { id: "7", event: "tick", data: "a" } } }],
    });
    const [, res] = toTrayceFlows(flow);
    expect(new TextDecoder().decode((res!.response.value as { payload: Uint8Array }).payload)).toBe("< tick #7: a\n");
  });
});
