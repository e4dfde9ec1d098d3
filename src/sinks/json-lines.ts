// One flow per line: the canonical proto JSON of Flow.
import { toJsonString } from "@bufbuild/protobuf";
import { FlowSchema, type Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowSink, OutputWriter } from "./sink.ts";

export function createJsonLinesSink(out: OutputWriter): FlowSink {
  return {
    flow(flow: Flow) {
      out.write(toJsonString(FlowSchema, flow) + "\n");
    },
    flush: () => out.flush(),
  };
}
