// A Redis connection's flows: each command the client sends and the reply that answers it,
// paired in order (pipelining keeps the order). The client's side is known from how the
// connection was made (connect or accept), else from its first bytes.
//
// Pub/sub breaks one reply per command: (P|S)SUBSCRIBE is confirmed once per channel and
// (P|S)UNSUBSCRIBE once per channel named, or, named none, until the count of subscriptions
// reaches 0; the confirmations of one command make one flow. What the server pushes to a
// subscriber (RESP3 push values that are not confirmations; RESP2 "message" arrays while
// subscribed) answers no command: each goes out as a flow of its own, reply only.
//
// A command sent out before its reply (too many waiting) leaves its reply owed: that many
// replies are passed over, so the pairing after it stays right. Bytes lost on either side
// end the reading of the connection: RESP has no marker to find a value's start by, so what
// waits is sent out marked.
import { Protocol, type Flow, type Missing } from "../gen/tapwire/v1/flow_pb.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { Direction } from "../bpf/events.ts";
import { isRedisCommandStart } from "../protocols/sniff.ts";
import { bulkText, createRespReader, type RespReader, type RespValue } from "../protocols/redis/resp.ts";
import { commandOf, redactReply, renderReply, statementOf, type RedisCommand } from "../protocols/redis/commands.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { NO_MESSAGES } from "./messages.ts";

/** Elements of an aggregate value kept for its text; the rest are counted. */
const MAX_ITEMS = 1000;
const SUBSCRIBE = new Set(["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"]);
const UNSUBSCRIBE = new Set(["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]);
const CONFIRMATIONS = new Set(["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"]);
const PUSHED = new Set(["message", "pmessage", "smessage"]);

interface Pending {
  command: RedisCommand | undefined;
  startTs: number;
  endTs: number;
  /** Confirmations still to come (pub/sub); -1: until the subscription count is 0. */
  confirmations: number;
  /** The confirmations seen, for a pub/sub command's one flow. */
  replies: RespValue[];
}

/** The first word of an aggregate value, when it is a string. */
function firstWord(v: RespValue): string | undefined {
  if (!("items" in v)) return undefined;
  const w = v.items[0];
  return w?.type === "bulk" ? bulkText(w.data) : w?.type === "simple" ? w.text : undefined;
}

/** A value's first bytes are a RESP2 pushed message, not a command ("*3\r\n$7\r\nmessage"). */
function startsWithPushedMessage(b: Uint8Array): boolean {
  const head = new TextDecoder("latin1").decode(b.subarray(0, 24));
  return /^\*\d+\r\n\$\d+\r\n[ps]?message\r\n/.test(head);
}

export function createRedisStream(info: ConnectionInfo, ctx: FlowContext): StreamSink {
  let processIsClient = roleFromOrigin(info.origin);
  let commandDir: Direction | undefined = processIsClient === undefined ? undefined : processIsClient ? Direction.Egress : Direction.Ingress;
  const pending: Pending[] = [];
  /** Subscriptions, as the last confirmation counted them. */
  let subscriptions = 0;
  /** Replies to commands already sent out without them. */
  let owed = 0;
  let lost = 0;
  let stopped: string | undefined;
  let connection: Flow["connection"];
  let commandStart: number | undefined;

  const emit = (p: Pending | undefined, replies: RespValue[], endTs: number, missing?: Missing) => {
    const operation = p?.command?.operation ?? (p ? "" : "(pushed)");
    const rendered = replies.map((r) => renderReply(redactReply(operation, r), ctx.maxBody));
    const first = rendered[0];
    const startTs = p?.startTs ?? endTs;
    ctx.emit({
      $typeName: "tapwire.v1.Flow",
      id: ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: ctx.timestamp(replies.length ? endTs : (p?.endTs ?? endTs)),
      protocol: Protocol.REDIS,
      connection: (connection ??= describeConnection(info, processIsClient ?? commandDir === Direction.Egress, ctx)),
      missing,
      open: false,
      messages: NO_MESSAGES,
      messagesDropped: 0,
      database: {
        $typeName: "tapwire.v1.DatabaseCall",
        system: "redis",
        operation,
        statement: p ? (p.command ? statementOf(p.command) : "(not a command)") : "",
        reply: rendered.map((r) => r.text).join("\n"),
        replyType: replies[0]?.type ?? "",
        rows: first?.rows === undefined ? undefined : BigInt(first.rows),
        error: first?.error ? { $typeName: "tapwire.v1.DatabaseError", ...first.error } : undefined,
        replyTruncated: rendered.some((r) => r.truncated),
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

  /** Both directions are read with the same bounds: --max-body per value, MAX_ITEMS per aggregate. */
  const reader = (onValue: (v: RespValue, tsNs: number) => void): RespReader => createRespReader({ maxBulk: ctx.maxBody, maxValueBytes: ctx.maxBody, maxItems: MAX_ITEMS, onValue });

  const commands = reader((v, tsNs) => {
    const command = commandOf(v);
    const op = command?.operation ?? "";
    const confirmations = SUBSCRIBE.has(op) ? Math.max(1, command!.argCount) : UNSUBSCRIBE.has(op) ? (command!.argCount > 0 ? command!.argCount : -1) : 0;
    if (pending.length >= ctx.limits.maxPendingRequests) {
      ctx.overflows.redisPendingCommands++;
      const evicted = pending.shift()!;
      owed += evicted.confirmations > 0 ? evicted.confirmations : 1;
      emit(evicted, [], tsNs, missingOf("sent out before its reply: too many commands waiting", { noResponse: true }));
    }
    pending.push({ command, startTs: commandStart ?? tsNs, endTs: tsNs, confirmations, replies: [] });
    commandStart = undefined;
  });

  const replies = reader((v, tsNs) => {
    const word = firstWord(v);
    const confirmation = (v.type === "push" || v.type === "array") && word !== undefined && CONFIRMATIONS.has(word);
    if (confirmation && "items" in v) {
      const count = v.items[2];
      if (count?.type === "integer") subscriptions = Number(count.value);
    }
    // Pushed to a subscriber: answers no command.
    if (!confirmation && (v.type === "push" || (v.type === "array" && subscriptions > 0 && word !== undefined && PUSHED.has(word)))) {
      emit(undefined, [v], tsNs);
      return;
    }
    if (owed > 0) {
      owed--;
      return;
    }
    const p = pending[0];
    if (!p) {
      emit(undefined, [v], tsNs, missingOf("a reply to a command tapwire did not see", { joinedMidStream: true }));
      return;
    }
    if (p.confirmations !== 0 && confirmation) {
      p.replies.push(v);
      const done = p.confirmations > 0 ? --p.confirmations === 0 : subscriptions === 0;
      if (!done) return;
    } else p.replies.push(v);
    pending.shift();
    emit(p, p.replies, tsNs);
  });

  const stop = (why: string, tsNs: number) => {
    if (stopped) return;
    stopped = why;
    for (const p of pending.splice(0)) emit(p, p.replies, tsNs, missingOf(why, { noResponse: p.replies.length === 0 }));
  };

  return {
    data(dir, bytes, tsNs) {
      if (stopped) return;
      if (commandDir === undefined) {
        // Joined: the side whose first bytes are a command (not a pushed message) is the client.
        const isCommand = isRedisCommandStart(bytes) && !startsWithPushedMessage(bytes);
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
