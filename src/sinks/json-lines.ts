// One flow per line: the canonical proto JSON of Flow (flow-json.ts).
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { flowJson } from "./flow-json.ts";
import type { FlowSink, OutputWriter } from "./sink.ts";

export function createJsonLinesSink(out: OutputWriter): FlowSink {
  return {
    flow(flow: Flow) {
      out.write(flowJson(flow) + "\n");
    },
    flush: () => out.flush(),
  };
}
