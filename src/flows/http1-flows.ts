// HTTP/1 connections to flows: a request parser on the client's direction, a response
// parser on the server's, and the stitching of requests to responses in order
// (keep-alive and pipelining pair first-in, first-out).
import { isHttp1RequestStart } from "../protocols/sniff.ts";
import {
  Protocol,
  type Connection,
  type Flow,
  type Header,
  type Missing,
} from "../gen/tapwire/v1/flow_pb.ts";
import { createHttp1Parser } from "../protocols/http1/parser.ts";
import type { HeaderField, Http1Parser, Http1Request, Http1Response } from "../protocols/http1/types.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { ConnOrigin, Direction } from "../bpf/events.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { createHttp2Stream } from "./http2-flows.ts";

/** One request on its way to becoming a flow; its response may complete before it does. */
interface Exchange {
  request?: Http1Request;
  requestDone: boolean;
  response?: Http1Response;
  informational: number[];
  /** Bytes sent with sendfile inside the response (counted, not seen). */
  unseenResponseBytes: number;
  unseenRequestBytes: number;
}


export function createHttp1Stream(info: ConnectionInfo, ctx: FlowContext): StreamSink {
  // Which direction carries requests: known from accept/connect, or from the first bytes.
  let processIsClient = roleFromOrigin(info.origin);
  let requestDir: Direction | undefined;
  let requests: Http1Parser | undefined;
  let responses: Http1Parser | undefined;
  const queue: Exchange[] = [];
  let flowsEmitted = 0;
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
    if (m.status === 101 && ex.request && /^\s*h2c\s*$/i.test(headerValue(m.headers, "upgrade"))) {
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
    const missing = describeMissing(ex, first && joinedMidStream);
    const startTs = req?.startTs ?? res!.startTs;
    const endTs = res?.endTs ?? req!.endTs;
    // Plain message literals with every field: create() costs more per flow than parsing.
    const flow: Flow = {
      $typeName: "tapwire.v1.Flow",
      id: ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: ctx.timestamp(endTs),
      protocol: Protocol.HTTP1,
      connection: (connection ??= describeConnection(info, processIsClient!, ctx)),
      request: req
        ? {
            $typeName: "tapwire.v1.Request",
            method: req.method,
            path: req.target,
            authority: headerValue(req.headers, "host"),
            version: req.version,
            headers: toHeaders(req.headers),
            body: req.body,
            bodySize: BigInt(req.bodySize),
            bodyTruncated: req.bodyTruncated,
            trailers: toHeaders(req.trailers),
            bodyDecodedEncoding: req.decodedEncoding,
          }
        : undefined,
      response: res
        ? {
            $typeName: "tapwire.v1.Response",
            status: res.status,
            reason: res.reason,
            version: res.version,
            headers: toHeaders(res.headers),
            body: res.body,
            bodySize: BigInt(res.bodySize),
            bodyTruncated: res.bodyTruncated,
            trailers: toHeaders(res.trailers),
            bodyDecodedEncoding: res.decodedEncoding,
            informationalStatuses: ex.informational,
          }
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

function toHeaders(fields: HeaderField[]): Header[] {
  // Plain message objects: create() per header field costs more than the parsing did.
  const out: Header[] = new Array(fields.length);
  for (let i = 0; i < fields.length; i++) out[i] = { $typeName: "tapwire.v1.Header", name: fields[i].name, value: fields[i].value, nameUnknown: false, valueUnknown: false };
  return out;
}

function headerValue(fields: HeaderField[], lowerName: string): string {
  for (const f of fields) if (f.name.length === lowerName.length && f.name.toLowerCase() === lowerName) return f.value;
  return "";
}

function describeMissing(ex: Exchange, joinedMidStream: boolean): Missing | undefined {
  const req = ex.request;
  const res = ex.response;
  const reqLost = (req?.lostBytes ?? 0) - ex.unseenRequestBytes;
  const resLost = (res?.lostBytes ?? 0) - ex.unseenResponseBytes;
  const unseenBody = ex.unseenRequestBytes + ex.unseenResponseBytes;
  const requestIncomplete = !!req && req.incomplete !== "" && !(req.incomplete === "lost-bytes" && reqLost === 0);
  const responseIncomplete = !!res && res.incomplete !== "" && !(res.incomplete === "lost-bytes" && resLost === 0);
  const noResponse = !res;
  const skipped = (req?.skippedBefore ?? 0) + (req ? 0 : res?.skippedBefore ?? 0);
  const joined = joinedMidStream || !req;
  if (!reqLost && !resLost && !unseenBody && !requestIncomplete && !responseIncomplete && !noResponse && !skipped && !joined) {
    return undefined;
  }
  const reasons: string[] = [];
  if (joined) reasons.push(req ? "joined the connection mid-stream" : "request not seen (joined mid-stream)");
  if (noResponse) reasons.push("no response");
  if (requestIncomplete) reasons.push(`request ${req!.incomplete}`);
  if (responseIncomplete) reasons.push(`response ${res!.incomplete}`);
  if (reqLost + resLost > 0) reasons.push(`${reqLost + resLost} bytes lost`);
  if (unseenBody) reasons.push(`${unseenBody} body bytes sent with sendfile`);
  if (skipped) reasons.push(`${skipped} bytes skipped before the message`);
  return {
    $typeName: "tapwire.v1.Missing",
    lostBytes: BigInt(Math.max(0, reqLost) + Math.max(0, resLost)),
    noResponse,
    joinedMidStream: joined,
    requestIncomplete,
    responseIncomplete,
    skippedBytes: BigInt(skipped),
    unseenBodyBytes: BigInt(unseenBody),
    reason: reasons.join("; "),
  };
}
