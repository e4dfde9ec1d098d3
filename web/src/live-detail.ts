// The selected flow, kept current while it is open: messages as they come, then its end.
import { Role, type Flow, type FlowMessage } from "../../src/gen/tapwire/v1/flow_pb.ts";

/** Adds live messages to an open flow fetched earlier (gRPC's go to its call, by sender). */
export function addMessages(flow: Flow, messages: FlowMessage[]): void {
  for (const m of messages) {
    if (m.message.case === "grpc" && flow.grpc) {
      const list = m.sender === Role.CLIENT ? flow.grpc.requestMessages : flow.grpc.responseMessages;
      // GetFlow may already hold it (it raced the event): by index, never twice.
      if (!list[m.index]) list[m.index] = m.message.value;
    } else if (!flow.messages.some((x) => x.sender === m.sender && x.index === m.index)) {
      flow.messages.push(m);
    }
  }
}
