// The canonical proto JSON of a Flow, written by hand for speed: the same bytes as
// toJsonString(FlowSchema, flow) in UTF-8 (fields in declaration order, defaults left out,
// 64-bit integers and enums as strings, bytes as padded base64, timestamps as RFC 3339 with
// 0, 3, 6 or 9 fractional digits, strings escaped as JSON.stringify escapes them), written
// straight into bytes (json-bytes.ts): the generic writer walks the schema for every field of
// every flow, and a string made first would be encoded again to be written. Tests hold the
// two equal on every flow shape, on fuzzed flows and on every flow the kernel tests produce.
// When flow.proto changes, this file changes with it (the tests say where it falls behind).
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Connection, DatabaseCall, Flow, FlowEvent, FlowMessage, GrpcCall, GrpcMessage, Header, Http2Stream, Missing, Request, Response } from "../gen/tapwire/v1/flow_pb.ts";
import { JsonBytes, key } from "./json-bytes.ts";

const OBJ = 0x7b;
const OBJ_END = 0x7d;
const ARR = 0x5b;
const ARR_END = 0x5d;
const QUOTE = 0x22;

const encoder = new TextEncoder();
const names = (list: string[]) => list.map((n) => (n ? encoder.encode(JSON.stringify(n)) : null));
const PROTOCOL = names(["", "PROTOCOL_HTTP1", "PROTOCOL_HTTP2", "PROTOCOL_GRPC", "PROTOCOL_WEBSOCKET", "PROTOCOL_REDIS"]);
const ROLE = names(["", "ROLE_CLIENT", "ROLE_SERVER"]);

/** An enum as proto JSON writes it: its name, or its number when it has none. */
function enumValue(w: JsonBytes, encoded: (Uint8Array | null)[], v: number): void {
  const name = encoded[v];
  if (name) w.raw(name);
  else w.int(v);
}

const K = {
  database: key("database"),
  system: key("system"),
  operation: key("operation"),
  statement: key("statement"),
  reply: key("reply"),
  replyType: key("replyType"),
  rows: key("rows"),
  replyTruncated: key("replyTruncated"),
  message: key("message"),
  open: key("open"),
  flowId: key("flowId"),
  started: key("started"),
  messages: key("messages"),
  ended: key("ended"),
  sender: key("sender"),
  time: key("time"),
  index: key("index"),
  grpcMessage: key("grpc"),
  sse: key("sse"),
  websocket: key("websocket"),
  text: key("text"),
  fragments: key("fragments"),
  closeCode: key("closeCode"),
  closeReason: key("closeReason"),
  event: key("event"),
  retry: key("retry"),
  messagesDropped: key("messagesDropped"),
  id: key("id"),
  startTime: key("startTime"),
  endTime: key("endTime"),
  protocol: key("protocol"),
  connection: key("connection"),
  request: key("request"),
  response: key("response"),
  missing: key("missing"),
  http2: key("http2"),
  grpc: key("grpc"),
  role: key("role"),
  source: key("source"),
  destination: key("destination"),
  process: key("process"),
  tls: key("tls"),
  tlsLibrary: key("tlsLibrary"),
  container: key("container"),
  ip: key("ip"),
  port: key("port"),
  pid: key("pid"),
  comm: key("comm"),
  exe: key("exe"),
  name: key("name"),
  image: key("image"),
  value: key("value"),
  nameUnknown: key("nameUnknown"),
  valueUnknown: key("valueUnknown"),
  method: key("method"),
  path: key("path"),
  authority: key("authority"),
  version: key("version"),
  headers: key("headers"),
  body: key("body"),
  bodySize: key("bodySize"),
  bodyTruncated: key("bodyTruncated"),
  trailers: key("trailers"),
  bodyDecodedEncoding: key("bodyDecodedEncoding"),
  status: key("status"),
  reason: key("reason"),
  informationalStatuses: key("informationalStatuses"),
  lostBytes: key("lostBytes"),
  noResponse: key("noResponse"),
  joinedMidStream: key("joinedMidStream"),
  requestIncomplete: key("requestIncomplete"),
  responseIncomplete: key("responseIncomplete"),
  skippedBytes: key("skippedBytes"),
  unseenBodyBytes: key("unseenBodyBytes"),
  streamId: key("streamId"),
  reset: key("reset"),
  error: key("error"),
  code: key("code"),
  sentBy: key("sentBy"),
  goaway: key("goaway"),
  promisedOnStream: key("promisedOnStream"),
  compressed: key("compressed"),
  size: key("size"),
  data: key("data"),
  truncated: key("truncated"),
  json: key("json"),
  type: key("type"),
  service: key("service"),
  requestMessages: key("requestMessages"),
  responseMessages: key("responseMessages"),
  statusName: key("statusName"),
  statusMessage: key("statusMessage"),
  requestEncoding: key("requestEncoding"),
  responseEncoding: key("responseEncoding"),
  trailersOnly: key("trailersOnly"),
  requestMessagesDropped: key("requestMessagesDropped"),
  responseMessagesDropped: key("responseMessagesDropped"),
};

// The date part of the last timestamp written, as bytes: flows of one second share it.
let lastSeconds = -1n;
let lastPrefix = new Uint8Array(0);
const digits = new Uint8Array(9);

function timestamp(w: JsonBytes, t: Timestamp): void {
  if (t.seconds !== lastSeconds) {
    const iso = new Date(Number(t.seconds) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
    lastSeconds = t.seconds;
    lastPrefix = encoder.encode(`"${iso.slice(0, iso.length - 5)}`);
  }
  w.raw(lastPrefix);
  w.ensure(12);
  const out = w.buf;
  let nanos = t.nanos;
  if (nanos > 0) {
    for (let i = 8; i >= 0; i--) {
      digits[i] = 0x30 + (nanos % 10);
      nanos = Math.floor(nanos / 10);
    }
    // 9, 6 or 3 digits: as few as keep every non-zero one.
    const n = t.nanos % 1_000_000 === 0 ? 3 : t.nanos % 1000 === 0 ? 6 : 9;
    out[w.at++] = 0x2e;
    for (let i = 0; i < n; i++) out[w.at++] = digits[i]!;
  }
  out[w.at++] = 0x5a; // Z
  out[w.at++] = QUOTE;
}

function headers(w: JsonBytes, list: Header[]): void {
  w.open(ARR);
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    w.element();
    w.open(OBJ);
    if (h.name) {
      w.member(K.name);
      w.string(h.name);
    }
    if (h.value) {
      w.member(K.value);
      w.string(h.value);
    }
    if (h.nameUnknown) {
      w.member(K.nameUnknown);
      w.true();
    }
    if (h.valueUnknown) {
      w.member(K.valueUnknown);
      w.true();
    }
    w.close(OBJ_END);
  }
  w.close(ARR_END);
}

/** Every flow of a connection shares its Connection: its JSON is made once. */
const connectionJson = new WeakMap<Connection, Uint8Array>();
const once = new JsonBytes();

function connection(w: JsonBytes, c: Connection): void {
  let bytes = connectionJson.get(c);
  if (bytes === undefined) {
    once.reset();
    connectionOnce(once, c);
    connectionJson.set(c, (bytes = new Uint8Array(once.view()))); // a copy: `once` is reused
  }
  w.raw(bytes);
}

function connectionOnce(w: JsonBytes, c: Connection): void {
  w.open(OBJ);
  if (c.id) {
    w.member(K.id);
    w.int64String(c.id);
  }
  if (c.role) {
    w.member(K.role);
    enumValue(w, ROLE, c.role);
  }
  if (c.source) endpoint(w, K.source, c.source.ip, c.source.port);
  if (c.destination) endpoint(w, K.destination, c.destination.ip, c.destination.port);
  if (c.process) {
    w.member(K.process);
    w.open(OBJ);
    if (c.process.pid) {
      w.member(K.pid);
      w.uint(c.process.pid);
    }
    stringMember(w, K.comm, c.process.comm);
    stringMember(w, K.exe, c.process.exe);
    w.close(OBJ_END);
  }
  if (c.tls) {
    w.member(K.tls);
    w.true();
  }
  stringMember(w, K.tlsLibrary, c.tlsLibrary);
  if (c.container) {
    w.member(K.container);
    w.open(OBJ);
    stringMember(w, K.id, c.container.id);
    stringMember(w, K.name, c.container.name);
    stringMember(w, K.image, c.container.image);
    w.close(OBJ_END);
  }
  w.close(OBJ_END);
}

function endpoint(w: JsonBytes, k: Uint8Array, ip: string, port: number): void {
  w.member(k);
  w.open(OBJ);
  stringMember(w, K.ip, ip);
  if (port) {
    w.member(K.port);
    w.uint(port);
  }
  w.close(OBJ_END);
}

/** A string member, left out when empty (proto3's default). */
function stringMember(w: JsonBytes, k: Uint8Array, v: string): void {
  if (!v) return;
  w.member(k);
  w.string(v);
}

function int64Member(w: JsonBytes, k: Uint8Array, v: bigint): void {
  if (!v) return;
  w.member(k);
  w.int64String(v);
}

function trueMember(w: JsonBytes, k: Uint8Array, v: boolean): void {
  if (!v) return;
  w.member(k);
  w.true();
}

/** The members a request and a response share, in their field-number order. */
function bodyMembers(w: JsonBytes, r: Request | Response): void {
  if (r.body.length) {
    w.member(K.body);
    w.base64(r.body);
  }
  int64Member(w, K.bodySize, r.bodySize);
  trueMember(w, K.bodyTruncated, r.bodyTruncated);
  if (r.trailers.length) {
    w.member(K.trailers);
    headers(w, r.trailers);
  }
  stringMember(w, K.bodyDecodedEncoding, r.bodyDecodedEncoding);
}

function request(w: JsonBytes, r: Request): void {
  w.open(OBJ);
  stringMember(w, K.method, r.method);
  stringMember(w, K.path, r.path);
  stringMember(w, K.authority, r.authority);
  stringMember(w, K.version, r.version);
  if (r.headers.length) {
    w.member(K.headers);
    headers(w, r.headers);
  }
  bodyMembers(w, r);
  w.close(OBJ_END);
}

function response(w: JsonBytes, r: Response): void {
  w.open(OBJ);
  if (r.status) {
    w.member(K.status);
    w.uint(r.status);
  }
  stringMember(w, K.reason, r.reason);
  stringMember(w, K.version, r.version);
  if (r.headers.length) {
    w.member(K.headers);
    headers(w, r.headers);
  }
  bodyMembers(w, r);
  if (r.informationalStatuses.length) {
    w.member(K.informationalStatuses);
    w.open(ARR);
    for (const s of r.informationalStatuses) {
      w.element();
      w.uint(s);
    }
    w.close(ARR_END);
  }
  w.close(OBJ_END);
}

function missing(w: JsonBytes, x: Missing): void {
  w.open(OBJ);
  int64Member(w, K.lostBytes, x.lostBytes);
  trueMember(w, K.noResponse, x.noResponse);
  trueMember(w, K.joinedMidStream, x.joinedMidStream);
  trueMember(w, K.requestIncomplete, x.requestIncomplete);
  trueMember(w, K.responseIncomplete, x.responseIncomplete);
  int64Member(w, K.skippedBytes, x.skippedBytes);
  int64Member(w, K.unseenBodyBytes, x.unseenBodyBytes);
  stringMember(w, K.reason, x.reason);
  w.close(OBJ_END);
}

function uintMember(w: JsonBytes, k: Uint8Array, v: number): void {
  if (!v) return;
  w.member(k);
  w.uint(v);
}

function http2(w: JsonBytes, h: Http2Stream): void {
  w.open(OBJ);
  uintMember(w, K.streamId, h.streamId);
  if (h.reset) {
    w.member(K.reset);
    w.open(OBJ);
    stringMember(w, K.error, h.reset.error);
    uintMember(w, K.code, h.reset.code);
    if (h.reset.sentBy) {
      w.member(K.sentBy);
      enumValue(w, ROLE, h.reset.sentBy);
    }
    trueMember(w, K.goaway, h.reset.goaway);
    w.close(OBJ_END);
  }
  uintMember(w, K.promisedOnStream, h.promisedOnStream);
  w.close(OBJ_END);
}

function grpcMessage(w: JsonBytes, g: GrpcMessage): void {
  w.open(OBJ);
  trueMember(w, K.compressed, g.compressed);
  uintMember(w, K.size, g.size);
  if (g.data.length) {
    w.member(K.data);
    w.base64(g.data);
  }
  trueMember(w, K.truncated, g.truncated);
  stringMember(w, K.json, g.json);
  stringMember(w, K.type, g.type);
  stringMember(w, K.error, g.error);
  w.close(OBJ_END);
}

function grpcMessages(w: JsonBytes, list: GrpcMessage[]): void {
  w.open(ARR);
  for (let i = 0; i < list.length; i++) {
    w.element();
    grpcMessage(w, list[i]!);
  }
  w.close(ARR_END);
}

function grpc(w: JsonBytes, g: GrpcCall): void {
  w.open(OBJ);
  stringMember(w, K.service, g.service);
  stringMember(w, K.method, g.method);
  if (g.requestMessages.length) {
    w.member(K.requestMessages);
    grpcMessages(w, g.requestMessages);
  }
  if (g.responseMessages.length) {
    w.member(K.responseMessages);
    grpcMessages(w, g.responseMessages);
  }
  if (g.status !== undefined) {
    // optional: present when set, 0 included
    w.member(K.status);
    w.uint(g.status);
  }
  stringMember(w, K.statusName, g.statusName);
  stringMember(w, K.statusMessage, g.statusMessage);
  stringMember(w, K.requestEncoding, g.requestEncoding);
  stringMember(w, K.responseEncoding, g.responseEncoding);
  trueMember(w, K.trailersOnly, g.trailersOnly);
  uintMember(w, K.requestMessagesDropped, g.requestMessagesDropped);
  uintMember(w, K.responseMessagesDropped, g.responseMessagesDropped);
  w.close(OBJ_END);
}

/** A message-typed member, left out when absent. */
function messageMember<T>(w: JsonBytes, k: Uint8Array, v: T | undefined, write: (w: JsonBytes, v: T) => void): void {
  if (v === undefined) return;
  w.member(k);
  write(w, v);
}

/** Appends the canonical proto JSON of a flow to `w` (what toJsonString(FlowSchema, flow) returns, in UTF-8). */
export function writeFlowJson(w: JsonBytes, f: Flow): void {
  w.open(OBJ);
  stringMember(w, K.id, f.id);
  messageMember(w, K.startTime, f.startTime, timestamp);
  messageMember(w, K.endTime, f.endTime, timestamp);
  if (f.protocol) {
    w.member(K.protocol);
    enumValue(w, PROTOCOL, f.protocol);
  }
  messageMember(w, K.connection, f.connection, connection);
  messageMember(w, K.request, f.request, request);
  messageMember(w, K.response, f.response, response);
  messageMember(w, K.missing, f.missing, missing);
  messageMember(w, K.http2, f.http2, http2);
  messageMember(w, K.grpc, f.grpc, grpc);
  trueMember(w, K.open, f.open);
  if (f.messages.length) {
    w.member(K.messages);
    flowMessages(w, f.messages);
  }
  uintMember(w, K.messagesDropped, f.messagesDropped);
  messageMember(w, K.database, f.database, database);
  w.close(OBJ_END);
}

function database(w: JsonBytes, d: DatabaseCall): void {
  w.open(OBJ);
  stringMember(w, K.system, d.system);
  stringMember(w, K.operation, d.operation);
  stringMember(w, K.statement, d.statement);
  stringMember(w, K.reply, d.reply);
  stringMember(w, K.replyType, d.replyType);
  if (d.rows !== undefined) {
    // optional: present when set, 0 included
    w.member(K.rows);
    w.int64String(d.rows);
  }
  if (d.error) {
    w.member(K.error);
    w.open(OBJ);
    stringMember(w, K.code, d.error.code);
    stringMember(w, K.message, d.error.message);
    w.close(OBJ_END);
  }
  trueMember(w, K.replyTruncated, d.replyTruncated);
  w.close(OBJ_END);
}

function flowMessage(w: JsonBytes, m: FlowMessage): void {
  w.open(OBJ);
  if (m.sender) {
    w.member(K.sender);
    enumValue(w, ROLE, m.sender);
  }
  messageMember(w, K.time, m.time, timestamp);
  uintMember(w, K.index, m.index);
  if (m.message.case === "grpc") {
    w.member(K.grpcMessage);
    grpcMessage(w, m.message.value);
  } else if (m.message.case === "sse") {
    const e = m.message.value;
    w.member(K.sse);
    w.open(OBJ);
    stringMember(w, K.id, e.id);
    stringMember(w, K.event, e.event);
    stringMember(w, K.data, e.data);
    if (e.retry !== undefined) {
      // optional: present when set, 0 included
      w.member(K.retry);
      w.uint(e.retry);
    }
    trueMember(w, K.truncated, e.truncated);
    w.close(OBJ_END);
  } else if (m.message.case === "websocket") {
    const x = m.message.value;
    w.member(K.websocket);
    w.open(OBJ);
    stringMember(w, K.type, x.type);
    if (x.data.length) {
      w.member(K.data);
      w.base64(x.data);
    }
    stringMember(w, K.text, x.text);
    int64Member(w, K.size, x.size);
    uintMember(w, K.fragments, x.fragments);
    trueMember(w, K.compressed, x.compressed);
    trueMember(w, K.truncated, x.truncated);
    uintMember(w, K.closeCode, x.closeCode);
    stringMember(w, K.closeReason, x.closeReason);
    stringMember(w, K.error, x.error);
    w.close(OBJ_END);
  }
  w.close(OBJ_END);
}

function flowMessages(w: JsonBytes, list: FlowMessage[]): void {
  w.open(ARR);
  for (let i = 0; i < list.length; i++) {
    w.element();
    flowMessage(w, list[i]!);
  }
  w.close(ARR_END);
}

/** Appends the canonical proto JSON of a flow event (toJsonString(FlowEventSchema, ev)). */
export function writeFlowEventJson(w: JsonBytes, ev: FlowEvent): void {
  w.open(OBJ);
  stringMember(w, K.flowId, ev.flowId);
  const e = ev.event;
  if (e.case === "started" || e.case === "ended") {
    w.member(e.case === "started" ? K.started : K.ended);
    writeFlowJson(w, e.value);
  } else if (e.case === "messages") {
    w.member(K.messages);
    w.open(OBJ);
    if (e.value.messages.length) {
      w.member(K.messages);
      flowMessages(w, e.value.messages);
    }
    w.close(OBJ_END);
  }
  w.close(OBJ_END);
}
