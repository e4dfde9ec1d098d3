// HTTP/2 connections to flows (gRPC calls among them): the connection's stream events
// (src/protocols/http2/connection.ts) stitched into one flow per stream — its request
// (HEADERS, DATA, trailers) and its response (informational HEADERS, HEADERS, DATA,
// trailers) — emitted when both sides have ended the stream, when it is reset (RST_STREAM,
// or a GOAWAY that left it unprocessed), or when the connection ends. A connection joined in
// the middle is read from the next frame boundary; header fields that refer to
// compression-table entries sent before that are marked unknown, never guessed.
//
// Bounded: at most `maxOpenStreams` streams are open per connection (past it the oldest is
// emitted as it is, marked, and counted), and a joined connection not yet confirmed as
// HTTP/2 holds at most as many finished streams (past it the oldest is dropped, counted).
import { startsWithH2Preface } from "../protocols/sniff.ts";
import { Protocol, Role, type Connection, type Flow, type GrpcMessage, type Missing, type StreamReset } from "../gen/tapwire/v1/flow_pb.ts";
import { errorCodeName } from "../protocols/http2/frames.ts";
import type { HeaderField } from "../protocols/http2/hpack.ts";
import { createHttp2Connection, type Dir } from "../protocols/http2/connection.ts";
import type { Http1Request } from "../protocols/http1/types.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { ConnOrigin, Direction } from "../bpf/events.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { grpcCall, grpcMessage, isGrpc, type GrpcSide } from "./grpc-call.ts";
import { splitGrpcPath } from "../protocols/grpc/messages.ts";
import { createEnvelopeReader, type EnvelopeReader } from "../protocols/grpc/envelope-reader.ts";
import { contentCoding, decodedBody } from "./content.ts";
import { EMPTY_BYTES, NO_MESSAGES, fieldValue, missingMessage, requestMessage, responseMessage, type Body } from "./messages.ts";

/** One side of a stream: the request, or the response. */
interface Message {
  seen: boolean;
  fields: HeaderField[];
  trailers: HeaderField[];
  chunks: Uint8Array[];
  kept: number;
  size: number;
  startTs: number;
  endTs: number;
  ended: boolean;
  /** Why its header block could not be read, when it could not. */
  headerError: string;
  /** A request sent as HTTP/1.1 before an upgrade to h2c (its body already decoded). */
  h1?: Http1Request;
}

interface Exchange {
  id: number;
  request: Message;
  response: Message;
  informational: number[];
  reset?: StreamReset;
  /** The stream was already open when tapwire joined: its start was not seen. */
  joined: boolean;
  lostBytes: number;
  promisedOn: number;
  /** Emitted early: more streams were open on the connection than it keeps. */
  overflow: boolean;
  /** Set when its start was sent to live watchers (ctx.live): the flow's id from then on. */
  flowId?: string;
  /** A gRPC call seen from its start: its messages are read as they arrive. */
  grpc?: GrpcStream;
}

interface GrpcStream {
  service: string;
  method: string;
  request: GrpcStreamSide;
  response: GrpcStreamSide;
}

/** One way of a call: its messages so far, within the call's budget (FlowLimits). */
interface GrpcStreamSide {
  reader?: EnvelopeReader;
  messages: GrpcMessage[];
  keptBytes: number;
  /** Past the budget: counted, not kept. */
  dropped: number;
  /** Bytes of the connection were lost in this direction: no more messages are read. */
  lost?: boolean;
}

export interface Http2StreamOptions {
  /** The connection was open before tapwire saw it (or its start was otherwise missed). */
  joined: boolean;
  /** An HTTP/1.1 connection upgraded to h2c: its request is stream 1's. */
  upgrade?: { request: Http1Request; processIsClient: boolean };
}

export function createHttp2Stream(info: ConnectionInfo, ctx: FlowContext, opts: Http2StreamOptions): StreamSink {
  const joined = opts.joined || info.origin === ConnOrigin.Found;
  let processIsClient = opts.upgrade?.processIsClient ?? roleFromOrigin(info.origin);
  // Insertion order is opening order: the first entry is the oldest open stream.
  const exchanges = new Map<number, Exchange>();
  let connection: Connection | undefined;
  // A connection joined mid-stream is taken for HTTP/2 on the kernel's guess from one frame
  // header; its flows wait until a header block decodes into a request or a response.
  let confirmed = !joined;
  const held: Exchange[] = [];
  const limits = ctx.limits;

  const clientDir = () => (processIsClient ? Direction.Egress : Direction.Ingress);

  const conn = createHttp2Connection({
    joined,
    maxHeaderBlock: limits.maxHeaderBlock,
    events: {
      headers(dir, streamId, fields, endStream, error, ts) {
        noteFields(dir, fields);
        const ex = exchange(streamId, ts);
        const m = sideOf(ex, dir);
        const isResponse = m === ex.response;
        const status = isResponse ? Number(pseudo(fields, ":status")) : NaN;
        if (isResponse && status >= 100 && status < 200 && !m.seen) {
          ex.informational.push(status);
        } else if (!m.seen) {
          setHeaders(m, fields, error, ts);
          if (!isResponse && !ex.joined) {
            if (isGrpc(fields)) {
              const { service, method } = splitGrpcPath(pseudo(fields, ":path"));
              ex.grpc = { service, method, request: newGrpcSide(), response: newGrpcSide() };
            }
            if (ctx.live && confirmed) startLive(ex);
          }
        } else {
          m.trailers = fields; // a second header block ends the message: trailers
          if (error) m.headerError = error;
        }
        m.endTs = ts;
        if (endStream) endSide(ex, m);
      },
      promise(dir, streamId, promised, fields, error, ts) {
        noteFields(dir, fields);
        // A pushed response's request, promised by the server on another stream.
        const ex = exchange(promised, ts);
        ex.promisedOn = streamId;
        setHeaders(ex.request, fields, error, ts);
        ex.request.ended = true;
      },
      data(dir, streamId, payload, endStream, ts) {
        const ex = exchange(streamId, ts);
        const m = sideOf(ex, dir);
        if (!m.seen && !ex.joined) ex.joined = true; // DATA before any HEADERS: its start was missed
        m.seen = true;
        m.size += payload.length;
        const room = ctx.maxBody - m.kept;
        if (room > 0 && payload.length) {
          const part = payload.length <= room ? payload.slice() : payload.slice(0, room);
          m.chunks.push(part);
          m.kept += part.length;
        }
        m.endTs = ts;
        if (ex.grpc && payload.length) grpcData(ex, m, payload, ts);
        if (endStream) endSide(ex, m);
      },
      reset(dir, streamId, code, ts) {
        const ex = exchanges.get(streamId);
        if (!ex) return;
        ex.reset = reset(code, dir, false);
        sideOf(ex, dir).endTs = ts;
        emit(ex);
      },
      goaway(dir, last, code) {
        // Streams the sender of GOAWAY never processed: those its peer opened above `last`.
        const peerIsClient = dir !== clientDir();
        for (const ex of [...exchanges.values()]) {
          const openedByClient = ex.id % 2 === 1;
          if (ex.id > last && openedByClient === peerIsClient) {
            ex.reset = reset(code, dir, true);
            emit(ex);
          }
        }
      },
      headerError(dir, streamId, why, ts) {
        if (why.startsWith("header block longer")) ctx.overflows.headerBlocks++;
        // The stream shows it, even when this was its first header block.
        const m = sideOf(exchange(streamId, ts), dir);
        m.headerError = why;
        m.endTs = ts;
      },
    },
  });

  if (opts.upgrade) {
    const r = opts.upgrade.request;
    const ex = exchange(1, r.startTs);
    Object.assign(ex.request, { seen: true, ended: true, h1: r, fields: r.headers, trailers: r.trailers, size: r.bodySize, startTs: r.startTs, endTs: r.endTs });
    ex.informational.push(101);
  }

  /** What a header block says of the connection: that it is HTTP/2, and who the client is. */
  function noteFields(dir: Dir, fields: HeaderField[]) {
    if (!confirmed && fields.some((h) => !h.unknown && (h.name === ":method" || h.name === ":status"))) {
      confirmed = true;
      for (const h of held.splice(0)) emitNow(h);
    }
    if (processIsClient === undefined) {
      // A request's pseudo-header names who the client is.
      if (fields.some((h) => h.name === ":method")) processIsClient = dir === Direction.Egress;
      else if (fields.some((h) => h.name === ":status")) processIsClient = dir !== Direction.Egress;
    }
  }

  function exchange(id: number, ts: number): Exchange {
    let ex = exchanges.get(id);
    if (!ex) {
      if (exchanges.size >= limits.maxOpenStreams) {
        // The oldest open stream goes out as it is: memory stays bounded whatever the peer does.
        const oldest = exchanges.values().next().value!;
        oldest.overflow = true;
        ctx.overflows.http2OpenStreams++;
        emit(oldest);
      }
      ex = {
        id,
        request: newMessage(ts),
        response: newMessage(ts),
        informational: [],
        joined: false,
        lostBytes: 0,
        promisedOn: 0,
        overflow: false,
      };
      exchanges.set(id, ex);
    }
    return ex;
  }

  function sideOf(ex: Exchange, dir: Direction): Message {
    return dir === clientDir() ? ex.request : ex.response;
  }

  function endSide(ex: Exchange, m: Message) {
    m.ended = true;
    if (ex.request.ended && ex.response.ended) emit(ex);
  }

  function reset(code: number, dir: Direction, goaway: boolean): StreamReset {
    return {
      $typeName: "tapwire.v1.StreamReset",
      error: errorCodeName(code),
      code,
      sentBy: dir === clientDir() ? Role.CLIENT : Role.SERVER,
      goaway,
    };
  }

  function emit(ex: Exchange) {
    if (!exchanges.delete(ex.id)) return;
    if (confirmed) return emitNow(ex);
    if (held.length >= limits.maxOpenStreams) {
      held.shift(); // never confirmed so far: dropped, not shown
      ctx.overflows.http2HeldStreams++;
    }
    held.push(ex);
  }

  /** The flow of a stream: as it ended, or (`open`) as it is so far. */
  function flowOf(ex: Exchange, open: boolean): Flow {
    const req = ex.request;
    const res = ex.response;
    const startTs = req.seen ? req.startTs : res.startTs;
    const endTs = Math.max(req.endTs, res.endTs);
    if (!open && ex.grpc) {
      // A message its stream ended in the middle of: kept as far as it came, cut.
      for (const which of ["request", "response"] as const) {
        if (ex.grpc[which].lost) continue;
        const rest = ex.grpc[which].reader?.rest();
        if (rest) keepGrpc(ex.grpc[which], grpcMessage(rest, ex.grpc.service, ex.grpc.method, which, ctx.grpcDecoder));
      }
    }
    const grpc = req.seen && !req.h1 && isGrpc(req.fields)
      ? grpcCall(pseudo(req.fields, ":path"), grpcSide(req, ex.grpc?.request, open), res.seen ? grpcSide(res, ex.grpc?.response, open) : undefined, ctx.maxBody, ctx.grpcDecoder)
      : undefined;
    return {
      $typeName: "tapwire.v1.Flow",
      id: ex.flowId ?? ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: open ? undefined : ctx.timestamp(endTs),
      protocol: grpc ? Protocol.GRPC : Protocol.HTTP2,
      connection: (connection ??= describeConnection(info, processIsClient ?? false, ctx)),
      request: req.seen ? toRequest(req, ctx, open) : undefined,
      response: res.seen ? toResponse(res, ex.informational, ctx, open) : undefined,
      // What is missing is known when the flow has ended.
      missing: open ? undefined : describeMissing(ex, limits.maxOpenStreams),
      http2: { $typeName: "tapwire.v1.Http2Stream", streamId: ex.id, reset: ex.reset, promisedOnStream: ex.promisedOn },
      grpc,
      open,
      messages: NO_MESSAGES,
      messagesDropped: 0,
    };
  }

  function emitNow(ex: Exchange) {
    ctx.emit(flowOf(ex, false));
  }

  /** Its request's header block is in: live watchers see the flow from here on. */
  function startLive(ex: Exchange) {
    ex.flowId = ctx.nextFlowId();
    ctx.live!.started(flowOf(ex, true));
  }

  /** The gRPC messages DATA on one side of a call completed: kept within the call's budget,
   * and sent to live watchers. */
  function grpcData(ex: Exchange, m: Message, payload: Uint8Array, ts: number) {
    const g = ex.grpc!;
    const isRequest = m === ex.request;
    const which = isRequest ? "request" : "response";
    const side = g[which];
    if (side.lost) return;
    const reader = (side.reader ??= createEnvelopeReader(pseudo(m.fields, "grpc-encoding"), ctx.maxBody));
    const first = reader.count;
    const done = reader.push(payload);
    if (!done.length) return;
    const messages = done.map((w) => grpcMessage(w, g.service, g.method, which, ctx.grpcDecoder));
    for (const gm of messages) keepGrpc(side, gm);
    if (!ex.flowId || !ctx.live) return;
    const sender = isRequest ? Role.CLIENT : Role.SERVER;
    const time = ctx.timestamp(ts);
    ctx.live.messages(
      ex.flowId,
      messages.map((value, i) => ({ $typeName: "tapwire.v1.FlowMessage", sender, time, index: first + i, message: { case: "grpc", value } })),
    );
  }

  function keepGrpc(side: GrpcStreamSide, gm: GrpcMessage) {
    if (side.messages.length < limits.maxStreamMessages && side.keptBytes + gm.data.length <= limits.maxStreamBody) {
      side.messages.push(gm);
      side.keptBytes += gm.data.length;
    } else {
      side.dropped++;
      ctx.overflows.streamBudget++;
    }
  }

  return {
    data(dir, bytes, tsNs) {
      // Whoever sends the preface is the client.
      if (processIsClient === undefined && conn.framesRead(dir) === 0 && startsWithH2Preface(bytes)) processIsClient = dir === Direction.Egress;
      conn.push(dir, bytes, tsNs);
    },
    gap(dir, lost) {
      conn.gap(dir, lost);
      for (const ex of exchanges.values()) {
        ex.lostBytes += lost;
        // A message's length read after a hole would be read from its middle: no more are.
        if (ex.grpc) (dir === clientDir() ? ex.grpc.request : ex.grpc.response).lost = true;
      }
    },
    unseen() {
      // sendfile does not carry HTTP/2 frames.
    },
    close() {
      for (const ex of [...exchanges.values()]) emit(ex);
      // Never confirmed as HTTP/2: nothing is made up from bytes that were something else.
      held.length = 0;
    },
  };
}

/** `read`: the messages read as they came, for a call seen from its start; copied for an
 * open flow's snapshot (the list goes on growing), handed over when the flow has ended. */
function grpcSide(m: Message, read: GrpcStreamSide | undefined, open: boolean): GrpcSide {
  return {
    fields: m.fields,
    trailers: m.trailers,
    raw: read ? EMPTY_BYTES : m.chunks.length === 1 ? m.chunks[0]! : concat(m.chunks),
    sawData: m.size > 0,
    read: read && { messages: open ? read.messages.slice() : read.messages, dropped: read.dropped },
  };
}


function newGrpcSide(): GrpcStreamSide {
  return { messages: [], keptBytes: 0, dropped: 0 };
}

function newMessage(ts: number): Message {
  return { seen: false, fields: [], trailers: [], chunks: [], kept: 0, size: 0, startTs: ts, endTs: ts, ended: false, headerError: "" };
}

function setHeaders(m: Message, fields: HeaderField[], error: string, ts: number) {
  m.seen = true;
  m.fields = fields;
  m.headerError = error;
  m.startTs = ts;
  m.endTs = ts;
}

function pseudo(fields: HeaderField[], name: string): string {
  for (const f of fields) if (f.name === name) return f.value;
  return "";
}

/** `open`: the body so far of a stream that goes on (whole if nothing was cut from it yet). */
function body(m: Message, ctx: FlowContext, open: boolean): Body {
  const raw = m.chunks.length === 1 ? m.chunks[0]! : concat(m.chunks);
  return decodedBody(raw, m.size, m.kept === m.size && (m.ended || open), contentCoding(m.fields), ctx.maxBody);
}

function toRequest(m: Message, ctx: FlowContext, open: boolean) {
  if (m.h1) {
    // The HTTP/1.1 request of an upgrade to h2c.
    const r = m.h1;
    return requestMessage(
      { method: r.method, path: r.target, authority: fieldValue(r.headers, "host"), version: r.version, headers: r.headers, trailers: r.trailers },
      decodedBody(r.body, r.bodySize, !r.bodyTruncated, r.contentEncoding, ctx.maxBody),
    );
  }
  return requestMessage(
    { method: pseudo(m.fields, ":method"), path: pseudo(m.fields, ":path"), authority: pseudo(m.fields, ":authority") || pseudo(m.fields, "host"), version: "HTTP/2", headers: m.fields, trailers: m.trailers },
    body(m, ctx, open),
  );
}

function toResponse(m: Message, informational: number[], ctx: FlowContext, open: boolean) {
  return responseMessage({ status: Number(pseudo(m.fields, ":status")) || 0, reason: "", version: "HTTP/2", headers: m.fields, trailers: m.trailers, informational }, body(m, ctx, open));
}

function countUnknown(fields: HeaderField[]): number {
  let n = 0;
  for (let i = 0; i < fields.length; i++) if (fields[i]!.unknown) n++;
  return n;
}

function describeMissing(ex: Exchange, maxOpenStreams: number): Missing | undefined {
  const req = ex.request;
  const res = ex.response;
  const unknownFields = countUnknown(req.fields) + countUnknown(req.trailers) + countUnknown(res.fields) + countUnknown(res.trailers);
  // Joined: the stream began before tapwire saw it, or its fields depend on state sent before.
  const joined = ex.joined || (!req.seen && res.seen) || unknownFields > 0;
  const noResponse = !res.seen;
  const requestIncomplete = req.seen && (!req.ended || req.headerError !== "");
  const responseIncomplete = res.seen && (!res.ended || res.headerError !== "");
  if (!joined && !noResponse && !requestIncomplete && !responseIncomplete && !ex.lostBytes && !unknownFields) return undefined;
  const reasons: string[] = [];
  if (ex.joined || (!req.seen && res.seen)) reasons.push(req.seen ? "joined the connection mid-stream" : "request not seen (joined mid-stream)");
  if (ex.overflow) reasons.push(`emitted before it ended: more than ${maxOpenStreams} streams open on the connection`);
  if (ex.reset) reasons.push(`stream reset by the ${ex.reset.sentBy === Role.CLIENT ? "client" : "server"}: ${ex.reset.goaway ? "GOAWAY " : ""}${ex.reset.error}`);
  if (noResponse && !ex.reset) reasons.push("no response");
  if (req.headerError) reasons.push(`request ${req.headerError}`);
  if (res.headerError) reasons.push(`response ${res.headerError}`);
  if (requestIncomplete && !req.headerError) reasons.push("request incomplete");
  if (responseIncomplete && !res.headerError) reasons.push("response incomplete");
  if (unknownFields) reasons.push(`${unknownFields} header fields refer to compression state sent before tapwire joined the connection`);
  if (ex.lostBytes) reasons.push(`${ex.lostBytes} bytes lost on the connection while the stream was open`);
  return missingMessage({ lostBytes: ex.lostBytes, noResponse, joinedMidStream: joined, requestIncomplete, responseIncomplete, skippedBytes: 0, unseenBodyBytes: 0, reasons });
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
