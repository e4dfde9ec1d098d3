// The messages a flow keeps while it is open (WebSocket, Server-Sent Events): in order, within
// the stream budget (FlowLimits: bytes and count); past it they are counted, not kept.
import type { FlowMessage } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowContext } from "./flow-context.ts";

/** A log's messages for a flow: copied for an open flow's snapshot (the log goes on), handed
 * over when the flow has ended. */
export function messagesOf(log: MessageLog, open: boolean): FlowMessage[] {
  return open ? log.messages.slice() : log.messages;
}

export class MessageLog {
  readonly messages: FlowMessage[] = [];
  private keptBytes = 0;
  dropped = 0;

  constructor(private readonly ctx: FlowContext) {}

  /** Messages seen so far, kept or not: the index of the next one. */
  get count(): number {
    return this.messages.length + this.dropped;
  }

  /** Keeps `m` (carrying `bytes` of payload) if it fits. */
  add(m: FlowMessage, bytes: number): void {
    const limits = this.ctx.limits;
    if (this.messages.length < limits.maxStreamMessages && this.keptBytes + bytes <= limits.maxStreamBody) {
      this.messages.push(m);
      this.keptBytes += bytes;
    } else {
      this.dropped++;
      this.ctx.overflows.streamBudget++;
    }
  }
}
