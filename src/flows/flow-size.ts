// What a flow keeps alive in memory, closely enough to bound the history and the queues of
// subscribers by bytes. Measured on flows of small keep-alive exchanges made by the pipeline
// (heap and array buffers after a full collection): about 3 KiB of objects and strings besides
// the bodies, and some tens of bytes per header field beyond its text.

import type { Flow, FlowMessage, GrpcMessage, Request, Response } from "../gen/tapwire/v1/flow_pb.ts";

export function flowBytes(f: Flow): number {
  let n = 3072 + messageBytes(f.request) + messageBytes(f.response);
  const g = f.grpc;
  if (g) n += grpcBytes(g.requestMessages) + grpcBytes(g.responseMessages);
  if (f.messages.length) n += flowMessagesBytes(f.messages);
  return n;
}

function messageBytes(m: Request | Response | undefined): number {
  if (!m) return 0;
  let n = m.body.length;
  for (const h of m.headers) n += h.name.length + h.value.length + 48;
  for (const h of m.trailers) n += h.name.length + h.value.length + 48;
  return n;
}

/** The messages of a live event. */
export function flowMessagesBytes(ms: readonly FlowMessage[]): number {
  let n = 0;
  for (const m of ms) {
    const v = m.message;
    n +=
      96 +
      (v.case === "grpc"
        ? v.value.data.length + v.value.json.length + 64
        : v.case === "sse"
          ? v.value.data.length + v.value.id.length + v.value.event.length + 64
          : v.case === "websocket"
            ? v.value.data.length + v.value.text.length + v.value.closeReason.length + 96
            : 0);
  }
  return n;
}

function grpcBytes(ms: readonly GrpcMessage[]): number {
  let n = 0;
  for (const m of ms) n += m.data.length + m.json.length + 64;
  return n;
}
