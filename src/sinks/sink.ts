// Where flows go: finished flows, and (for sinks that show them) flows while they are open.
import type { Flow, FlowMessage } from "../gen/tapwire/v1/flow_pb.ts";

export type { OutputWriter } from "./output.ts";

export interface FlowSink {
  /** A flow ended. */
  flow(flow: Flow): void;
  /** A flow started (open); sinks that show open flows have it. */
  started?(flow: Flow): void;
  /** Messages of an open flow. */
  messages?(flowId: string, messages: FlowMessage[]): void;
  /** Time passes (about every 100 ms): for what a sink shows after a while. */
  tick?(nowMs: number): void;
  flush(): void | Promise<void>;
}
