// HTTP/2 connections to flows (gRPC calls among them): a frame reader and an HPACK decoder per direction, and one
// flow per stream — its request (HEADERS, DATA, trailers) and its response (informational
// HEADERS, HEADERS, DATA, trailers) — emitted when both sides have ended the stream, when it
// is reset (RST_STREAM, or a GOAWAY that left it unprocessed), or when the connection ends.
// A connection joined in the middle is read from the next frame boundary; header fields that
// refer to compression-table entries sent before that are marked unknown, never guessed.
import { startsWithH2Preface } from "../protocols/sniff.ts";
import { Protocol, Role, type Connection, type Flow, type Header, type Missing, type StreamReset } from "../gen/tapwire/v1/flow_pb.ts";
import { createFrameReader, errorCodeName, Flag, FrameType, type Frame, type FrameReader } from "../protocols/http2/frames.ts";
import { createHpackDecoder, HpackError, type HeaderField, type HpackDecoder } from "../protocols/http2/hpack.ts";
import { decodeContent } from "../protocols/http1/content-decoding.ts";
import type { Http1Request } from "../protocols/http1/types.ts";
import type { ConnectionInfo, StreamSink } from "../conn/connection-table.ts";
import { ConnOrigin, Direction } from "../bpf/events.ts";
import { describeConnection, roleFromOrigin, type FlowContext } from "./flow-context.ts";
import { grpcCall, isGrpc, type GrpcSide } from "./grpc-call.ts";

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
}

/** A header block being gathered from HEADERS/PUSH_PROMISE and CONTINUATION frames. */
interface PendingBlock {
  streamId: number;
  endStream: boolean;
  /** PUSH_PROMISE: the stream it promises. */
  promised: number;
  fragments: Uint8Array[];
}

interface DirectionState {
  reader: FrameReader;
  hpack: HpackDecoder;
  block?: PendingBlock;
}

const DEFAULT_TABLE_SIZE = 4096;

export interface Http2StreamOptions {
  /** The connection was open before tapwire saw it (or its start was otherwise missed). */
  joined: boolean;
  /** An HTTP/1.1 connection upgraded to h2c: its request is stream 1's. */
  upgrade?: { request: Http1Request; processIsClient: boolean };
}

export function createHttp2Stream(info: ConnectionInfo, ctx: FlowContext, opts: Http2StreamOptions): StreamSink {
  const joined = opts.joined || info.origin === ConnOrigin.Found;
  let processIsClient = opts.upgrade?.processIsClient ?? roleFromOrigin(info.origin);
  const exchanges = new Map<number, Exchange>();
  let connection: Connection | undefined;
  // A connection joined mid-stream is taken for HTTP/2 on the kernel's guess from one frame
  // header; its flows wait until a header block decodes into a request or a response.
  let confirmed = !joined;
  const held: Exchange[] = [];

  const dirs = [Direction.Egress, Direction.Ingress].map((dir) => {
    const state: DirectionState = {
      hpack: createHpackDecoder({ maxTableSize: DEFAULT_TABLE_SIZE, joinedMidStream: joined }),
      reader: createFrameReader({
        // The client's direction starts with the preface; which one that is may not be known
        // yet, so both accept it (a server never sends those bytes).
        expectPreface: !joined,
        resync: joined,
        onFrame: (f, ts) => onFrame(dir, state, f, ts),
      }),
    };
    return state;
  });

  const clientDir = () => (processIsClient ? Direction.Egress : Direction.Ingress);

  if (opts.upgrade) {
    const r = opts.upgrade.request;
    const ex = exchange(1, r.startTs);
    Object.assign(ex.request, { seen: true, ended: true, h1: r, fields: r.headers, trailers: r.trailers, size: r.bodySize, startTs: r.startTs, endTs: r.endTs });
    ex.informational.push(101);
  }

  function exchange(id: number, ts: number): Exchange {
    let ex = exchanges.get(id);
    if (!ex) {
      ex = {
        id,
        request: newMessage(ts),
        response: newMessage(ts),
        informational: [],
        joined: false,
        lostBytes: 0,
        promisedOn: 0,
      };
      exchanges.set(id, ex);
    }
    return ex;
  }

  function onFrame(dir: Direction, state: DirectionState, f: Frame, ts: number) {
    if (state.block && f.type !== FrameType.CONTINUATION) {
      // A header block cut off by another frame: the compression state is lost with it.
      failBlock(dir, state, "header block interrupted");
    }
    switch (f.type) {
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE: {
        let fragment = f.payload;
        let promised = 0;
        if (f.type === FrameType.PUSH_PROMISE) {
          if (fragment.length < 4) return;
          promised = ((fragment[0]! & 0x7f) << 24) | (fragment[1]! << 16) | (fragment[2]! << 8) | fragment[3]!;
          fragment = fragment.subarray(4);
        }
        state.block = { streamId: f.streamId, endStream: f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0, promised, fragments: [fragment.slice()] };
        if (f.flags & Flag.END_HEADERS) finishBlock(dir, state, ts);
        return;
      }
      case FrameType.CONTINUATION:
        if (!state.block || state.block.streamId !== f.streamId) return; // its HEADERS was not seen
        state.block.fragments.push(f.payload.slice());
        if (f.flags & Flag.END_HEADERS) finishBlock(dir, state, ts);
        return;
      case FrameType.DATA: {
        if (f.streamId === 0) return;
        const ex = exchange(f.streamId, ts);
        const m = sideOf(ex, dir);
        if (!m.seen && !ex.joined) ex.joined = true; // DATA before any HEADERS: its start was missed
        m.seen = true;
        m.size += f.payload.length;
        const room = ctx.maxBody - m.kept;
        if (room > 0 && f.payload.length) {
          const part = f.payload.length <= room ? f.payload.slice() : f.payload.slice(0, room);
          m.chunks.push(part);
          m.kept += part.length;
        }
        m.endTs = ts;
        if (f.flags & Flag.END_STREAM) endSide(ex, m);
        return;
      }
      case FrameType.RST_STREAM: {
        if (f.payload.length < 4 || f.streamId === 0) return;
        const code = readU32(f.payload, 0);
        const ex = exchanges.get(f.streamId);
        if (!ex) return;
        ex.reset = reset(code, dir, false);
        sideOf(ex, dir).endTs = ts;
        emit(ex);
        return;
      }
      case FrameType.GOAWAY: {
        if (f.payload.length < 8) return;
        const last = readU32(f.payload, 0) & 0x7fffffff;
        const code = readU32(f.payload, 4);
        // Streams the sender of GOAWAY never processed: those its peer opened above `last`.
        const peerIsClient = dir !== clientDir();
        for (const ex of [...exchanges.values()]) {
          const openedByClient = ex.id % 2 === 1;
          if (ex.id > last && openedByClient === peerIsClient) {
            ex.reset = reset(code, dir, true);
            emit(ex);
          }
        }
        return;
      }
      case FrameType.SETTINGS:
        if (f.flags & Flag.ACK) return;
        for (let at = 0; at + 6 <= f.payload.length; at += 6) {
          const id = (f.payload[at]! << 8) | f.payload[at + 1]!;
          // SETTINGS_HEADER_TABLE_SIZE bounds the table of the header blocks this side
          // receives. An observer only widens the bound: the two directions are read
          // independently, so the order in which a change takes effect is not known.
          if (id === 0x1) {
            const value = readU32(f.payload, at + 2);
            const other = dirs[dir === Direction.Egress ? Direction.Ingress : Direction.Egress]!;
            if (value > DEFAULT_TABLE_SIZE) other.hpack.setMaxTableSize(value);
          }
        }
        return;
      default:
        return; // PRIORITY, PING, WINDOW_UPDATE and unknown types carry nothing for a flow
    }
  }

  function finishBlock(dir: Direction, state: DirectionState, ts: number) {
    const block = state.block!;
    state.block = undefined;
    const bytes = block.fragments.length === 1 ? block.fragments[0]! : concat(block.fragments);
    let fields: HeaderField[];
    let error = "";
    try {
      fields = state.hpack.decode(bytes);
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      error = `header block not decodable: ${e.message}`;
      fields = [];
      // The compression state is lost: what follows is read as if joined anew.
      state.hpack = createHpackDecoder({ maxTableSize: DEFAULT_TABLE_SIZE, joinedMidStream: true });
    }
    if (!confirmed && fields.some((h) => !h.unknown && (h.name === ":method" || h.name === ":status"))) {
      confirmed = true;
      for (const h of held.splice(0)) emitNow(h);
    }
    if (processIsClient === undefined) {
      // A request's pseudo-header names who the client is.
      if (fields.some((h) => h.name === ":method")) processIsClient = dir === Direction.Egress;
      else if (fields.some((h) => h.name === ":status")) processIsClient = dir !== Direction.Egress;
    }
    if (block.promised) {
      // A pushed response's request, promised by the server on another stream.
      const ex = exchange(block.promised, ts);
      ex.promisedOn = block.streamId;
      setHeaders(ex.request, fields, error, ts);
      ex.request.ended = true;
      return;
    }
    const ex = exchange(block.streamId, ts);
    const m = sideOf(ex, dir);
    const isResponse = m === ex.response;
    const status = isResponse ? Number(fields.find((h) => h.name === ":status")?.value ?? NaN) : NaN;
    if (isResponse && status >= 100 && status < 200 && !m.seen) {
      ex.informational.push(status);
    } else if (!m.seen) {
      setHeaders(m, fields, error, ts);
    } else {
      m.trailers = fields; // a second header block ends the message: trailers
      if (error) m.headerError = error;
    }
    m.endTs = ts;
    if (block.endStream) endSide(ex, m);
  }

  function failBlock(dir: Direction, state: DirectionState, why: string) {
    const block = state.block!;
    state.block = undefined;
    state.hpack = createHpackDecoder({ maxTableSize: DEFAULT_TABLE_SIZE, joinedMidStream: true });
    const ex = exchanges.get(block.streamId);
    if (ex) sideOf(ex, dir).headerError = why;
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
    if (confirmed) emitNow(ex);
    else held.push(ex);
  }

  function emitNow(ex: Exchange) {
    const req = ex.request;
    const res = ex.response;
    const startTs = req.seen ? req.startTs : res.startTs;
    const endTs = Math.max(req.endTs, res.endTs);
    const grpc = req.seen && !req.h1 && isGrpc(req.fields)
      ? grpcCall(pseudo(req.fields, ":path"), grpcSide(req), res.seen ? grpcSide(res) : undefined, ctx.maxBody, ctx.grpcDecoder)
      : undefined;
    const flow: Flow = {
      $typeName: "tapwire.v1.Flow",
      id: ctx.nextFlowId(),
      startTime: ctx.timestamp(startTs),
      endTime: ctx.timestamp(endTs),
      protocol: grpc ? Protocol.GRPC : Protocol.HTTP2,
      connection: (connection ??= describeConnection(info, processIsClient ?? false, ctx)),
      request: req.seen ? toRequest(req, ctx) : undefined,
      response: res.seen ? toResponse(res, ex.informational, ctx) : undefined,
      missing: describeMissing(ex),
      http2: { $typeName: "tapwire.v1.Http2Stream", streamId: ex.id, reset: ex.reset, promisedOnStream: ex.promisedOn },
      grpc,
    };
    ctx.emit(flow);
  }

  return {
    data(dir, bytes, tsNs) {
      // Whoever sends the preface is the client.
      if (processIsClient === undefined && dirs[dir]!.reader.framesRead === 0 && startsWithH2Preface(bytes)) processIsClient = dir === Direction.Egress;
      dirs[dir]!.reader.push(bytes, tsNs);
    },
    gap(dir, lost) {
      dirs[dir]!.reader.gap(lost);
      const state = dirs[dir]!;
      if (state.block) failBlock(dir, state, `${lost} bytes lost`);
      // A lost header block would desynchronise the table: read on as if joined anew.
      state.hpack = createHpackDecoder({ maxTableSize: DEFAULT_TABLE_SIZE, joinedMidStream: true });
      for (const ex of exchanges.values()) ex.lostBytes += lost;
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

function grpcSide(m: Message): GrpcSide {
  return { fields: m.fields, trailers: m.trailers, raw: m.chunks.length === 1 ? m.chunks[0]! : concat(m.chunks), sawData: m.size > 0 };
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

function body(m: Message, ctx: FlowContext): { body: Uint8Array; truncated: boolean; encoding: string } {
  const raw = m.chunks.length === 1 ? m.chunks[0]! : concat(m.chunks);
  const whole = m.kept === m.size && m.ended;
  const coding = m.fields.filter((f) => f.name === "content-encoding").map((f) => f.value).join(", ");
  if (!coding) return { body: raw, truncated: !whole, encoding: "" };
  const d = decodeContent(coding, raw, ctx.maxBody, whole);
  return { body: d.body, truncated: !whole || d.capped, encoding: d.encoding };
}

function toRequest(m: Message, ctx: FlowContext) {
  if (m.h1) {
    const r = m.h1;
    return {
      $typeName: "tapwire.v1.Request" as const,
      method: r.method,
      path: r.target,
      authority: r.headers.find((h) => h.name.toLowerCase() === "host")?.value ?? "",
      version: r.version,
      headers: toHeaders(r.headers),
      body: r.body,
      bodySize: BigInt(r.bodySize),
      bodyTruncated: r.bodyTruncated,
      trailers: toHeaders(r.trailers),
      bodyDecodedEncoding: r.decodedEncoding,
    };
  }
  const b = body(m, ctx);
  return {
    $typeName: "tapwire.v1.Request" as const,
    method: pseudo(m.fields, ":method"),
    path: pseudo(m.fields, ":path"),
    authority: pseudo(m.fields, ":authority") || pseudo(m.fields, "host"),
    version: "HTTP/2",
    headers: toHeaders(m.fields),
    body: b.body,
    bodySize: BigInt(m.size),
    bodyTruncated: b.truncated,
    trailers: toHeaders(m.trailers),
    bodyDecodedEncoding: b.encoding,
  };
}

function toResponse(m: Message, informational: number[], ctx: FlowContext) {
  const b = body(m, ctx);
  return {
    $typeName: "tapwire.v1.Response" as const,
    status: Number(pseudo(m.fields, ":status")) || 0,
    reason: "",
    version: "HTTP/2",
    headers: toHeaders(m.fields),
    body: b.body,
    bodySize: BigInt(m.size),
    bodyTruncated: b.truncated,
    trailers: toHeaders(m.trailers),
    bodyDecodedEncoding: b.encoding,
    informationalStatuses: informational,
  };
}

function toHeaders(fields: HeaderField[]): Header[] {
  const out: Header[] = new Array(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    out[i] = {
      $typeName: "tapwire.v1.Header",
      name: f.name,
      value: f.value,
      nameUnknown: f.unknown === "name" || f.unknown === "both",
      valueUnknown: f.unknown === "value" || f.unknown === "both",
    };
  }
  return out;
}

function describeMissing(ex: Exchange): Missing | undefined {
  const req = ex.request;
  const res = ex.response;
  const unknownFields = [...req.fields, ...req.trailers, ...res.fields, ...res.trailers].filter((f) => f.unknown).length;
  // Joined: the stream began before tapwire saw it, or its fields depend on state sent before.
  const joined = ex.joined || (!req.seen && res.seen) || unknownFields > 0;
  const noResponse = !res.seen;
  const requestIncomplete = req.seen && (!req.ended || req.headerError !== "");
  const responseIncomplete = res.seen && (!res.ended || res.headerError !== "");
  if (!joined && !noResponse && !requestIncomplete && !responseIncomplete && !ex.lostBytes && !unknownFields) return undefined;
  const reasons: string[] = [];
  if (ex.joined || (!req.seen && res.seen)) reasons.push(req.seen ? "joined the connection mid-stream" : "request not seen (joined mid-stream)");
  if (ex.reset) reasons.push(`stream reset by the ${ex.reset.sentBy === Role.CLIENT ? "client" : "server"}: ${ex.reset.goaway ? "GOAWAY " : ""}${ex.reset.error}`);
  if (noResponse && !ex.reset) reasons.push("no response");
  if (req.headerError) reasons.push(`request ${req.headerError}`);
  if (res.headerError) reasons.push(`response ${res.headerError}`);
  if (requestIncomplete && !req.headerError) reasons.push("request incomplete");
  if (responseIncomplete && !res.headerError) reasons.push("response incomplete");
  if (unknownFields) reasons.push(`${unknownFields} header fields refer to compression state sent before tapwire joined the connection`);
  if (ex.lostBytes) reasons.push(`${ex.lostBytes} bytes lost on the connection while the stream was open`);
  return {
    $typeName: "tapwire.v1.Missing",
    lostBytes: BigInt(ex.lostBytes),
    noResponse,
    joinedMidStream: joined,
    requestIncomplete,
    responseIncomplete,
    skippedBytes: 0n,
    unseenBodyBytes: 0n,
    reason: reasons.join("; "),
  };
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
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
