// A Flow as a HAR 1.2 entry (the HTTP Archive format browsers export), and the log around
// entries. Browsers are the model where HAR says nothing: HTTP/2 is "http/2.0" with the
// request's pseudo-headers among its headers and no ":status" among the response's (as
// Chromium writes it), a request that got no response has status 0 and `_error`, WebSocket
// messages are Chromium's `_webSocketMessages`, event-stream events its `_eventSourceMessages`.
// What only tapwire knows (process, container, TLS library, HTTP/2 stream, gRPC call, what is
// missing) goes in fields that start with "_", as HAR allows. Bodies are base64'd once, and
// only when they are not text.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Protocol, Role, type Flow, type FlowMessage, type GrpcCall, type GrpcMessage, type Header, type Missing, type Request, type Response } from "../gen/tapwire/v1/flow_pb.ts";
import pkg from "../../package.json" with { type: "json" };

export interface HarNameValue {
  name: string;
  value: string;
  [custom: `_${string}`]: unknown;
}

export interface HarCookie extends HarNameValue {
  path?: string;
  domain?: string;
  expires?: string;
  httpOnly?: boolean;
  secure?: boolean;
}

export interface HarPostData {
  mimeType: string;
  text: string;
  params?: HarNameValue[];
  [custom: `_${string}`]: unknown;
}

export interface HarContent {
  size: number;
  compression?: number;
  mimeType: string;
  text?: string;
  encoding?: "base64";
  [custom: `_${string}`]: unknown;
}

export interface HarRequest {
  method: string;
  url: string;
  httpVersion: string;
  cookies: HarCookie[];
  headers: HarNameValue[];
  queryString: HarNameValue[];
  postData?: HarPostData;
  headersSize: number;
  bodySize: number;
  [custom: `_${string}`]: unknown;
}

export interface HarResponse {
  status: number;
  statusText: string;
  httpVersion: string;
  cookies: HarCookie[];
  headers: HarNameValue[];
  content: HarContent;
  redirectURL: string;
  headersSize: number;
  bodySize: number;
  [custom: `_${string}`]: unknown;
}

export interface HarTimings {
  blocked: number;
  dns: number;
  connect: number;
  ssl: number;
  send: number;
  wait: number;
  receive: number;
}

export interface HarEntry {
  startedDateTime: string;
  time: number;
  request: HarRequest;
  response: HarResponse;
  cache: Record<string, never>;
  timings: HarTimings;
  serverIPAddress?: string;
  connection?: string;
  comment?: string;
  [custom: `_${string}`]: unknown;
}

export interface HarLog {
  log: { version: "1.2"; creator: { name: string; version: string }; entries: HarEntry[] };
}

export const HAR_CREATOR = { name: "tapwire", version: pkg.version } as const;

/** A whole HAR document. */
export function harLog(entries: HarEntry[]): HarLog {
  return { log: { version: "1.2", creator: { ...HAR_CREATOR }, entries } };
}

/** The document's text around its entries, for writers that add entries one at a time:
 * head + entry + ("," + entry)* + tail is harLog(entries) as JSON. */
export const HAR_HEAD = `{"log":{"version":"1.2","creator":${JSON.stringify(HAR_CREATOR)},"entries":[\n`;
export const HAR_TAIL = "\n]}}\n";

const toMs = (t: Timestamp) => Number(t.seconds) * 1000 + t.nanos / 1e6;
/** Milliseconds to the microsecond: enough for timings, short in JSON. */
const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** HAR holds HTTP exchanges: a database flow (Redis) has no place in it. */
export const isHarFlow = (flow: Flow) => !flow.database;

export function flowToHarEntry(flow: Flow): HarEntry {
  const startMs = flow.startTime ? toMs(flow.startTime) : undefined;
  const endMs = flow.endTime ? toMs(flow.endTime) : lastMessageMs(flow);
  const total = startMs !== undefined && endMs !== undefined ? Math.max(0, round(endMs - startMs)) : 0;
  const conn = flow.connection;
  const h2 = flow.protocol === Protocol.HTTP2 || flow.protocol === Protocol.GRPC || flow.request?.version === "HTTP/2" || flow.response?.version === "HTTP/2";
  const entry: HarEntry = {
    startedDateTime: new Date(startMs ?? endMs ?? 0).toISOString(),
    time: total,
    request: flow.request ? harRequest(flow, flow.request) : unknownRequest(flow),
    response: flow.response ? harResponse(flow.response, h2) : noResponse(flow),
    cache: {},
    // Tapwire sees when the request began and when the response ended, not the parts
    // between; HAR wants send, wait and receive non-negative and summing to `time`: it is all
    // waiting. The connection's set-up is not this flow's (-1: not known).
    timings: { blocked: -1, dns: -1, connect: -1, ssl: -1, send: 0, wait: total, receive: 0 },
  };
  if (conn?.destination?.ip) entry.serverIPAddress = conn.destination.ip;
  if (conn) entry.connection = String(conn.id);
  if (flow.missing?.reason) entry.comment = flow.missing.reason;
  entry._flowId = flow.id;
  entry._protocol = PROTOCOL_NAMES[flow.protocol] ?? `protocol ${flow.protocol}`;
  if (flow.open) entry._open = true;
  if (conn) {
    entry._role = roleName(conn.role);
    if (conn.source) entry._clientAddress = hostPort(conn.source.ip, conn.source.port);
    if (conn.destination) entry._serverAddress = hostPort(conn.destination.ip, conn.destination.port);
    if (conn.process) entry._process = { pid: conn.process.pid, comm: conn.process.comm, ...(conn.process.exe ? { exe: conn.process.exe } : {}) };
    if (conn.container) entry._container = { id: conn.container.id, name: conn.container.name, image: conn.container.image };
    if (conn.tls) entry._tls = { library: conn.tlsLibrary };
  }
  if (flow.http2) {
    const { streamId, reset, promisedOnStream } = flow.http2;
    entry._http2 = {
      streamId,
      ...(promisedOnStream ? { promisedOnStream } : {}),
      ...(reset ? { reset: { error: reset.error, code: reset.code, sentBy: roleName(reset.sentBy), goaway: reset.goaway } } : {}),
    };
  }
  if (flow.grpc) entry._grpc = harGrpc(flow.grpc);
  if (flow.missing) entry._missing = missingFacts(flow.missing);
  if (flow.protocol === Protocol.WEBSOCKET) entry._resourceType = "websocket";
  if (flow.messages.length) {
    const ws = flow.messages.filter((m) => m.message.case === "websocket");
    const sse = flow.messages.filter((m) => m.message.case === "sse");
    if (ws.length) entry._webSocketMessages = ws.map(webSocketMessage);
    if (sse.length) entry._eventSourceMessages = sse.map(eventSourceMessage);
  }
  if (flow.messagesDropped) entry._messagesDropped = flow.messagesDropped;
  return entry;
}

const PROTOCOL_NAMES: Record<number, string> = { [Protocol.HTTP1]: "http1", [Protocol.HTTP2]: "http2", [Protocol.GRPC]: "grpc", [Protocol.WEBSOCKET]: "websocket" };

function roleName(r: Role): string {
  return r === Role.CLIENT ? "client" : r === Role.SERVER ? "server" : "unknown";
}

/** An open flow's end so far: its newest message. */
function lastMessageMs(flow: Flow): number | undefined {
  const t = flow.messages[flow.messages.length - 1]?.time;
  return t ? toMs(t) : undefined;
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Browsers' name for the version: Chromium writes HTTP/2 as "http/2.0"; HTTP/1.x as sent. */
function httpVersion(v: string): string {
  return v === "HTTP/2" ? "http/2.0" : v;
}

function headerList(headers: Header[], skip?: string): HarNameValue[] {
  const out: HarNameValue[] = [];
  for (const h of headers) {
    if (skip !== undefined && h.name === skip) continue;
    const e: HarNameValue = { name: h.name, value: h.value };
    // HPACK fields whose table entry came before tapwire joined: unknown, never guessed.
    if (h.nameUnknown) e._nameUnknown = true;
    if (h.valueUnknown) e._valueUnknown = true;
    out.push(e);
  }
  return out;
}

function headerValue(headers: Header[], name: string): string | undefined {
  for (const h of headers) if (h.name.toLowerCase() === name) return h.value;
  return undefined;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9a-fA-F]{2})*)(:\d*)?$/;

/** scheme://authority, the authority as sent when it is a host[:port], else escaped whole
 * (it is as sent: the URL must stay one). */
function origin(scheme: string, authority: string): string {
  return `${scheme}://${HOST_PORT.test(authority) ? authority : encodeURIComponent(authority)}`;
}

function schemeOf(flow: Flow): string {
  const ws = flow.protocol === Protocol.WEBSOCKET;
  return flow.connection?.tls ? (ws ? "wss" : "https") : ws ? "ws" : "http";
}

/** Host and port a flow went to, from the connection when no authority was sent. */
function connectionAuthority(flow: Flow): string {
  const dest = flow.connection?.destination;
  return dest ? hostPort(dest.ip, dest.port) : "unknown";
}

/** The URL a browser would show: origin-form targets get the origin; an absolute-form one
 * (to a proxy) is the URL; CONNECT's authority-form names the origin; "*" is the origin. */
function requestUrl(flow: Flow, req: Request): string {
  const target = req.path;
  const authority = req.authority || connectionAuthority(flow);
  if (target.startsWith("/")) return origin(schemeOf(flow), authority) + uriPath(target);
  const absolute = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(target);
  if (absolute) return origin(absolute[1]!.toLowerCase(), absolute[2]!) + uriPath(absolute[3]!);
  if (req.method === "CONNECT" && target) return origin(schemeOf(flow), target) + "/";
  return origin(schemeOf(flow), authority) + "/";
}

/** A path and query with what a URI may not hold there (spaces, controls, non-ASCII,
 * brackets, "#": a target has no fragment, a "%" that starts no escape) percent-encoded;
 * escapes already there stay. */
const NOT_IN_PATH = /[^\x21-\x7e]|["<>\\^`{|}[\]#]|%(?![0-9a-fA-F]{2})/gu;
function uriPath(path: string): string {
  NOT_IN_PATH.lastIndex = 0;
  return NOT_IN_PATH.test(path) ? path.replace(NOT_IN_PATH, (c) => encodeURIComponent(c)) : path;
}

function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s; // malformed escapes: as sent
  }
}

/** name=value pairs of a query or a urlencoded form, in order, duplicates kept. */
function params(text: string): HarNameValue[] {
  const out: HarNameValue[] = [];
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    out.push(eq < 0 ? { name: decodeParam(part), value: "" } : { name: decodeParam(part.slice(0, eq)), value: decodeParam(part.slice(eq + 1)) });
  }
  return out;
}

function queryOf(path: string): HarNameValue[] {
  const q = path.indexOf("?");
  if (q < 0) return [];
  return params(path.slice(q + 1));
}

/** Every Cookie header's pairs (HTTP/2 may split them over several fields). */
function requestCookies(headers: Header[]): HarCookie[] {
  const out: HarCookie[] = [];
  for (const h of headers) {
    if (h.name.toLowerCase() !== "cookie") continue;
    for (const pair of h.value.split(";")) {
      const p = pair.trim();
      if (!p) continue;
      const eq = p.indexOf("=");
      out.push(eq < 0 ? { name: "", value: p } : { name: p.slice(0, eq), value: p.slice(eq + 1) });
    }
  }
  return out;
}

function responseCookies(headers: Header[]): HarCookie[] {
  const out: HarCookie[] = [];
  for (const h of headers) {
    if (h.name.toLowerCase() !== "set-cookie") continue;
    const [first = "", ...attrs] = h.value.split(";");
    const eq = first.indexOf("=");
    const c: HarCookie = eq < 0 ? { name: "", value: first.trim() } : { name: first.slice(0, eq).trim(), value: first.slice(eq + 1).trim() };
    for (const a of attrs) {
      const i = a.indexOf("=");
      const key = (i < 0 ? a : a.slice(0, i)).trim().toLowerCase();
      const val = i < 0 ? "" : a.slice(i + 1).trim();
      if (key === "path") c.path = val;
      else if (key === "domain") c.domain = val;
      else if (key === "expires") {
        const t = Date.parse(val);
        if (!Number.isNaN(t)) c.expires = new Date(t).toISOString();
      } else if (key === "httponly") c.httpOnly = true;
      else if (key === "secure") c.secure = true;
    }
    out.push(c);
  }
  return out;
}

const MIME_TEXT = /^(text\/|application\/(json|xml|javascript|ecmascript|x-www-form-urlencoded|graphql|x-ndjson|ld\+json)|[^;]*\+(json|xml))/i;
const MIME_BINARY = /^(image\/|audio\/|video\/|font\/|application\/(octet-stream|grpc|protobuf|x-protobuf|zip|gzip|pdf|wasm|cbor|msgpack))/i;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** C0 controls other than tab, line feed and carriage return, and DEL: not text. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** A body as HAR holds it: UTF-8 text as is, anything else base64 (`binary`). A cut body may
 * end inside a character: that tail is left out of the text, not a reason to call it binary. */
export function bodyText(bytes: Uint8Array, mimeType: string, cut: boolean): { text: string; binary: boolean } {
  if (bytes.length === 0) return { text: "", binary: false };
  if (!MIME_BINARY.test(mimeType) || MIME_TEXT.test(mimeType)) {
    try {
      // A cut body is decoded as a stream (its unfinished last character held back, and then
      // dropped with that decoder); a whole one by the shared decoder, which keeps no state.
      const decoder = cut ? new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }) : UTF8;
      const text = decoder.decode(bytes, { stream: cut });
      if (!CONTROL.test(text)) return { text, binary: false };
    } catch {
      // not UTF-8: binary
    }
  }
  return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64"), binary: true };
}

function harRequest(flow: Flow, req: Request): HarRequest {
  const out: HarRequest = {
    method: req.method,
    url: requestUrl(flow, req),
    httpVersion: httpVersion(req.version),
    cookies: requestCookies(req.headers),
    headers: headerList(req.headers),
    queryString: queryOf(req.path),
    // The header block is not kept as bytes (and HTTP/2 sends it compressed): not known.
    headersSize: -1,
    bodySize: Number(req.bodySize),
  };
  const hasBody = req.body.length > 0 || req.bodySize > 0n;
  if (hasBody) {
    const mimeType = headerValue(req.headers, "content-type") ?? "";
    const { text, binary } = bodyText(req.body, mimeType, req.bodyTruncated);
    const post: HarPostData = { mimeType, text };
    // HAR 1.2's postData has no encoding field: a binary body is base64 in text, and
    // `_encoding` says so (the name content.encoding has), so a reader can tell it from text.
    if (binary) post._encoding = "base64";
    // Browsers give a form's fields too (besides text, which is what importers read).
    else if (/^application\/x-www-form-urlencoded/i.test(mimeType)) post.params = params(text);
    if (req.bodyTruncated) post._truncated = true;
    if (req.bodyDecodedEncoding) post._decodedEncoding = req.bodyDecodedEncoding;
    out.postData = post;
  }
  if (req.trailers.length) out._trailers = headerList(req.trailers);
  return out;
}

function harResponse(res: Response, h2: boolean): HarResponse {
  const mimeType = headerValue(res.headers, "content-type") ?? "x-unknown";
  const { text, binary } = bodyText(res.body, mimeType, res.bodyTruncated);
  const transferred = Number(res.bodySize);
  const content: HarContent = { size: transferred, mimeType };
  if (res.bodyDecodedEncoding) {
    // The decoded size is known only for a whole body; compression is what decoding added.
    content.size = res.body.length;
    if (!res.bodyTruncated) content.compression = res.body.length - transferred;
    content._decodedEncoding = res.bodyDecodedEncoding;
  }
  if (res.body.length) {
    content.text = text;
    if (binary) content.encoding = "base64";
  }
  if (res.bodyTruncated) content._truncated = true;
  const out: HarResponse = {
    status: res.status,
    statusText: res.reason,
    httpVersion: httpVersion(res.version),
    cookies: responseCookies(res.headers),
    // HTTP/2's ":status" is the status, not a header to a browser.
    headers: headerList(res.headers, h2 ? ":status" : undefined),
    content,
    redirectURL: headerValue(res.headers, "location") ?? "",
    headersSize: -1,
    bodySize: transferred,
  };
  if (res.trailers.length) out._trailers = headerList(res.trailers);
  if (res.informationalStatuses.length) out._informationalStatuses = res.informationalStatuses.slice();
  return out;
}

/** A flow seen from its response on (tapwire joined the connection late): the request is
 * not known; what is said of it is its origin. */
function unknownRequest(flow: Flow): HarRequest {
  return {
    method: "",
    url: origin(schemeOf(flow), connectionAuthority(flow)) + "/",
    httpVersion: httpVersion(flow.response?.version ?? ""),
    cookies: [],
    headers: [],
    queryString: [],
    headersSize: -1,
    bodySize: -1,
    _unknown: true,
  };
}

/** No response: as browsers write a request that failed, status 0 and `_error`. */
function noResponse(flow: Flow): HarResponse {
  return {
    status: 0,
    statusText: "",
    httpVersion: "",
    cookies: [],
    headers: [],
    content: { size: 0, mimeType: "x-unknown" },
    redirectURL: "",
    headersSize: -1,
    bodySize: -1,
    _error: flow.open ? "the exchange is still open" : flow.missing?.reason || "no response was seen",
  };
}

function missingFacts(m: Missing): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (m.lostBytes) out.lostBytes = Number(m.lostBytes);
  if (m.noResponse) out.noResponse = true;
  if (m.joinedMidStream) out.joinedMidStream = true;
  if (m.requestIncomplete) out.requestIncomplete = true;
  if (m.responseIncomplete) out.responseIncomplete = true;
  if (m.skippedBytes) out.skippedBytes = Number(m.skippedBytes);
  if (m.unseenBodyBytes) out.unseenBodyBytes = Number(m.unseenBodyBytes);
  if (m.reason) out.reason = m.reason;
  return out;
}

/** gRPC's messages as read: the JSON when they could be read (their bytes are in the body
 * already), the bytes in base64 only when they could not. */
function grpcMessage(m: GrpcMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { size: m.size };
  if (m.compressed) out.compressed = true;
  if (m.truncated) out.truncated = true;
  if (m.type) out.type = m.type;
  if (m.json) out.json = m.json;
  else if (m.data.length) out.data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length).toString("base64");
  if (m.error) out.error = m.error;
  return out;
}

function harGrpc(g: GrpcCall): Record<string, unknown> {
  const out: Record<string, unknown> = { service: g.service, method: g.method };
  if (g.status !== undefined) out.status = g.status;
  if (g.statusName) out.statusName = g.statusName;
  if (g.statusMessage) out.statusMessage = g.statusMessage;
  if (g.requestEncoding) out.requestEncoding = g.requestEncoding;
  if (g.responseEncoding) out.responseEncoding = g.responseEncoding;
  if (g.trailersOnly) out.trailersOnly = true;
  out.requestMessages = g.requestMessages.map(grpcMessage);
  out.responseMessages = g.responseMessages.map(grpcMessage);
  if (g.requestMessagesDropped) out.requestMessagesDropped = g.requestMessagesDropped;
  if (g.responseMessagesDropped) out.responseMessagesDropped = g.responseMessagesDropped;
  return out;
}

const OPCODES: Record<string, number> = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 };

/** Chromium's shape: type send (by the client) or receive, time in seconds, opcode, data
 * (text as is, anything else base64). */
function webSocketMessage(m: FlowMessage): Record<string, unknown> {
  const w = m.message.value as Extract<FlowMessage["message"], { case: "websocket" }>["value"];
  const opcode = OPCODES[w.type] ?? Number(/^opcode (\d+)$/.exec(w.type)?.[1] ?? 0);
  const out: Record<string, unknown> = {
    type: m.sender === Role.SERVER ? "receive" : "send",
    time: m.time ? toMs(m.time) / 1000 : 0,
    opcode,
    data: w.type === "text" ? w.text : w.data.length ? Buffer.from(w.data.buffer, w.data.byteOffset, w.data.length).toString("base64") : "",
  };
  if (w.size !== BigInt(w.type === "text" ? Buffer.byteLength(w.text) : w.data.length)) out._size = Number(w.size);
  if (w.truncated) out._truncated = true;
  if (w.compressed) out._compressed = true;
  if (w.fragments > 1) out._fragments = w.fragments;
  if (w.closeCode) out._closeCode = w.closeCode;
  if (w.closeReason) out._closeReason = w.closeReason;
  if (w.error) out._error = w.error;
  return out;
}

/** Chromium's EventSource message: time in seconds, eventName, eventId, data. */
function eventSourceMessage(m: FlowMessage): Record<string, unknown> {
  const e = m.message.value as Extract<FlowMessage["message"], { case: "sse" }>["value"];
  const out: Record<string, unknown> = { time: m.time ? toMs(m.time) / 1000 : 0, eventName: e.event || "message", eventId: e.id, data: e.data };
  if (e.retry !== undefined) out._retry = e.retry;
  if (e.truncated) out._truncated = true;
  return out;
}
