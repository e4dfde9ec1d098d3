// One flow per line: the canonical proto JSON of Flow (flow-json.ts), made in UTF-8 in one
// reused buffer and copied into the output's queue.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import { writeFlowJson } from "./flow-json.ts";
import { JsonBytes } from "./json-bytes.ts";
import type { FlowSink, OutputWriter } from "./sink.ts";

const NEWLINE = 0x0a;

export function createJsonLinesSink(out: OutputWriter): FlowSink {
  const line = new JsonBytes();
  return {
    flow(flow: Flow) {
      line.reset();
      writeFlowJson(line, flow);
      line.ensure(1);
      line.buf[line.at++] = NEWLINE;
      out.writeBytes(line.view());
      line.shrink();
    },
    flush: () => out.flush(),
  };
}
