// Live flows to subscribers, each with a queue of its own bounded in flows and bytes: capture
// never waits for a subscriber; one that falls behind loses whole flows (counted, and told
// with the next message it gets), and no other subscriber notices.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowPredicate } from "./flow-filter.ts";
import { flowBytes } from "./flow-size.ts";

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

/** Flows waiting for one subscriber, at most. Capture hands flows over in bursts (a drain
 * of the ring makes thousands at once), so the queue holds a burst that a subscriber which
 * keeps up on average streams out a moment later. */
const QUEUE_FLOWS = 16384;
/** Bytes of flows waiting for one subscriber, at most (the flows themselves are shared by
 * every subscriber and the history: this bounds what a stalled one keeps alive). */
const QUEUE_BYTES = 48 << 20;

export function createFlowBroadcast(defaultQueue = QUEUE_FLOWS, queueBytes = QUEUE_BYTES): FlowBroadcast {
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
      // Taken from `head` on; the array is cut when the taken part is large (shift() on a long
      // array moves every element).
      let queue: Flow[] = [...(opts.first ?? [])];
      let head = 0;
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
          const waiting = queue.length - head;
          if (waiting >= limit || (waiting && bytes + size > queueBytes)) {
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
              } else if (head < queue.length) {
                const flow = queue[head]!;
                queue[head++] = undefined as unknown as Flow;
                if (head === queue.length) (queue.length = 0), (head = 0);
                else if (head >= 4096) (queue = queue.slice(head)), (head = 0);
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
