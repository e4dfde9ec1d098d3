// Live flows to subscribers, each with a bounded queue of its own: capture never waits for
// a subscriber; one that falls behind loses flows (counted, and told with the next message
// it gets), and no other subscriber notices.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowPredicate } from "./flow-filter.ts";

export type BroadcastEvent = { flow: Flow } | { dropped: number };

export interface Subscription extends AsyncIterable<BroadcastEvent> {
  /** Flows dropped for this subscriber so far. */
  readonly dropped: number;
  close(): void;
}

export interface FlowBroadcast {
  publish(flow: Flow): void;
  subscribe(match: FlowPredicate, opts?: { queue?: number; first?: Flow[] }): Subscription;
  readonly subscribers: number;
}

export function createFlowBroadcast(defaultQueue = 1024): FlowBroadcast {
  const subs = new Set<{ push(flow: Flow): void }>();
  return {
    publish(flow) {
      for (const s of subs) s.push(flow);
    },
    get subscribers() {
      return subs.size;
    },
    subscribe(match, opts = {}) {
      const limit = opts.queue ?? defaultQueue;
      const queue: Flow[] = [...(opts.first ?? [])];
      let droppedTotal = 0;
      let droppedUntold = 0;
      let wake: (() => void) | undefined;
      let closed = false;
      const sub = {
        push(flow: Flow) {
          if (!match(flow)) return;
          if (queue.length >= limit) {
            droppedTotal++;
            droppedUntold++;
          } else queue.push(flow);
          wake?.();
        },
      };
      subs.add(sub);
      const close = () => {
        closed = true;
        subs.delete(sub);
        wake?.();
      };
      return {
        get dropped() {
          return droppedTotal;
        },
        close,
        async *[Symbol.asyncIterator]() {
          try {
            while (!closed) {
              if (droppedUntold) {
                const n = droppedUntold;
                droppedUntold = 0;
                yield { dropped: n };
              } else if (queue.length) yield { flow: queue.shift()! };
              else await new Promise<void>((r) => (wake = r)).finally(() => (wake = undefined));
            }
          } finally {
            close();
          }
        },
      };
    },
  };
}
