// One flow per line: the canonical proto JSON of Flow (flow-json.ts), made in UTF-8 in one
// reused buffer and copied into the output's queue. With `live`, one line per flow event
// instead (tapwire.v1.FlowEvent: started, messages, ended), each with the flow's id.
import type { Flow, FlowEvent, FlowMessage } from "../gen/tapwire/v1/flow_pb.ts";
import { writeFlowEventJson, writeFlowJson } from "./flow-json.ts";
import { JsonBytes } from "./json-bytes.ts";
import type { FlowSink, OutputWriter } from "./sink.ts";

const NEWLINE = 0x0a;

export function createJsonLinesSink(out: OutputWriter, opts: { live?: boolean } = {}): FlowSink {
  const line = new JsonBytes();
  const emit = (write: (w: JsonBytes) => void) => {
    line.reset();
    write(line);
    line.ensure(1);
    line.buf[line.at++] = NEWLINE;
    out.writeBytes(line.view());
    line.shrink();
  };
  if (!opts.live) return { flow: (flow) => emit((w) => writeFlowJson(w, flow)), flush: () => out.flush() };

  /** Flows whose start was printed: their messages are printed too. */
  const open = new Set<string>();
  const event = (flowId: string, e: FlowEvent["event"]) => emit((w) => writeFlowEventJson(w, { $typeName: "tapwire.v1.FlowEvent", flowId, event: e }));
  return {
    started(flow: Flow) {
      open.add(flow.id);
      event(flow.id, { case: "started", value: flow });
    },
    messages(flowId: string, messages: FlowMessage[]) {
      if (open.has(flowId)) event(flowId, { case: "messages", value: { $typeName: "tapwire.v1.FlowMessages", messages } });
    },
    flow(flow: Flow) {
      open.delete(flow.id);
      event(flow.id, { case: "ended", value: flow });
    },
    flush: () => out.flush(),
  };
}
