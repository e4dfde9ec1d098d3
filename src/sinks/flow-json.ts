// The canonical proto JSON of a Flow, written by hand for speed: the same bytes as
// toJsonString(FlowSchema, flow) (fields in declaration order, defaults left out, 64-bit
// integers and enums as strings, bytes as padded base64, timestamps as RFC 3339 with 0, 3, 6
// or 9 fractional digits, strings escaped as JSON.stringify does), at several times its
// speed: the generic writer walks the schema for every field of every flow. Tests hold the
// two equal on every flow shape, on fuzzed flows and on every flow the kernel tests produce.
// When flow.proto changes, this file changes with it (the tests say where it falls behind).
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Connection, Flow, GrpcCall, GrpcMessage, Header, Http2Stream, Missing, Request, Response } from "../gen/tapwire/v1/flow_pb.ts";

const PROTOCOL = ["", "PROTOCOL_HTTP1", "PROTOCOL_HTTP2", "PROTOCOL_GRPC"];
const ROLE = ["", "ROLE_CLIENT", "ROLE_SERVER"];

/** A JSON string: as JSON.stringify writes it, which escapes quotes, backslashes, control
 * characters and (well-formed, ES2019) lone surrogates; a scan finds the common case, a
 * string with none of them, faster than a regular expression or JSON.stringify itself. */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

function enumName(names: string[], v: number): string {
  const n = names[v];
  return n ? `"${n}"` : String(v);
}

function base64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
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
  if (nanos <= 0) return `"${lastPrefix}Z"`;
  const digits = String(nanos + 1_000_000_000).slice(1);
  if (nanos % 1_000_000 === 0) return `"${lastPrefix}.${digits.slice(0, 3)}Z"`;
  if (nanos % 1000 === 0) return `"${lastPrefix}.${digits.slice(0, 6)}Z"`;
  return `"${lastPrefix}.${digits}Z"`;
}

function headers(list: Header[]): string {
  let out = "[";
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    if (i) out += ",";
    let o = "";
    if (h.name) o += `"name":${str(h.name)}`;
    if (h.value) o += `${o ? "," : ""}"value":${str(h.value)}`;
    if (h.nameUnknown) o += `${o ? "," : ""}"nameUnknown":true`;
    if (h.valueUnknown) o += `${o ? "," : ""}"valueUnknown":true`;
    out += `{${o}}`;
  }
  return out + "]";
}

/** Appends `"key":value` to a list of members. */
class Members {
  s = "";
  add(key: string, value: string) {
    this.s += this.s ? `,"${key}":${value}` : `"${key}":${value}`;
  }
  object(): string {
    return `{${this.s}}`;
  }
}

/** Every flow of a connection shares its Connection: its JSON is made once. */
const connectionJson = new WeakMap<Connection, string>();

function connection(c: Connection): string {
  let json = connectionJson.get(c);
  if (json === undefined) connectionJson.set(c, (json = connectionOnce(c)));
  return json;
}

function connectionOnce(c: Connection): string {
  const m = new Members();
  if (c.id) m.add("id", `"${c.id}"`);
  if (c.role) m.add("role", enumName(ROLE, c.role));
  if (c.source) m.add("source", endpoint(c.source.ip, c.source.port));
  if (c.destination) m.add("destination", endpoint(c.destination.ip, c.destination.port));
  if (c.process) {
    const p = new Members();
    if (c.process.pid) p.add("pid", String(c.process.pid));
    if (c.process.comm) p.add("comm", str(c.process.comm));
    if (c.process.exe) p.add("exe", str(c.process.exe));
    m.add("process", p.object());
  }
  if (c.tls) m.add("tls", "true");
  if (c.tlsLibrary) m.add("tlsLibrary", str(c.tlsLibrary));
  if (c.container) {
    const k = new Members();
    if (c.container.id) k.add("id", str(c.container.id));
    if (c.container.name) k.add("name", str(c.container.name));
    if (c.container.image) k.add("image", str(c.container.image));
    m.add("container", k.object());
  }
  return m.object();
}

function endpoint(ip: string, port: number): string {
  const m = new Members();
  if (ip) m.add("ip", str(ip));
  if (port) m.add("port", String(port));
  return m.object();
}

/** The members a request and a response share, in their field-number order. */
function bodyMembers(m: Members, r: Request | Response): void {
  if (r.body.length) m.add("body", `"${base64(r.body)}"`);
  if (r.bodySize) m.add("bodySize", `"${r.bodySize}"`);
  if (r.bodyTruncated) m.add("bodyTruncated", "true");
  if (r.trailers.length) m.add("trailers", headers(r.trailers));
  if (r.bodyDecodedEncoding) m.add("bodyDecodedEncoding", str(r.bodyDecodedEncoding));
}

function request(r: Request): string {
  const m = new Members();
  if (r.method) m.add("method", str(r.method));
  if (r.path) m.add("path", str(r.path));
  if (r.authority) m.add("authority", str(r.authority));
  if (r.version) m.add("version", str(r.version));
  if (r.headers.length) m.add("headers", headers(r.headers));
  bodyMembers(m, r);
  return m.object();
}

function response(r: Response): string {
  const m = new Members();
  if (r.status) m.add("status", String(r.status));
  if (r.reason) m.add("reason", str(r.reason));
  if (r.version) m.add("version", str(r.version));
  if (r.headers.length) m.add("headers", headers(r.headers));
  bodyMembers(m, r);
  if (r.informationalStatuses.length) m.add("informationalStatuses", `[${r.informationalStatuses.join(",")}]`);
  return m.object();
}

function missing(x: Missing): string {
  const m = new Members();
  if (x.lostBytes) m.add("lostBytes", `"${x.lostBytes}"`);
  if (x.noResponse) m.add("noResponse", "true");
  if (x.joinedMidStream) m.add("joinedMidStream", "true");
  if (x.requestIncomplete) m.add("requestIncomplete", "true");
  if (x.responseIncomplete) m.add("responseIncomplete", "true");
  if (x.skippedBytes) m.add("skippedBytes", `"${x.skippedBytes}"`);
  if (x.unseenBodyBytes) m.add("unseenBodyBytes", `"${x.unseenBodyBytes}"`);
  if (x.reason) m.add("reason", str(x.reason));
  return m.object();
}

function http2(h: Http2Stream): string {
  const m = new Members();
  if (h.streamId) m.add("streamId", String(h.streamId));
  if (h.reset) {
    const r = new Members();
    if (h.reset.error) r.add("error", str(h.reset.error));
    if (h.reset.code) r.add("code", String(h.reset.code));
    if (h.reset.sentBy) r.add("sentBy", enumName(ROLE, h.reset.sentBy));
    if (h.reset.goaway) r.add("goaway", "true");
    m.add("reset", r.object());
  }
  if (h.promisedOnStream) m.add("promisedOnStream", String(h.promisedOnStream));
  return m.object();
}

function grpcMessages(list: GrpcMessage[]): string {
  let out = "[";
  for (let i = 0; i < list.length; i++) {
    const g = list[i]!;
    const m = new Members();
    if (g.compressed) m.add("compressed", "true");
    if (g.size) m.add("size", String(g.size));
    if (g.data.length) m.add("data", `"${base64(g.data)}"`);
    if (g.truncated) m.add("truncated", "true");
    if (g.json) m.add("json", str(g.json));
    if (g.type) m.add("type", str(g.type));
    if (g.error) m.add("error", str(g.error));
    out += (i ? "," : "") + m.object();
  }
  return out + "]";
}

function grpc(g: GrpcCall): string {
  const m = new Members();
  if (g.service) m.add("service", str(g.service));
  if (g.method) m.add("method", str(g.method));
  if (g.requestMessages.length) m.add("requestMessages", grpcMessages(g.requestMessages));
  if (g.responseMessages.length) m.add("responseMessages", grpcMessages(g.responseMessages));
  if (g.status !== undefined) m.add("status", String(g.status)); // optional: present when set
  if (g.statusName) m.add("statusName", str(g.statusName));
  if (g.statusMessage) m.add("statusMessage", str(g.statusMessage));
  if (g.requestEncoding) m.add("requestEncoding", str(g.requestEncoding));
  if (g.responseEncoding) m.add("responseEncoding", str(g.responseEncoding));
  if (g.trailersOnly) m.add("trailersOnly", "true");
  return m.object();
}

/** The canonical proto JSON of a flow (what toJsonString(FlowSchema, flow) returns). */
export function flowJson(f: Flow): string {
  const m = new Members();
  if (f.id) m.add("id", str(f.id));
  if (f.startTime) m.add("startTime", timestamp(f.startTime));
  if (f.endTime) m.add("endTime", timestamp(f.endTime));
  if (f.protocol) m.add("protocol", enumName(PROTOCOL, f.protocol));
  if (f.connection) m.add("connection", connection(f.connection));
  if (f.request) m.add("request", request(f.request));
  if (f.response) m.add("response", response(f.response));
  if (f.missing) m.add("missing", missing(f.missing));
  if (f.http2) m.add("http2", http2(f.http2));
  if (f.grpc) m.add("grpc", grpc(f.grpc));
  return m.object();
}
