// The canonical proto JSON of a Flow, written by hand for speed: the same bytes as
// toJsonString(FlowSchema, flow) (fields in declaration order, defaults left out, 64-bit
// integers and enums as strings, bytes as padded base64, timestamps as RFC 3339 with 0, 3, 6
// or 9 fractional digits, strings escaped by JSON.stringify as toJsonString does). A plain
// object is built with the members in order and handed to JSON.stringify, which makes one
// flat string natively: the generic writer walks the schema for every field of every flow,
// and a string built by concatenation is a rope that costs as much again to flatten when it
// is written out. Tests hold the two equal on every flow shape, on fuzzed flows and on every
// flow the kernel tests produce. When flow.proto changes, this file changes with it (the
// tests say where it falls behind).
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Connection, Flow, GrpcCall, GrpcMessage, Header, Http2Stream, Missing, Request, Response } from "../gen/tapwire/v1/flow_pb.ts";

type Json = Record<string, unknown>;

const PROTOCOL = ["", "PROTOCOL_HTTP1", "PROTOCOL_HTTP2", "PROTOCOL_GRPC"];
const ROLE = ["", "ROLE_CLIENT", "ROLE_SERVER"];

/** An enum as proto JSON writes it: its name, or its number when it has none. */
function enumValue(names: string[], v: number): string | number {
  return names[v] || v;
}

/** Padded standard base64. toBase64 reads the array as it is: a Buffer over its memory would
 * first make the engine give a freshly copied array a buffer of its own (bench/replay.ts). */
function base64(b: Uint8Array): string {
  return (b as Uint8Array & { toBase64(): string }).toBase64();
}

// The date part of the last timestamp written: flows of one second share it.
let lastSeconds = -1n;
let lastPrefix = "";

function timestamp(t: Timestamp): string {
  if (t.seconds !== lastSeconds) {
    const iso = new Date(Number(t.seconds) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
    lastSeconds = t.seconds;
    lastPrefix = iso.slice(0, iso.length - 5);
  }
  const nanos = t.nanos;
  if (nanos <= 0) return `${lastPrefix}Z`;
  const digits = String(nanos + 1_000_000_000).slice(1);
  if (nanos % 1_000_000 === 0) return `${lastPrefix}.${digits.slice(0, 3)}Z`;
  if (nanos % 1000 === 0) return `${lastPrefix}.${digits.slice(0, 6)}Z`;
  return `${lastPrefix}.${digits}Z`;
}

function headers(list: Header[]): Json[] {
  const out: Json[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    const o: Json = {};
    if (h.name) o.name = h.name;
    if (h.value) o.value = h.value;
    if (h.nameUnknown) o.nameUnknown = true;
    if (h.valueUnknown) o.valueUnknown = true;
    out[i] = o;
  }
  return out;
}

/** Every flow of a connection shares its Connection: its JSON object is made once. */
const connectionJson = new WeakMap<Connection, Json>();

function connection(c: Connection): Json {
  let o = connectionJson.get(c);
  if (o === undefined) connectionJson.set(c, (o = connectionOnce(c)));
  return o;
}

function connectionOnce(c: Connection): Json {
  const o: Json = {};
  if (c.id) o.id = String(c.id);
  if (c.role) o.role = enumValue(ROLE, c.role);
  if (c.source) o.source = endpoint(c.source.ip, c.source.port);
  if (c.destination) o.destination = endpoint(c.destination.ip, c.destination.port);
  if (c.process) {
    const p: Json = {};
    if (c.process.pid) p.pid = c.process.pid;
    if (c.process.comm) p.comm = c.process.comm;
    if (c.process.exe) p.exe = c.process.exe;
    o.process = p;
  }
  if (c.tls) o.tls = true;
  if (c.tlsLibrary) o.tlsLibrary = c.tlsLibrary;
  if (c.container) {
    const k: Json = {};
    if (c.container.id) k.id = c.container.id;
    if (c.container.name) k.name = c.container.name;
    if (c.container.image) k.image = c.container.image;
    o.container = k;
  }
  return o;
}

function endpoint(ip: string, port: number): Json {
  const o: Json = {};
  if (ip) o.ip = ip;
  if (port) o.port = port;
  return o;
}

/** The members a request and a response share, in their field-number order. */
function bodyMembers(o: Json, r: Request | Response): void {
  if (r.body.length) o.body = base64(r.body);
  if (r.bodySize) o.bodySize = String(r.bodySize);
  if (r.bodyTruncated) o.bodyTruncated = true;
  if (r.trailers.length) o.trailers = headers(r.trailers);
  if (r.bodyDecodedEncoding) o.bodyDecodedEncoding = r.bodyDecodedEncoding;
}

function request(r: Request): Json {
  const o: Json = {};
  if (r.method) o.method = r.method;
  if (r.path) o.path = r.path;
  if (r.authority) o.authority = r.authority;
  if (r.version) o.version = r.version;
  if (r.headers.length) o.headers = headers(r.headers);
  bodyMembers(o, r);
  return o;
}

function response(r: Response): Json {
  const o: Json = {};
  if (r.status) o.status = r.status;
  if (r.reason) o.reason = r.reason;
  if (r.version) o.version = r.version;
  if (r.headers.length) o.headers = headers(r.headers);
  bodyMembers(o, r);
  if (r.informationalStatuses.length) o.informationalStatuses = r.informationalStatuses;
  return o;
}

function missing(x: Missing): Json {
  const o: Json = {};
  if (x.lostBytes) o.lostBytes = String(x.lostBytes);
  if (x.noResponse) o.noResponse = true;
  if (x.joinedMidStream) o.joinedMidStream = true;
  if (x.requestIncomplete) o.requestIncomplete = true;
  if (x.responseIncomplete) o.responseIncomplete = true;
  if (x.skippedBytes) o.skippedBytes = String(x.skippedBytes);
  if (x.unseenBodyBytes) o.unseenBodyBytes = String(x.unseenBodyBytes);
  if (x.reason) o.reason = x.reason;
  return o;
}

function http2(h: Http2Stream): Json {
  const o: Json = {};
  if (h.streamId) o.streamId = h.streamId;
  if (h.reset) {
    const r: Json = {};
    if (h.reset.error) r.error = h.reset.error;
    if (h.reset.code) r.code = h.reset.code;
    if (h.reset.sentBy) r.sentBy = enumValue(ROLE, h.reset.sentBy);
    if (h.reset.goaway) r.goaway = true;
    o.reset = r;
  }
  if (h.promisedOnStream) o.promisedOnStream = h.promisedOnStream;
  return o;
}

function grpcMessages(list: GrpcMessage[]): Json[] {
  const out: Json[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const g = list[i]!;
    const o: Json = {};
    if (g.compressed) o.compressed = true;
    if (g.size) o.size = g.size;
    if (g.data.length) o.data = base64(g.data);
    if (g.truncated) o.truncated = true;
    if (g.json) o.json = g.json;
    if (g.type) o.type = g.type;
    if (g.error) o.error = g.error;
    out[i] = o;
  }
  return out;
}

function grpc(g: GrpcCall): Json {
  const o: Json = {};
  if (g.service) o.service = g.service;
  if (g.method) o.method = g.method;
  if (g.requestMessages.length) o.requestMessages = grpcMessages(g.requestMessages);
  if (g.responseMessages.length) o.responseMessages = grpcMessages(g.responseMessages);
  if (g.status !== undefined) o.status = g.status; // optional: present when set
  if (g.statusName) o.statusName = g.statusName;
  if (g.statusMessage) o.statusMessage = g.statusMessage;
  if (g.requestEncoding) o.requestEncoding = g.requestEncoding;
  if (g.responseEncoding) o.responseEncoding = g.responseEncoding;
  if (g.trailersOnly) o.trailersOnly = true;
  return o;
}

/** The canonical proto JSON of a flow (what toJsonString(FlowSchema, flow) returns). */
export function flowJson(f: Flow): string {
  const o: Json = {};
  if (f.id) o.id = f.id;
  if (f.startTime) o.startTime = timestamp(f.startTime);
  if (f.endTime) o.endTime = timestamp(f.endTime);
  if (f.protocol) o.protocol = enumValue(PROTOCOL, f.protocol);
  if (f.connection) o.connection = connection(f.connection);
  if (f.request) o.request = request(f.request);
  if (f.response) o.response = response(f.response);
  if (f.missing) o.missing = missing(f.missing);
  if (f.http2) o.http2 = http2(f.http2);
  if (f.grpc) o.grpc = grpc(f.grpc);
  return JSON.stringify(o);
}
