// Where finished flows go.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";

export interface FlowSink {
  flow(flow: Flow): void;
  flush(): void | Promise<void>;
}

/** A text destination (stdout): writes are buffered, flush pushes them out. */
export interface OutputWriter {
  write(text: string): void;
  flush(): void | Promise<void>;
}

/** Buffered writer on a file descriptor-backed Bun sink (stdout by default). */
export function createOutputWriter(sink = Bun.stdout.writer()): OutputWriter {
  return {
    write(text) {
      sink.write(text);
    },
    flush() {
      return sink.flush() as unknown as Promise<void>;
    },
  };
}
