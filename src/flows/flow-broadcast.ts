// Live flows to subscribers, each with a queue of its own bounded in items and bytes: capture
// never waits for a subscriber; one that falls behind loses whole items (counted, and told
// with the next message it gets), and no other subscriber notices.
//
// A subscriber gets completed flows, or (`live`) every flow's events: started, messages as
// they complete, ended. A live subscriber's filter is applied to the flow as known when it
// starts (without its response's status: checked at the end); once a flow's start was sent
// to it, its messages and its end are too.
import type { Flow, FlowEvent, FlowMessage } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowPredicate } from "./flow-filter.ts";
import { flowBytes, flowMessagesBytes } from "./flow-size.ts";

export type BroadcastEvent = { flow: Flow } | { dropped: number } | { event: FlowEvent };

export interface Subscription extends AsyncIterable<BroadcastEvent> {
  /** Items dropped for this subscriber so far. */
  readonly dropped: number;
  close(): void;
}

export interface SubscribeOptions {
  queue?: number;
  /** Completed flows to start with (the history's newest). */
  first?: Flow[];
  /** Every flow's events, not only completed flows; `openMatch` filters their starts. */
  live?: { openMatch: FlowPredicate };
}

export interface FlowBroadcast {
  /** A flow ended. */
  publish(flow: Flow): void;
  /** A flow started (open). */
  started(flow: Flow): void;
  /** Messages of an open flow. */
  messages(flowId: string, messages: FlowMessage[]): void;
  subscribe(match: FlowPredicate, opts?: SubscribeOptions): Subscription;
  readonly subscribers: number;
  /** Items dropped for subscribers that fell behind, all of them together. */
  readonly dropped: number;
}

/** Items waiting for one subscriber, at most. Capture hands flows over in bursts (a drain
 * of the ring makes thousands at once), so the queue holds a burst that a subscriber which
 * keeps up on average streams out a moment later. */
const QUEUE_FLOWS = 16384;
/** Bytes of items waiting for one subscriber, at most (flows are shared by every subscriber
 * and the history: this bounds what a stalled one keeps alive). */
const QUEUE_BYTES = 48 << 20;

interface Subscriber {
  ended(flow: Flow): void;
  started(flow: Flow): void;
  messages(flowId: string, messages: FlowMessage[]): void;
}

const event = (flowId: string, e: FlowEvent["event"]): { event: FlowEvent } => ({ event: { $typeName: "tapwire.v1.FlowEvent", flowId, event: e } });

export function createFlowBroadcast(defaultQueue = QUEUE_FLOWS, queueBytes = QUEUE_BYTES): FlowBroadcast {
  const subs = new Set<Subscriber>();
  const liveSubs = new Set<Subscriber>();
  let droppedAll = 0;
  return {
    publish(flow) {
      for (const s of subs) s.ended(flow);
    },
    started(flow) {
      for (const s of liveSubs) s.started(flow);
    },
    messages(flowId, messages) {
      for (const s of liveSubs) s.messages(flowId, messages);
    },
    get subscribers() {
      return subs.size;
    },
    get dropped() {
      return droppedAll;
    },
    subscribe(match, opts = {}) {
      const limit = opts.queue ?? defaultQueue;
      const live = opts.live;
      // Taken from `head` on; the array is cut when the taken part is large (shift() on a long
      // array moves every element).
      let queue: { item: BroadcastEvent; size: number }[] = (opts.first ?? []).map((flow) => ({ item: live ? event(flow.id, { case: "ended", value: flow }) : { flow }, size: flowBytes(flow) }));
      let head = 0;
      let bytes = 0;
      for (const q of queue) bytes += q.size;
      let droppedTotal = 0;
      let droppedUntold = 0;
      let wake: (() => void) | undefined;
      let closed = false;
      /** Open flows whose start this subscriber was sent. */
      const sentOpen = new Set<string>();
      const offer = (item: BroadcastEvent, size: number): boolean => {
        const waiting = queue.length - head;
        let taken = true;
        if (waiting >= limit || (waiting && bytes + size > queueBytes)) {
          droppedTotal++;
          droppedUntold++;
          droppedAll++;
          taken = false;
        } else {
          queue.push({ item, size });
          bytes += size;
        }
        wake?.();
        return taken;
      };
      const sub: Subscriber = {
        ended(flow) {
          if (!live) {
            if (match(flow)) offer({ flow }, flowBytes(flow));
            return;
          }
          // A flow whose start was sent always gets its end.
          if (sentOpen.delete(flow.id) || match(flow)) offer(event(flow.id, { case: "ended", value: flow }), flowBytes(flow));
        },
        started(flow) {
          if (live!.openMatch(flow) && offer(event(flow.id, { case: "started", value: flow }), flowBytes(flow))) sentOpen.add(flow.id);
        },
        messages(flowId, messages) {
          if (!sentOpen.has(flowId)) return;
          offer(event(flowId, { case: "messages", value: { $typeName: "tapwire.v1.FlowMessages", messages } }), flowMessagesBytes(messages));
        },
      };
      subs.add(sub);
      if (live) liveSubs.add(sub);
      const close = () => {
        closed = true;
        subs.delete(sub);
        liveSubs.delete(sub);
        sentOpen.clear();
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
                const q = queue[head]!;
                queue[head++] = undefined as unknown as (typeof queue)[number];
                if (head === queue.length) (queue.length = 0), (head = 0);
                else if (head >= 4096) (queue = queue.slice(head)), (head = 0);
                bytes -= q.size;
                yield q.item;
              } else await new Promise<void>((r) => (wake = r)).finally(() => (wake = undefined));
            }
          } finally {
            close();
          }
        },
      };
    },
  };
}
