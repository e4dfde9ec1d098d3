// A WebSocket connection's messages, as one flow's: read both ways (src/protocols/websocket),
// kept within the stream budget (MessageLog), sent to live watchers as they complete. Used
// after an HTTP/1.1 upgrade (http1-flows.ts) and for a connection joined after its upgrade
// (createJoinedWebSocketStream below).
import { Protocol, Role, type Connection, type Flow, type FlowMessage, type Missing, type WebSocketMessage } from "../gen/tapwire/v1/flow_pb.ts";
import { createWebSocketConnection, type WebSocketConnection } from "../protocols/websocket/connection.ts";
import type { WsMessage } from "../protocols/websocket/messages.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { Direction } from "../bpf/events.ts";
import { describeConnection, type FlowContext } from "./flow-context.ts";
import { MessageLog, messagesOf } from "./message-log.ts";
import { EMPTY_BYTES, missingMessage } from "./messages.ts";

const textDecoder = new TextDecoder();

export class WebSocketSession {
  readonly conn: WebSocketConnection;
  readonly log: MessageLog;
  /** When its last message was seen. */
  endTs: number;
  lostBytes = 0;
  /** Set when its start went to live watchers: the flow's id. */
  flowId?: string;
  /** Messages each side sent so far (client, server): each message's index. */
  private readonly sent: [number, number] = [0, 0];

  /** `extensions`: the 101's Sec-WebSocket-Extensions; undefined when the upgrade was not seen. */
  constructor(
    private readonly ctx: FlowContext,
    extensions: string | undefined,
    startTs: number,
  ) {
    this.conn = createWebSocketConnection({ extensions: extensions ?? "", maxBytes: ctx.maxBody, joined: extensions === undefined });
    this.log = new MessageLog(ctx);
    this.endTs = startTs;
  }

  /** Live watchers see the flow from here on (`open`: the flow as it is). */
  start(open: () => Flow): void {
    if (!this.ctx.live) return;
    this.flowId = this.ctx.nextFlowId();
    this.ctx.live.started(open());
  }

  /** Bytes from one side; true once a close frame went each way (the session is over). */
  data(fromClient: boolean, bytes: Uint8Array, ts: number): boolean {
    const done = this.conn.push(fromClient, bytes);
    if (!done.length) return false;
    this.endTs = ts;
    const time = this.ctx.timestamp(ts);
    const sender = fromClient ? Role.CLIENT : Role.SERVER;
    const side = fromClient ? 0 : 1;
    const messages: FlowMessage[] = done.map((w) => ({ $typeName: "tapwire.v1.FlowMessage", sender, time, index: this.sent[side]++, message: { case: "websocket", value: webSocketMessage(w) } }));
    for (let i = 0; i < messages.length; i++) this.log.add(messages[i]!, done[i]!.data.length);
    if (this.flowId && this.ctx.live) this.ctx.live.messages(this.flowId, messages);
    return this.conn.closed;
  }

  lose(fromClient: boolean, lost: number): void {
    this.conn.lose(fromClient);
    this.lostBytes += lost;
  }

  /** What the flow lacks; `joined`: its upgrade was not seen. */
  missing(joined: boolean): Missing | undefined {
    if (!joined && !this.lostBytes && !this.conn.unreadable) return undefined;
    const reasons: string[] = [];
    if (joined) reasons.push("joined the connection after its upgrade to WebSocket: the handshake and earlier messages were not seen");
    if (this.lostBytes) reasons.push(`${this.lostBytes} bytes lost on the connection: WebSocket messages after them not read`);
    else if (this.conn.unreadable) reasons.push("bytes that are not WebSocket frames: messages after them not read");
    return missingMessage({ lostBytes: this.lostBytes, noResponse: false, joinedMidStream: joined, requestIncomplete: false, responseIncomplete: this.lostBytes > 0 || this.conn.unreadable, skippedBytes: 0, unseenBodyBytes: 0, reasons });
  }
}

function webSocketMessage(w: WsMessage): WebSocketMessage {
  const text = w.type === "text" && !w.error;
  return {
    $typeName: "tapwire.v1.WebSocketMessage",
    type: w.type,
    // A text message's payload is its text; a close frame's, its code and reason.
    data: text || w.type === "close" ? EMPTY_BYTES : w.data,
    text: text ? textDecoder.decode(w.data) : "",
    size: BigInt(w.size),
    fragments: w.fragments,
    compressed: w.compressed,
    truncated: w.truncated,
    closeCode: w.closeCode,
    closeReason: w.closeReason,
    error: w.error,
  };
}

/**
 * A connection joined after its upgrade to WebSocket: one flow of its messages, from the first
 * whole frame on, without the upgrade (marked joined). The client is the side that masks its
 * frames; permessage-deflate is assumed where a frame's RSV1 says so (see the connection).
 */
export function createJoinedWebSocketStream(info: ConnectionInfo, ctx: FlowContext): StreamSink {
  const session = new WebSocketSession(ctx, undefined, 0);
  let processIsClient: boolean | undefined;
  let startTs = 0;
  let connection: Connection | undefined;
  let ended = false;
  const flowOf = (open: boolean): Flow => ({
    $typeName: "tapwire.v1.Flow",
    id: session.flowId ?? ctx.nextFlowId(),
    startTime: ctx.timestamp(startTs),
    endTime: open ? undefined : ctx.timestamp(session.endTs),
    protocol: Protocol.WEBSOCKET,
    connection: (connection ??= describeConnection(info, processIsClient ?? false, ctx)),
    request: undefined,
    response: undefined,
    missing: open ? undefined : session.missing(true),
    http2: undefined,
    grpc: undefined,
    open,
    messages: messagesOf(session.log, open),
    messagesDropped: session.log.dropped,
  });
  const end = () => {
    if (ended || processIsClient === undefined) return;
    ended = true;
    ctx.emit(flowOf(false));
  };
  return {
    data(dir, bytes, tsNs) {
      if (ended) return;
      if (processIsClient === undefined) {
        // The first frame says who sent it: clients mask theirs.
        const masked = bytes.length >= 2 && (bytes[1]! & 0x80) !== 0;
        processIsClient = dir === Direction.Egress ? masked : !masked;
        startTs = tsNs;
        session.endTs = tsNs;
        session.start(() => flowOf(true));
      }
      const fromClient = (dir === Direction.Egress) === processIsClient;
      if (session.data(fromClient, bytes, tsNs)) end();
    },
    gap(dir, lost) {
      if (processIsClient === undefined) return;
      session.lose((dir === Direction.Egress) === processIsClient, lost);
    },
    unseen() {},
    close: () => end(),
  };
}
