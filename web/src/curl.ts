// "Copy as curl": a command that sends the flow's request again.
import { Protocol, type Flow } from "../../src/gen/tapwire/v1/flow_pb.ts";
import { urlOf } from "./flow-row.ts";

/** POSIX shell quoting: single quotes, with ' written as '\''. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// Set by curl itself, or meaningless on a new connection.
const SKIPPED = new Set(["content-length", "host", "connection", "transfer-encoding", "te", "upgrade", "keep-alive", "proxy-connection", "http2-settings"]);

export function curlCommand(f: Flow): string {
  const req = f.request;
  if (!req) return "";
  const parts = ["curl"];
  if (f.protocol === Protocol.HTTP2 || f.protocol === Protocol.GRPC) parts.push(f.connection?.tls ? "--http2" : "--http2-prior-knowledge");
  if (req.method && req.method !== "GET" && !(req.method === "POST" && req.body.length)) parts.push("-X", shellQuote(req.method));
  parts.push(shellQuote(urlOf(f)));
  for (const h of req.headers) {
    if (h.name.startsWith(":") || SKIPPED.has(h.name.toLowerCase()) || h.nameUnknown) continue;
    parts.push("-H", shellQuote(`${h.name}: ${h.value}`));
  }
  if (req.body.length) {
    const text = new TextDecoder("utf-8", { fatal: true });
    let body: string | undefined;
    try {
      body = text.decode(req.body);
    } catch {}
    // Binary bodies go through printf, byte by byte, so the command stays one line of text.
    if (body !== undefined && !/[\0\r]/.test(body)) parts.push("--data-binary", shellQuote(body));
    else parts.push("--data-binary", `@<(printf '${[...req.body].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("")}')`);
    if (req.method === "POST" && req.body.length && !req.headers.some((h) => h.name.toLowerCase() === "content-type")) parts.push("-H", shellQuote("Content-Type:"));
  }
  if (req.bodyTruncated) parts.push("# the body was cut short when captured");
  return parts.join(" ");
}
