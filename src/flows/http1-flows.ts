// HTTP/1 connections to flows: a request parser on the client's direction, a response
// parser on the server's, and the stitching of requests to responses in order
// (keep-alive and pipelining pair first-in, first-out). At most `maxPendingRequests` requests
// wait for their responses: past it the oldest goes out without its response (marked,
// counted), and the response that comes for it later goes out alone — pairing stays right.
import { isHttp1RequestStart } from "../protocols/sniff.ts";
import { Protocol, type Connection, type Flow, type Missing } from "../gen/tapwire/v1/flow_pb.ts";
import { createHttp1Parser } from "../protocols/http1/parser.ts";
import type { Http1Parser, Http1Request, Http1Response } from "../protocols/http1/types.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { ConnOrigin, Direction } from "../bpf/events.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { createHttp2Stream } from "./http2-flows.ts";
import { fieldValue, missingMessage, requestMessage, responseMessage } from "./messages.ts";
import { decodedBody } from "./content.ts";

/** One request on its way to becoming a flow; its response may complete before it does. */
interface Exchange {
  request?: Http1Request;
  requestDone: boolean;
  response?: Http1Response;
  informational: number[];
  /** Bytes sent with sendfile inside the response (counted, not seen). */
  unseenResponseBytes: number;
  unseenRequestBytes: number;
  /** Sent out before its response: more requests were waiting than the connection keeps. */
  overflow?: boolean;
}


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
      onUpgradedBytes: (data, ts) => h2?.data(responseDirection, data, ts),
      onUpgradedGap: (lost, ts) => h2?.gap(responseDirection, lost, ts),
    });
    requests = createHttp1Parser("request", {
      maxBody: ctx.maxBody,
      onMessage: (m) => onRequest(m as Http1Request),
      onUpgradedBytes: (data, ts) => h2?.data(requestDir!, data, ts),
      onUpgradedGap: (lost, ts) => h2?.gap(requestDir!, lost, ts),
      onRequestHead: (method) => {
        queue.push({ requestDone: false, informational: [], unseenResponseBytes: 0, unseenRequestBytes: 0 });
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
    if (!ex) queue.push((ex = { requestDone: false, informational: [], unseenResponseBytes: 0, unseenRequestBytes: 0 }));
    ex.request = m;
    ex.requestDone = true;
    ex.unseenRequestBytes = takeUnseen(requestDir!, m.lostBytes);
    flushReady();
  }

  function onResponse(m: Http1Response) {
    if (orphanResponses > 0 && !m.informational) {
      // The answer to a request that went out without it.
      orphanResponses--;
      emit({ requestDone: true, response: m, informational: [], unseenRequestBytes: 0, unseenResponseBytes: takeUnseen(responseDir(), m.lostBytes), overflow: true });
      return;
    }
    const ex = queue.find((x) => !x.response);
    if (m.informational) {
      if (ex) ex.informational.push(m.status);
      return;
    }
    if (!ex) {
      // A response to a request tapwire did not see (joined after it was sent).
      emit({ requestDone: true, response: m, informational: [], unseenRequestBytes: 0, unseenResponseBytes: takeUnseen(responseDir(), m.lostBytes) });
      return;
    }
    ex.response = m;
    ex.unseenResponseBytes = takeUnseen(responseDir(), m.lostBytes);
    if (m.status === 101 && ex.request && /^\s*h2c\s*$/i.test(fieldValue(m.headers, "upgrade"))) {
      // The request becomes stream 1 of the HTTP/2 connection; its response comes in frames.
      h2 = createHttp2Stream(info, ctx, { joined: false, upgrade: { request: ex.request, processIsClient: processIsClient! } });
      queue.splice(queue.indexOf(ex), 1);
      requests!.handOver();
      return;
    }
    const method = ex.request?.method;
    if (m.status === 101 || (method === "CONNECT" && m.status >= 200 && m.status < 300)) requests!.handOver();
    flushReady();
  }

  function responseDir(): Direction {
    return requestDir === Direction.Egress ? Direction.Ingress : Direction.Egress;
  }

  function takeUnseen(dir: Direction, lost: number): number {
    const n = Math.min(unseen[dir], lost);
    unseen[dir] = 0;
    return n;
  }

  /** Emit finished exchanges from the front, keeping the order of the connection. */
  function flushReady() {
    while (queue.length && queue[0].requestDone && queue[0].response) emit(queue.shift()!);
  }

  function emit(ex: Exchange) {
    const req = ex.request;
    const res = ex.response;
    const first = flowsEmitted++ === 0;
    const missing = describeMissing(ex, first && joinedMidStream, maxPending);
    const startTs = req?.startTs ?? res!.startTs;
    const endTs = res?.endTs ?? req!.endTs;
    const flow: Flow = {
      $typeName: "tapwire.v1.Flow",
      id: ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: ctx.timestamp(endTs),
      protocol: Protocol.HTTP1,
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
            decodedBody(res.body, res.bodySize, !res.bodyTruncated, res.contentEncoding, ctx.maxBody),
          )
        : undefined,
      missing,
      http2: undefined,
    };
    ctx.emit(flow);
  }

  return {
    data(dir, bytes, _tsNs) {
      if (!requests) start(dir, bytes);
      (dir === requestDir ? requests! : responses!).push(bytes, _tsNs);
    },
    gap(dir, lost, tsNs) {
      if (!requests) return; // nothing parsed yet: the first message start is looked for anyway
      (dir === requestDir ? requests : responses!).gap(lost, tsNs);
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
      // Whatever is left never got its response (or its request never ended).
      while (queue.length) {
        const ex = queue.shift()!;
        if (ex.request || ex.response) emit(ex);
      }
    },
  };
}

function describeMissing(ex: Exchange, joinedMidStream: boolean, maxPending: number): Missing | undefined {
  const req = ex.request;
  const res = ex.response;
  const reqLost = (req?.lostBytes ?? 0) - ex.unseenRequestBytes;
  const resLost = (res?.lostBytes ?? 0) - ex.unseenResponseBytes;
  const unseenBody = ex.unseenRequestBytes + ex.unseenResponseBytes;
  const requestIncomplete = !!req && req.incomplete !== "" && !(req.incomplete === "lost-bytes" && reqLost === 0);
  const responseIncomplete = !!res && res.incomplete !== "" && !(res.incomplete === "lost-bytes" && resLost === 0);
  const noResponse = !res;
  const skipped = (req?.skippedBefore ?? 0) + (req ? 0 : res?.skippedBefore ?? 0);
  const joined = (joinedMidStream || !req) && !ex.overflow;
  if (!reqLost && !resLost && !unseenBody && !requestIncomplete && !responseIncomplete && !noResponse && !skipped && !joined && !ex.overflow) {
    return undefined;
  }
  const reasons: string[] = [];
  if (joined) reasons.push(req ? "joined the connection mid-stream" : "request not seen (joined mid-stream)");
  if (ex.overflow) reasons.push(req ? `sent out without its response: more than ${maxPending} requests were waiting for responses` : `its request went out without it: more than ${maxPending} requests were waiting for responses`);
  else if (noResponse) reasons.push("no response");
  if (requestIncomplete) reasons.push(`request ${req!.incomplete}`);
  if (responseIncomplete) reasons.push(`response ${res!.incomplete}`);
  if (reqLost + resLost > 0) reasons.push(`${reqLost + resLost} bytes lost`);
  if (unseenBody) reasons.push(`${unseenBody} body bytes sent with sendfile`);
  if (skipped) reasons.push(`${skipped} bytes skipped before the message`);
  return missingMessage({
    lostBytes: Math.max(0, reqLost) + Math.max(0, resLost),
    noResponse,
    joinedMidStream: joined,
    requestIncomplete,
    responseIncomplete,
    skippedBytes: skipped,
    unseenBodyBytes: unseenBody,
    reasons,
  });
}
