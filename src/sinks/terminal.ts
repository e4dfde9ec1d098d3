// The terminal view: one readable line per flow, and with `verbose` its headers and bodies.
// A flow still open after a moment (a gRPC stream — a watch, a chat, a log tail —, an event
// stream, a slow HTTP/2 response) gets a line when that is seen, and under `verbose` each of
// its messages as it completes; its usual line comes when it ends.
import { Protocol, Role, type Flow, type FlowMessage, type GrpcMessage, type Header, type SseEvent } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowSink, OutputWriter } from "./sink.ts";

export interface TerminalOptions {
  color: boolean;
  verbose: boolean;
  /** Most body bytes printed per message in verbose mode. */
  maxPrintedBody?: number;
}

const ESC = "\x1b[";
const paint = (on: boolean, code: string, s: string) => (on ? `${ESC}${code}m${s}${ESC}0m` : s);

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function millis(f: Flow): number | undefined {
  if (!f.startTime || !f.endTime) return undefined;
  return Number(f.endTime.seconds - f.startTime.seconds) * 1e3 + (f.endTime.nanos - f.startTime.nanos) / 1e6;
}

function clock(f: Flow): string {
  if (!f.startTime) return "--:--:--.---";
  const d = new Date(Number(f.startTime.seconds) * 1000 + Math.floor(f.startTime.nanos / 1e6));
  return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function statusColor(status: number): string {
  if (status >= 500) return "31"; // red
  if (status >= 400) return "33"; // yellow
  if (status >= 300) return "36"; // cyan
  return "32"; // green
}

/** The flow's URL as a user would type it. */
export function flowUrl(f: Flow): string {
  const r = f.request;
  if (!r) return "(request not seen)";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(r.path)) return r.path;
  const host = r.authority || (f.connection?.destination ? hostPort(f.connection.destination.ip, f.connection.destination.port) : "");
  const scheme = f.connection?.tls ? "https" : "http";
  return r.method === "CONNECT" ? r.path : `${scheme}://${host}${r.path}`;
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** A database flow's line: "redis GET greeting → "hello" 0.31 ms redis-cli[42] client". */
function formatDatabaseLine(f: Flow, color: boolean): string {
  const d = f.database!;
  const firstLine = (s: string, max: number) => {
    const line = s.split("\n", 1)[0]!;
    return line.length > max || s.includes("\n") ? `${line.slice(0, max)} …` : line;
  };
  const reply = d.error
    ? paint(color, "31", firstLine(`(error) ${d.error.code} ${d.error.message}`.replace(/\s+$/, ""), 80))
    : !d.replyType
      ? paint(color, "2", "(no reply)")
      : d.rows !== undefined
        ? `${d.rows} ${d.rows === 1n ? "element" : "elements"}`
        : firstLine(d.reply, 80);
  const { latency, who, role, missing } = lineTail(f, color);
  return `${paint(color, "2", clock(f))} ${paint(color, "1", d.system)} ${firstLine(d.statement || d.operation, 120)} → ${reply} ${latency} ${who} ${role}${missing}`;
}

/** What every flow's line ends with: latency, "container/comm[pid]", role, what is missing. */
function lineTail(f: Flow, color: boolean): { latency: string; who: string; role: string; missing: string } {
  const ms = millis(f);
  const latency = ms === undefined ? "" : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
  const c = f.connection;
  // A container's process: "name/comm[pid]" (the short id when the engine gave no name).
  const box = c?.container ? `${c.container.name || c.container.id.slice(0, 12)}/` : "";
  const who = paint(color, "35", c?.process ? `${box}${c.process.comm}[${c.process.pid}]` : "");
  const role = c?.role === Role.SERVER ? "server" : "client";
  const missing = f.missing?.reason ? paint(color, "2", ` (${f.missing.reason})`) : "";
  return { latency, who, role, missing };
}

export function formatFlowLine(f: Flow, color: boolean): string {
  if (f.database) return formatDatabaseLine(f, color);
  const g = f.grpc;
  const ws = f.protocol === Protocol.WEBSOCKET;
  const method = g ? "gRPC" : ws ? "WebSocket" : (f.request?.method ?? "?");
  const res = f.response;
  const status = f.open
    ? paint(color, "36", "(open)")
    : g
    ? g.status === undefined
      ? paint(color, "2", "(no grpc-status)")
      : paint(color, g.status === 0 ? "32" : "31", g.statusName + (g.statusMessage && g.statusMessage !== g.statusName ? `: ${g.statusMessage}` : ""))
    : res
      ? paint(color, statusColor(res.status), `${res.status} ${res.reason}`.trim())
      : paint(color, "2", "(no response)");
  const size = f.open
    ? ""
    : g
      ? `${g.requestMessages.length}→${g.responseMessages.length} msgs`
      : ws
        ? `${f.messages.length + f.messagesDropped} msgs`
        : res
          ? formatSize(Number(res.bodySize))
          : "-";
  const { latency, who, role, missing } = lineTail(f, color);
  const stream = f.http2 ? ` h2#${f.http2.streamId}` : "";
  return `${paint(color, "2", clock(f))} ${paint(color, "1", method)} ${flowUrl(f)} ${status} ${size} ${latency} ${who} ${role}${stream}${missing}`;
}

function printableBody(body: Uint8Array, max: number): string {
  const shown = body.subarray(0, max);
  let binary = 0;
  for (let i = 0; i < Math.min(shown.length, 512); i++) {
    const b = shown[i];
    if (b < 9 || (b > 13 && b < 32) || b === 127) binary++;
  }
  if (binary > 0) return `[${body.length} bytes of binary data]`;
  const text = new TextDecoder().decode(shown);
  return body.length > max ? `${text}\n[... ${body.length - max} more bytes]` : text;
}

function formatHeaders(headers: Header[], prefix: string): string {
  // A field whose name or value was in compression state tapwire never saw shows "?".
  return headers.map((h) => `${prefix}${h.nameUnknown ? "?" : h.name}: ${h.valueUnknown ? "?" : h.value}`).join("\n");
}

/** A gRPC message on one line: its JSON (by field number, or by name with a schema). */
function formatMessage(m: GrpcMessage, i: number, prefix: string): string {
  const what = m.error ? `(${m.error})` : m.json || `[${m.data.length} bytes]`;
  const flags = [m.compressed ? "compressed" : "", m.truncated ? "truncated" : "", m.type].filter(Boolean).join(", ");
  return `${prefix}message ${i + 1} (${m.size} B${flags ? `, ${flags}` : ""}): ${what}`;
}

/** A WebSocket message or a Server-Sent Event on one line, "> " from the client, "< " from the server. */
function formatFlowMessage(m: FlowMessage): string {
  const prefix = m.sender === Role.SERVER ? "< " : "> ";
  const v = m.message;
  if (v.case === "sse") return prefix + formatEvent(v.value, m.index);
  if (v.case !== "websocket") return `${prefix}message ${m.index + 1}`;
  const w = v.value;
  const flags = [w.fragments > 1 ? `${w.fragments} fragments` : "", w.compressed ? "compressed" : "", w.truncated ? "truncated" : ""].filter(Boolean).join(", ");
  const what = w.error
    ? `(${w.error})`
    : w.type === "text"
      ? JSON.stringify(w.text)
      : w.type === "close"
        ? `${w.closeCode || ""} ${JSON.stringify(w.closeReason)}`.trim()
        : `[${w.data.length} bytes]`;
  return `${prefix}${w.type} ${m.index + 1} (${w.size} B${flags ? `, ${flags}` : ""}): ${what}`;
}

/** A Server-Sent Event on one line. */
function formatEvent(e: SseEvent, i: number): string {
  const fields = [e.event ? `event ${e.event}` : "", e.id ? `id ${e.id}` : "", e.retry !== undefined ? `retry ${e.retry}` : "", e.truncated ? "truncated" : ""].filter(Boolean).join(", ");
  return `event ${i + 1}${fields ? ` (${fields})` : ""}: ${JSON.stringify(e.data)}`;
}

function formatMessages(messages: GrpcMessage[], prefix: string): string[] {
  return messages.map((m, i) => formatMessage(m, i, prefix));
}

export function formatFlowDetails(f: Flow, color: boolean, maxBody: number): string {
  const parts: string[] = [];
  const r = f.request;
  if (r) {
    parts.push(paint(color, "1", `> ${r.method} ${r.path} ${r.version}`));
    if (r.headers.length) parts.push(formatHeaders(r.headers, "> "));
    if (f.grpc) parts.push(...formatMessages(f.grpc.requestMessages, "> "));
    else if (r.body.length) parts.push(printableBody(r.body, maxBody));
    if (r.bodyTruncated) parts.push(paint(color, "2", `[body: ${r.body.length} of ${r.bodySize} bytes kept]`));
    if (r.trailers.length) parts.push(formatHeaders(r.trailers, "> "));
  }
  const s = f.response;
  if (s) {
    parts.push(paint(color, "1", `< ${s.version} ${s.status} ${s.reason}`.trimEnd()));
    if (s.headers.length) parts.push(formatHeaders(s.headers, "< "));
    if (f.grpc) parts.push(...formatMessages(f.grpc.responseMessages, "< "));
    else if (s.body.length) parts.push(printableBody(s.body, maxBody));
    if (s.bodyTruncated) parts.push(paint(color, "2", `[body: ${s.body.length} of ${s.bodySize} bytes kept]`));
    if (s.trailers.length) parts.push(formatHeaders(s.trailers, "< "));
  }
  if (f.database) {
    parts.push(paint(color, "1", `> ${f.database.statement}`));
    if (f.database.replyType) parts.push(f.database.reply.split("\n").map((l) => `< ${l}`).join("\n") + (f.database.replyTruncated ? "\n< …" : ""));
  }
  for (const m of f.messages) parts.push(formatFlowMessage(m));
  if (f.messagesDropped) parts.push(paint(color, "2", `[${f.messagesDropped} more messages, past the stream budget]`));
  const c = f.connection;
  if (c?.source && c.destination) {
    parts.push(paint(color, "2", `conn ${c.id} ${hostPort(c.source.ip, c.source.port)} -> ${hostPort(c.destination.ip, c.destination.port)} exe ${c.process?.exe || "?"}`));
  }
  return parts.join("\n");
}

/** How long a flow must stay open before it gets its own line. */
export const OPEN_LINE_AFTER_MS = 300;
/** Open flows watched for that at once, and messages kept for one until it is shown. */
const MAX_WATCHED = 10_000;
const MAX_HELD_MESSAGES = 100;

interface OpenFlow {
  flow: Flow;
  since: number;
  shown: boolean;
  held: FlowMessage[];
}

export function createTerminalSink(out: OutputWriter, opts: TerminalOptions & { now?: () => number }): FlowSink {
  const maxBody = opts.maxPrintedBody ?? 4096;
  const now = opts.now ?? Date.now;
  const open = new Map<string, OpenFlow>();
  const messageLines = (call: OpenFlow, messages: FlowMessage[]) => {
    let text = "";
    const tag = call.flow.http2 ? `h2#${call.flow.http2.streamId} ` : "";
    for (const m of messages) {
      const prefix = m.sender === Role.SERVER ? "< " : "> ";
      if (m.message.case === "grpc") text += paint(opts.color, "2", `  ${tag}`) + formatMessage(m.message.value, m.index, prefix) + "\n";
      else text += `  ${formatFlowMessage(m)}\n`;
    }
    return text;
  };
  const show = (call: OpenFlow) => {
    call.shown = true;
    let text = formatFlowLine(call.flow, opts.color) + "\n";
    if (opts.verbose) text += messageLines(call, call.held);
    call.held = [];
    out.write(text);
  };
  return {
    flow(f) {
      open.delete(f.id);
      let text = formatFlowLine(f, opts.color) + "\n";
      if (opts.verbose) text += formatFlowDetails(f, opts.color, maxBody) + "\n\n";
      out.write(text);
    },
    started(f) {
      // Any flow that starts (HTTP/2 streams, gRPC calls, event streams, WebSocket): the ones
      // still open after a moment get their line.
      if (open.size >= MAX_WATCHED) return;
      open.set(f.id, { flow: f, since: now(), shown: false, held: [] });
    },
    messages(flowId, messages) {
      const call = open.get(flowId);
      if (!call || !opts.verbose) return;
      if (call.shown) out.write(messageLines(call, messages));
      else if (call.held.length < MAX_HELD_MESSAGES) call.held.push(...messages.slice(0, MAX_HELD_MESSAGES - call.held.length));
    },
    tick(t) {
      for (const call of open.values()) if (!call.shown && t - call.since >= OPEN_LINE_AFTER_MS) show(call);
    },
    flush: () => out.flush(),
  };
}
