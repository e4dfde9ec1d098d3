// Where finished flows go.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";

export type { OutputWriter } from "./output.ts";

export interface FlowSink {
  flow(flow: Flow): void;
  flush(): void | Promise<void>;
}
