// A Redis connection's flows: each command the client sends and the reply that answers it,
// paired in order (pipelining keeps the order). The client's direction is the one whose first
// bytes are a command. A (P|S)SUBSCRIBE is answered once per channel; what the server pushes
// afterwards (RESP2 "message" arrays, RESP3 push values) answers no command and goes out as a
// flow of its own, reply only. Bytes lost on either side end the reading of the connection:
// RESP has no marker to find a value's start by, so what waits is sent out marked.
import { Protocol, type Flow, type Missing } from "../gen/tapwire/v1/flow_pb.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { Direction } from "../bpf/events.ts";
import { isRedisCommandStart } from "../protocols/sniff.ts";
import { createRespReader, type RespReader, type RespValue } from "../protocols/redis/resp.ts";
import { commandOf, renderReply, statementOf, type RedisCommand } from "../protocols/redis/commands.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { NO_MESSAGES } from "./messages.ts";

/** Elements of an aggregate value kept for its text; the rest are counted. */
const MAX_ITEMS = 1000;
const SUBSCRIBE = new Set(["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"]);
const PUSHED = new Set(["message", "pmessage", "smessage"]);

interface Pending {
  command: RedisCommand | undefined;
  /** What the client sent when it was not a command array (shown as it was). */
  raw?: string;
  startTs: number;
  endTs: number;
  /** Replies it is answered by (a SUBSCRIBE of N channels: N). */
  replies: number;
}

export function createRedisStream(info: ConnectionInfo, ctx: FlowContext): StreamSink {
  let processIsClient = roleFromOrigin(info.origin);
  let commandDir: Direction | undefined;
  const pending: Pending[] = [];
  let subscribed = false;
  let lost = 0;
  let stopped: string | undefined;
  let connection: Flow["connection"];

  const emit = (p: Pending | undefined, reply: RespValue | undefined, endTs: number, missing?: Missing) => {
    const rendered = reply ? renderReply(reply, ctx.maxBody) : undefined;
    const startTs = p?.startTs ?? endTs;
    ctx.emit({
      $typeName: "tapwire.v1.Flow",
      id: ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: ctx.timestamp(reply ? endTs : (p?.endTs ?? endTs)),
      protocol: Protocol.REDIS,
      connection: (connection ??= describeConnection(info, processIsClient ?? commandDir === Direction.Egress, ctx)),
      missing,
      open: false,
      messages: NO_MESSAGES,
      messagesDropped: 0,
      database: {
        $typeName: "tapwire.v1.DatabaseCall",
        system: "redis",
        operation: p?.command?.operation ?? (p ? "" : "(pushed)"),
        statement: p ? (p.command ? statementOf(p.command) : (p.raw ?? "")) : "",
        reply: rendered?.text ?? "",
        replyType: reply ? reply.type : "",
        rows: rendered?.rows === undefined ? undefined : BigInt(rendered.rows),
        error: rendered?.error ? { $typeName: "tapwire.v1.DatabaseError", ...rendered.error } : undefined,
        replyTruncated: rendered?.truncated ?? false,
      },
    });
  };

  const missingOf = (reason: string, extra: Partial<Missing> = {}): Missing => ({
    $typeName: "tapwire.v1.Missing",
    lostBytes: BigInt(lost),
    noResponse: false,
    joinedMidStream: false,
    requestIncomplete: false,
    responseIncomplete: false,
    skippedBytes: 0n,
    unseenBodyBytes: 0n,
    reason,
    ...extra,
  });

  const commands: RespReader = createRespReader({
    maxBulk: ctx.maxBody,
    maxItems: MAX_ITEMS,
    onValue(v, tsNs) {
      const command = commandOf(v);
      const channels = command && SUBSCRIBE.has(command.operation) ? Math.max(1, command.words.length - 1) : 1;
      if (command && SUBSCRIBE.has(command.operation)) subscribed = true;
      if (pending.length >= ctx.limits.maxPendingRequests) {
        ctx.overflows.redisPendingCommands++;
        emit(pending.shift(), undefined, tsNs, missingOf("sent out before its reply: too many commands waiting", { noResponse: true }));
      }
      pending.push({ command, raw: command ? undefined : "(not a command)", startTs: commandStart ?? tsNs, endTs: tsNs, replies: channels });
      commandStart = undefined;
    },
  });
  let commandStart: number | undefined;

  const replies: RespReader = createRespReader({
    maxBulk: ctx.maxBody,
    maxItems: MAX_ITEMS,
    onValue(v, tsNs) {
      // Pushed to a subscriber: answers no command.
      const pushed = v.type === "push" || (subscribed && v.type === "array" && v.items[0]?.type === "bulk" && PUSHED.has(new TextDecoder().decode(v.items[0].data)));
      if (pushed || pending.length === 0) {
        emit(undefined, v, tsNs, pushed ? undefined : missingOf("a reply to a command tapwire did not see", { joinedMidStream: true }));
        return;
      }
      const p = pending[0]!;
      if (--p.replies <= 0) pending.shift();
      emit(p, v, tsNs);
    },
  });

  const stop = (why: string, tsNs: number) => {
    if (stopped) return;
    stopped = why;
    for (const p of pending.splice(0)) emit(p, undefined, tsNs, missingOf(why, { noResponse: true }));
  };

  return {
    data(dir, bytes, tsNs) {
      if (stopped) return;
      if (commandDir === undefined) {
        // The side whose first bytes are a command is the client.
        const isCommand = isRedisCommandStart(bytes);
        commandDir = isCommand ? dir : dir === Direction.Egress ? Direction.Ingress : Direction.Egress;
        processIsClient ??= commandDir === Direction.Egress;
      }
      const reader = dir === commandDir ? commands : replies;
      if (dir === commandDir && !commands.pending) commandStart = tsNs;
      reader.push(bytes, tsNs);
      if (reader.failed) stop(`not RESP: ${reader.failed}`, tsNs);
    },
    gap(_dir, n, tsNs) {
      lost += n;
      stop(`${n} bytes of the connection were lost; RESP cannot be read past them`, tsNs);
    },
    unseen(_dir, n, tsNs) {
      lost += n;
      stop(`${n} bytes of the connection could not be seen`, tsNs);
    },
    close(tsNs) {
      stop("the connection ended before the reply", tsNs);
    },
  };
}
