// Live flows to subscribers, each with a queue of its own bounded in flows and bytes: capture
// never waits for a subscriber; one that falls behind loses whole flows (counted, and told
// with the next message it gets), and no other subscriber notices.
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
  /** Flows dropped for subscribers that fell behind, all of them together. */
  readonly dropped: number;
}

/** Bytes of flows waiting for one subscriber, at most. */
const QUEUE_BYTES = 16 << 20;

/** What a flow weighs in memory, closely enough to bound a queue: its bodies and a bit. */
export function flowBytes(f: Flow): number {
  let n = 1024;
  if (f.request) n += f.request.body.length;
  if (f.response) n += f.response.body.length;
  return n;
}

export function createFlowBroadcast(defaultQueue = 1024, queueBytes = QUEUE_BYTES): FlowBroadcast {
  const subs = new Set<{ push(flow: Flow): void }>();
  let droppedAll = 0;
  return {
    publish(flow) {
      for (const s of subs) s.push(flow);
    },
    get subscribers() {
      return subs.size;
    },
    get dropped() {
      return droppedAll;
    },
    subscribe(match, opts = {}) {
      const limit = opts.queue ?? defaultQueue;
      const queue: Flow[] = [...(opts.first ?? [])];
      let bytes = 0;
      for (const f of queue) bytes += flowBytes(f);
      let droppedTotal = 0;
      let droppedUntold = 0;
      let wake: (() => void) | undefined;
      let closed = false;
      const sub = {
        push(flow: Flow) {
          if (!match(flow)) return;
          const size = flowBytes(flow);
          if (queue.length >= limit || (queue.length && bytes + size > queueBytes)) {
            droppedTotal++;
            droppedUntold++;
            droppedAll++;
          } else {
            queue.push(flow);
            bytes += size;
          }
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
              } else if (queue.length) {
                const flow = queue.shift()!;
                bytes -= flowBytes(flow);
                yield { flow };
              }
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
