// HTTP/1 connections to flows: a request parser on the client's direction, a response
// parser on the server's, and the stitching of requests to responses in order
// (keep-alive and pipelining pair first-in, first-out). At most `maxPendingRequests` requests
// wait for their responses: past it the oldest goes out without its response (marked,
// counted), and the response that comes for it later goes out alone — pairing stays right.
// When bytes are lost between responses (the ring buffer was full), whole responses may have
// gone with them: the next response is paired by time instead — with the latest request
// that began before it — and the requests before that go out marked as having lost theirs.
// A text/event-stream response's events are read as its body arrives (and sent live); after
// an upgrade to WebSocket the connection's messages are its flow's (websocket-session.ts),
// after one to h2c its streams are HTTP/2's.
import { isHttp1RequestStart } from "../protocols/sniff.ts";
import { Protocol, Role, type Connection, type Flow, type FlowMessage, type Missing } from "../gen/tapwire/v1/flow_pb.ts";
import { WebSocketSession } from "./websocket-session.ts";
import { createEventStreamReader, type EventStreamReader } from "../protocols/sse/event-stream.ts";
import { createHttp1Parser } from "../protocols/http1/parser.ts";
import { GapEffect, type Http1Parser, type Http1Request, type Http1Response } from "../protocols/http1/types.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { ConnOrigin, Direction } from "../bpf/events.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { createHttp2Stream } from "./http2-flows.ts";
import { fieldValue, missingMessage, requestMessage, responseMessage } from "./messages.ts";
import { decodedBody } from "./content.ts";
import { EMPTY_BYTES, NO_MESSAGES } from "./messages.ts";
import { MessageLog, messagesOf } from "./message-log.ts";


/** One request on its way to becoming a flow; its response may complete before it does. */
interface Exchange {
  /** When its request began (the first byte seen), and its method. */
  startTs: number;
  method: string;
  request?: Http1Request;
  requestDone: boolean;
  response?: Http1Response;
  informational: number[];
  /** Bytes sent with sendfile inside the response (counted, not seen). */
  unseenResponseBytes: number;
  unseenRequestBytes: number;
  /** Sent out before its response: more requests were waiting than the connection keeps. */
  overflow?: boolean;
  /** Its response (or, for a response alone, its request) was in bytes lost on the connection. */
  responseLost?: boolean;
  requestLost?: boolean;
  /** Bytes lost between messages, counted on this flow (the first one the loss shows in). */
  lostBetween?: number;
  /** Its response is a text/event-stream: its events are read as they come. */
  sse?: EventStream;
  /** It upgraded to WebSocket: the connection's messages from then on are this flow's. */
  ws?: WebSocketSession;
  /** Set when its start went to live watchers: the flow's id from then on. */
  flowId?: string;
}


interface EventStream {
  reader: EventStreamReader;
  /** The events kept for the final flow (within the stream budget), and those past it. */
  log: MessageLog;
  /** Bytes of the body were lost: events after them are not read. */
  lost?: boolean;
}

/** Whether a request and its response agreed on an upgrade to `protocol`. */
function upgradesTo(req: Http1Request, res: Http1Response, protocol: string): boolean {
  const has = (v: string) => v.split(",").some((p) => p.trim().toLowerCase() === protocol);
  return has(fieldValue(req.headers, "upgrade")) && has(fieldValue(res.headers, "upgrade"));
}

/** Bytes lost between messages in one direction, since they were last accounted for; -1: none. */
const NO_LOSS = -1;


export function createHttp1Stream(info: ConnectionInfo, ctx: FlowContext): StreamSink {
  // Which direction carries requests: known from accept/connect, or from the first bytes.
  let processIsClient = roleFromOrigin(info.origin);
  let requestDir: Direction | undefined;
  let requests: Http1Parser | undefined;
  let responses: Http1Parser | undefined;
  const queue: Exchange[] = [];
  let flowsEmitted = 0;
  /** Responses still to come for requests that went out without them (overflow). */
  let orphanResponses = 0;
  const maxPending = ctx.limits.maxPendingRequests;
  // sendfile byte counts waiting to be attributed to the message they fell in.
  const unseen: [number, number] = [0, 0];
  // Losses that may have taken whole messages. Responses: pairing is redone by time at the
  // next response. Requests: since the last request seen, requests may have been lost (a
  // response that finds none waiting says so); their bytes not yet counted on a flow; and
  // those counted already, from the kernel's positions, before their gap was found.
  let responseLoss = NO_LOSS;
  let requestsLost = false;
  let requestLostBytes = 0;
  let requestBytesAhead = 0;

  const joinedMidStream = info.origin === ConnOrigin.Found;
  // The same for every flow of the connection once the role is known.
  let connection: Connection | undefined;
  // After "101 Switching Protocols" to h2c, the rest of the connection is HTTP/2.
  let h2: StreamSink | undefined;

  function start(firstDir: Direction, first: Uint8Array) {
    if (processIsClient === undefined) {
      const isRequest = isHttp1RequestStart(first);
      // Whoever sends a request is the client.
      processIsClient = firstDir === Direction.Egress ? isRequest : !isRequest;
    }
    requestDir = processIsClient ? Direction.Egress : Direction.Ingress;
    const responseDirection = requestDir === Direction.Egress ? Direction.Ingress : Direction.Egress;
    responses = createHttp1Parser("response", {
      maxBody: ctx.maxBody,
      onMessage: (m) => onResponse(m as Http1Response),
      // After a loss, the response is read as an answer to the request it will be paired with.
      responseMethod: (startTs) => (responseLoss === NO_LOSS ? undefined : (queue[pickAfterLoss(startTs)]?.method ?? "")),
      onEventStream: (m) => eventStreamBegins(m),
      onBodyData: (data, ts) => eventStreamData(data, ts),
      onUpgradedBytes: (data, ts) => (h2 ? h2.data(responseDirection, data, ts, 0) : webSocketData(false, data, ts)),
      onUpgradedGap: (lost, ts) => (h2 ? h2.gap(responseDirection, lost, ts) : webSocketLoss(false, lost)),
    });
    requests = createHttp1Parser("request", {
      maxBody: ctx.maxBody,
      onMessage: (m) => onRequest(m as Http1Request),
      onUpgradedBytes: (data, ts) => (h2 ? h2.data(requestDir!, data, ts, 0) : webSocketData(true, data, ts)),
      onUpgradedGap: (lost, ts) => (h2 ? h2.gap(requestDir!, lost, ts) : webSocketLoss(true, lost)),
      onRequestHead: (method, startTs) => {
        // A response from here on answers a request seen; bytes lost before it that no flow
        // showed are in the summary only.
        requestsLost = false;
        requestLostBytes = 0;
        queue.push({ startTs, method, requestDone: false, informational: [], unseenResponseBytes: 0, unseenRequestBytes: 0 });
        responses!.expectResponseTo(method);
        if (queue.length > maxPending) {
          const oldest = queue.shift()!;
          oldest.overflow = true;
          ctx.overflows.http1PendingRequests++;
          orphanResponses++;
          emit(oldest);
        }
      },
    });
  }

  function onRequest(m: Http1Request) {
    let ex = queue.find((x) => !x.requestDone);
    if (!ex) queue.push((ex = { startTs: m.startTs, method: m.method, requestDone: false, informational: [], unseenResponseBytes: 0, unseenRequestBytes: 0 }));
    ex.request = m;
    ex.requestDone = true;
    ex.unseenRequestBytes = takeUnseen(requestDir!, m.lostBytes);
    flushReady();
  }

  function onResponse(m: Http1Response) {
    if (orphanResponses > 0 && !m.informational) {
      // The answer to a request that went out without it.
      orphanResponses--;
      emit({ startTs: m.startTs, method: "", requestDone: true, response: m, informational: [], unseenRequestBytes: 0, unseenResponseBytes: takeUnseen(responseDir(), m.lostBytes), overflow: true });
      return;
    }
    if (m.informational) {
      const ex = queue.find((x) => !x.response && !x.responseLost);
      if (ex) ex.informational.push(m.status);
      return;
    }
    const ex = responseLoss === NO_LOSS ? queue.find((x) => !x.response && !x.responseLost) : realign(m.startTs);
    if (!ex) {
      // A response to a request tapwire did not see: joined after it was sent, or it was lost.
      flushReady(); // requests before it that lost their responses go first
      const lost = requestsLost ? requestLostBytes : undefined;
      requestLostBytes = 0; // counted once
      // Its request lost, it may still have switched protocols: what follows is not HTTP/1.
      if (m.status === 101) requests!.handOver();
      emit({
        startTs: m.startTs,
        method: "",
        requestDone: true,
        response: m,
        informational: [],
        unseenRequestBytes: 0,
        unseenResponseBytes: takeUnseen(responseDir(), m.lostBytes),
        requestLost: lost !== undefined,
        lostBetween: lost,
      });
      return;
    }
    ex.response = m;
    ex.unseenResponseBytes = takeUnseen(responseDir(), m.lostBytes);
    if (m.status === 101 && ex.request && upgradesTo(ex.request, m, "websocket")) {
      // The rest of the connection is this flow's WebSocket messages; it goes out at their end.
      startWebSocket(ex, m);
      queue.splice(queue.indexOf(ex), 1);
      requests!.handOver();
      flushReady(); // requests before it that lost their responses
      return;
    }
    if (m.status === 101 && ex.request && /^\s*h2c\s*$/i.test(fieldValue(m.headers, "upgrade"))) {
      // The request becomes stream 1 of the HTTP/2 connection; its response comes in frames.
      h2 = createHttp2Stream(info, ctx, { joined: false, upgrade: { request: ex.request, processIsClient: processIsClient! } });
      queue.splice(queue.indexOf(ex), 1);
      requests!.handOver();
      flushReady(); // requests before it that lost their responses
      return;
    }
    const method = ex.request?.method;
    if (m.status === 101 || (method === "CONNECT" && m.status >= 200 && m.status < 300)) requests!.handOver();
    flushReady();
  }

  /**
   * After a loss between responses: the waiting request this response (begun at `startTs`)
   * answers — the latest one begun before it, since a response cannot precede its request and
   * a client that waits for each response sends the next request only after it. Those waiting
   * before it lost their responses in the gap and are marked so. Pipelined requests (several
   * sent before any response) cannot be told apart this way: the response goes to the latest,
   * the earlier ones are marked as having lost theirs, though one of them may be its own.
   */
  function realign(startTs: number): Exchange | undefined {
    let lostBytes = responseLoss;
    responseLoss = NO_LOSS;
    const pick = pickAfterLoss(startTs);
    // (Lost with none waiting before it: whole exchanges went, and no flow shows it.)
    const end = pick < 0 ? queue.length : pick;
    let marked = 0;
    for (let i = 0; i < end; i++) {
      const x = queue[i]!;
      if (x.response || x.responseLost || x.startTs > startTs) continue;
      x.responseLost = true;
      x.lostBetween = lostBytes;
      lostBytes = 0;
      marked++;
    }
    // The response parser expects a response per request, in order, to read HEAD's and
    // CONNECT's right: this one took the first expected; the rest of those answered or lost
    // here will not come.
    const answered = marked + (pick >= 0 ? 1 : 0);
    if (answered > 1) responses!.forgetExpected(answered - 1);
    if (pick >= 0) return queue[pick];
    // None seen before it: its own request was lost too (or never seen).
    if (lostBytes > 0) {
      requestsLost = true;
      requestLostBytes += lostBytes;
    }
    return undefined;
  }

  /** The waiting request a response begun at `startTs` answers after a loss (see realign): its
   * index in the queue, or -1 when it is none of them. */
  function pickAfterLoss(startTs: number): number {
    // With requests lost too, the latest request seen is not the latest sent: the response
    // answers one that was lost, and every request waiting lost its response.
    if (requestsLost) return -1;
    let pick = -1;
    for (let i = 0; i < queue.length; i++) {
      const x = queue[i]!;
      if (!x.response && !x.responseLost && x.startTs <= startTs) pick = i;
    }
    return pick;
  }

  function responseDir(): Direction {
    return requestDir === Direction.Egress ? Direction.Ingress : Direction.Egress;
  }

  function takeUnseen(dir: Direction, lost: number): number {
    const n = Math.min(unseen[dir], lost);
    unseen[dir] = 0;
    return n;
  }

  /** The exchange whose response is being read, while one is; a text/event-stream response
   * gets its events read as they come (and, watched live, its flow started). */
  let streaming: Exchange | undefined;

  function eventStreamBegins(m: Http1Response): boolean {
    streaming = undefined;
    // A compressed stream's bytes are not its events (its body is decoded at the end, as any).
    const coding = fieldValue(m.headers, "content-encoding").trim().toLowerCase();
    if (m.status !== 200 || (coding !== "" && coding !== "identity")) return false;
    // The request it answers, as onResponse will pair it (not after a loss: then it is not known yet).
    const ex = responseLoss === NO_LOSS && orphanResponses === 0 ? queue.find((x) => !x.response && !x.responseLost) : undefined;
    if (!ex) return false;
    ex.sse = { reader: createEventStreamReader(ctx.maxBody), log: new MessageLog(ctx) };
    streaming = ex;
    if (ctx.live) {
      ex.flowId = ctx.nextFlowId();
      ctx.live.started(flowOf(ex, m, true));
    }
    return true;
  }

  function eventStreamData(data: Uint8Array, ts: number) {
    const ex = streaming;
    if (!ex?.sse || ex.sse.lost) return;
    const s = ex.sse;
    const events = s.reader.push(data);
    if (!events.length) return;
    const time = ctx.timestamp(ts);
    const sender = Role.SERVER;
    const first = s.log.count;
    const messages: FlowMessage[] = events.map((e, i) => ({
      $typeName: "tapwire.v1.FlowMessage",
      sender,
      time,
      index: first + i,
      message: { case: "sse", value: { $typeName: "tapwire.v1.SseEvent", id: e.id, event: e.event, data: e.data, retry: e.retry, truncated: e.truncated } },
    }));
    for (let i = 0; i < messages.length; i++) s.log.add(messages[i]!, events[i]!.data.length);
    if (ex.flowId && ctx.live) ctx.live.messages(ex.flowId, messages);
  }

  /** The connection upgraded to WebSocket: the exchange waits for the connection's end. */
  let webSocket: Exchange | undefined;

  function startWebSocket(ex: Exchange, m: Http1Response) {
    ex.ws = new WebSocketSession(ctx, fieldValue(m.headers, "sec-websocket-extensions"), m.endTs);
    webSocket = ex;
    ex.ws.start(() => flowOf(ex, m, true));
  }

  function webSocketData(fromClient: boolean, data: Uint8Array, ts: number) {
    // Closed both ways: what follows is the TCP connection's end.
    if (webSocket?.ws?.data(fromClient, data, ts)) endWebSocket();
  }

  function webSocketLoss(fromClient: boolean, lost: number) {
    webSocket?.ws?.lose(fromClient, lost);
  }

  function endWebSocket() {
    const ex = webSocket;
    if (!ex) return;
    webSocket = undefined;
    ctx.emit(flowOf(ex, ex.response, false));
  }

  /** Emit finished exchanges from the front, keeping the order of the connection. */
  function flushReady() {
    while (queue.length && queue[0].requestDone && (queue[0].response || queue[0].responseLost)) emit(queue.shift()!);
  }

  function emit(ex: Exchange) {
    if (streaming === ex) streaming = undefined;
    ctx.emit(flowOf(ex, ex.response, false));
  }

  /** The flow of an exchange: as it ended, or (`open`) an event stream as it is so far, with
   * the response's head `res`. */
  function flowOf(ex: Exchange, res: Http1Response | undefined, open: boolean): Flow {
    const req = ex.request;
    const first = open ? false : flowsEmitted++ === 0;
    const missing = open ? undefined : ex.ws ? ex.ws.missing(false) : describeMissing(ex, first, first && joinedMidStream, maxPending);
    const startTs = req?.startTs ?? ex.startTs;
    const endTs = ex.ws ? ex.ws.endTs : (res?.endTs ?? req!.endTs);
    return {
      $typeName: "tapwire.v1.Flow",
      id: ex.flowId ?? ex.ws?.flowId ?? ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: open ? undefined : ctx.timestamp(endTs),
      protocol: ex.ws ? Protocol.WEBSOCKET : Protocol.HTTP1,
      connection: (connection ??= describeConnection(info, processIsClient!, ctx)),
      request: req
        ? requestMessage(
            { method: req.method, path: req.target, authority: fieldValue(req.headers, "host"), version: req.version, headers: req.headers, trailers: req.trailers },
            decodedBody(req.body, req.bodySize, !req.bodyTruncated, req.contentEncoding, ctx.maxBody),
          )
        : undefined,
      response: res
        ? responseMessage(
            { status: res.status, reason: res.reason, version: res.version, headers: res.headers, trailers: res.trailers, informational: ex.informational },
            open ? decodedBody(EMPTY_BYTES, 0, true, "", ctx.maxBody) : decodedBody(res.body, res.bodySize, !res.bodyTruncated, res.contentEncoding, ctx.maxBody),
          )
        : undefined,
      missing,
      open,
      messages: ex.sse ? messagesOf(ex.sse.log, open) : ex.ws ? messagesOf(ex.ws.log, open) : NO_MESSAGES,
      messagesDropped: (ex.sse ?? ex.ws)?.log.dropped ?? 0,
    };
  }

  return {
    data(dir, bytes, tsNs, otherBehind) {
      if (!requests) start(dir, bytes);
      if (dir === requestDir) return requests!.push(bytes, tsNs);
      // Request bytes sent before these response bytes never came: the request they answer
      // may be among them (a response cannot come before its request; the ring keeps order).
      // `otherBehind` is all that is missing so far: only what is new is added.
      if (otherBehind > requestBytesAhead) {
        requestsLost = true;
        requestLostBytes += otherBehind - requestBytesAhead;
        requestBytesAhead = otherBehind;
      }
      responses!.push(bytes, tsNs);
    },
    gap(dir, lost, tsNs) {
      if (!requests) return; // nothing parsed yet: the first message start is looked for anyway
      // An event stream's lines on either side of a hole are not one event: no more are read.
      if (dir !== requestDir && streaming?.sse) streaming.sse.lost = true;
      const effect = (dir === requestDir ? requests : responses!).gap(lost, tsNs);
      if (effect !== GapEffect.CutMessage && effect !== GapEffect.BetweenMessages) return;
      // Whole messages may have gone with these bytes; those between messages are counted on
      // the flow the loss shows in (the message cut counts its own).
      const between = effect === GapEffect.BetweenMessages ? lost : 0;
      if (dir !== requestDir) {
        responseLoss = responseLoss === NO_LOSS ? between : responseLoss + between;
        return;
      }
      // Some of these bytes may have been counted already from the kernel's positions.
      const known = Math.min(lost, requestBytesAhead);
      requestBytesAhead -= known;
      // A request cut by the gap ended there; the client waits for its response, so whole
      // requests after it are not taken to be lost.
      if (effect === GapEffect.BetweenMessages) {
        requestsLost = true;
        requestLostBytes += between - known;
      }
    },
    unseen(dir, count, tsNs) {
      if (!requests) return;
      unseen[dir] += count;
      (dir === requestDir ? requests : responses!).gap(count, tsNs);
    },
    close(tsNs) {
      if (!requests) return;
      requests.end(tsNs);
      responses!.end(tsNs);
      h2?.close(tsNs);
      endWebSocket();
      // Whatever is left never got its response (or its request never ended).
      while (queue.length) {
        const ex = queue.shift()!;
        if (ex.request || ex.response) emit(ex);
      }
    },
  };
}

function describeMissing(ex: Exchange, first: boolean, joinedMidStream: boolean, maxPending: number): Missing | undefined {
  const req = ex.request;
  const res = ex.response;
  const reqLost = (req?.lostBytes ?? 0) - ex.unseenRequestBytes;
  const resLost = (res?.lostBytes ?? 0) - ex.unseenResponseBytes;
  const unseenBody = ex.unseenRequestBytes + ex.unseenResponseBytes;
  const requestIncomplete = !!req && req.incomplete !== "" && !(req.incomplete === "lost-bytes" && reqLost === 0);
  const responseIncomplete = !!res && res.incomplete !== "" && !(res.incomplete === "lost-bytes" && resLost === 0);
  const noResponse = !res;
  const skipped = (req?.skippedBefore ?? 0) + (req ? 0 : res?.skippedBefore ?? 0);
  const between = ex.lostBetween ?? 0;
  // A response alone is the connection's first flow when tapwire joined after its request;
  // later, its request was lost (said when the loss is known) or not read as one.
  const joined = (joinedMidStream || (!req && first && !ex.requestLost)) && !ex.overflow;
  const requestUnseen = !req && !joined && !ex.overflow && !ex.requestLost;
  if (!reqLost && !resLost && !between && !unseenBody && !requestIncomplete && !responseIncomplete && !noResponse && !skipped && !joined && !ex.overflow && !ex.requestLost && !requestUnseen) {
    return undefined;
  }
  const reasons: string[] = [];
  if (joined) reasons.push(req ? "joined the connection mid-stream" : "request not seen (joined mid-stream)");
  if (ex.requestLost) reasons.push("request lost with bytes tapwire did not receive");
  else if (requestUnseen) reasons.push("request not seen");
  if (ex.overflow) reasons.push(req ? `sent out without its response: more than ${maxPending} requests were waiting for responses` : `its request went out without it: more than ${maxPending} requests were waiting for responses`);
  else if (ex.responseLost) reasons.push("response lost with bytes tapwire did not receive");
  else if (noResponse) reasons.push("no response");
  if (requestIncomplete) reasons.push(`request ${req!.incomplete}`);
  if (responseIncomplete) reasons.push(`response ${res!.incomplete}`);
  const lost = Math.max(0, reqLost) + Math.max(0, resLost) + between;
  if (lost > 0) reasons.push(`${lost} bytes lost`);
  if (unseenBody) reasons.push(`${unseenBody} body bytes sent with sendfile`);
  if (skipped) reasons.push(`${skipped} bytes skipped before the message`);
  return missingMessage({
    lostBytes: lost,
    noResponse,
    joinedMidStream: joined,
    requestIncomplete,
    responseIncomplete,
    skippedBytes: skipped,
    unseenBodyBytes: unseenBody,
    reasons,
  });
}
