// The terminal view: one readable line per flow, and with `verbose` its headers and bodies.
import { Role, type Flow, type GrpcMessage, type Header } from "../gen/tapwire/v1/flow_pb.ts";
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

export function formatFlowLine(f: Flow, color: boolean): string {
  const g = f.grpc;
  const method = g ? "gRPC" : (f.request?.method ?? "?");
  const res = f.response;
  const status = g
    ? g.status === undefined
      ? paint(color, "2", "(no grpc-status)")
      : paint(color, g.status === 0 ? "32" : "31", g.statusName + (g.statusMessage && g.statusMessage !== g.statusName ? `: ${g.statusMessage}` : ""))
    : res
      ? paint(color, statusColor(res.status), `${res.status} ${res.reason}`.trim())
      : paint(color, "2", "(no response)");
  const size = g ? `${g.requestMessages.length}→${g.responseMessages.length} msgs` : res ? formatSize(Number(res.bodySize)) : "-";
  const ms = millis(f);
  const latency = ms === undefined ? "" : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
  const c = f.connection;
  // A container's process: "name/comm[pid]" (the short id when the engine gave no name).
  const box = c?.container ? `${c.container.name || c.container.id.slice(0, 12)}/` : "";
  const who = c?.process ? `${box}${c.process.comm}[${c.process.pid}]` : "";
  const role = c?.role === Role.SERVER ? "server" : "client";
  const missing = f.missing?.reason ? paint(color, "2", ` (${f.missing.reason})`) : "";
  const stream = f.http2 ? ` h2#${f.http2.streamId}` : "";
  return `${paint(color, "2", clock(f))} ${paint(color, "1", method)} ${flowUrl(f)} ${status} ${size} ${latency} ${paint(color, "35", who)} ${role}${stream}${missing}`;
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

/** gRPC messages, one line each: its JSON (by field number, or by name with a schema). */
function formatMessages(messages: GrpcMessage[], prefix: string): string[] {
  return messages.map((m, i) => {
    const what = m.error ? `(${m.error})` : m.json || `[${m.data.length} bytes]`;
    const flags = [m.compressed ? "compressed" : "", m.truncated ? "truncated" : "", m.type].filter(Boolean).join(", ");
    return `${prefix}message ${i + 1} (${m.size} B${flags ? `, ${flags}` : ""}): ${what}`;
  });
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
  const c = f.connection;
  if (c?.source && c.destination) {
    parts.push(paint(color, "2", `conn ${c.id} ${hostPort(c.source.ip, c.source.port)} -> ${hostPort(c.destination.ip, c.destination.port)} exe ${c.process?.exe || "?"}`));
  }
  return parts.join("\n");
}

export function createTerminalSink(out: OutputWriter, opts: TerminalOptions): FlowSink {
  const maxBody = opts.maxPrintedBody ?? 4096;
  return {
    flow(f) {
      let text = formatFlowLine(f, opts.color) + "\n";
      if (opts.verbose) text += formatFlowDetails(f, opts.color, maxBody) + "\n\n";
      out.write(text);
    },
    flush: () => out.flush(),
  };
}
