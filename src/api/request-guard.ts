// Which HTTP requests the API answers: those addressed to it, from it. Any web page the user
// opens can reach 127.0.0.1 too — by a DNS name that resolves there (rebinding) or with a
// cross-origin request — and the API exposes every flow of the host. So on a loopback
// listener the Host (HTTP/2: :authority) must name this server: a loopback name or address
// with its port; and an Origin, which browsers send with cross-origin and POST requests, must
// be the request's own (scheme and host). Programs (gRPC and Connect clients, curl) send no
// Origin and a Host that names the server: they pass.
import type { IncomingHttpHeaders } from "node:http";
import { isLoopback } from "./listen-address.ts";

export interface Listening {
  host: string;
  port: number;
  tls: boolean;
  /** More names the server may be addressed by (--allow-host): a proxy's, a hosts-file alias. */
  allowHosts?: string[];
}

/** A function that says why a request is refused, or undefined when it may be answered. */
export function createRequestGuard(listen: Listening): (headers: IncomingHttpHeaders) => string | undefined {
  const loopbackOnly = isLoopback(listen.host);
  const names = new Set(["localhost", "127.0.0.1", "[::1]", listen.host.includes(":") ? `[${listen.host}]` : listen.host, ...(listen.allowHosts ?? [])]);
  return (headers) => {
    const host = String(headers[":authority"] ?? headers.host ?? "").toLowerCase();
    if (loopbackOnly) {
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
      const port = m?.[2] ? Number(m[2]) : listen.tls ? 443 : 80;
      if (!m || !(names.has(m[1]!) || /^127\.\d+\.\d+\.\d+$/.test(m[1]!)) || port !== listen.port) {
        return `Host "${host}" is not this server (a page reaching 127.0.0.1 by another name is refused)`;
      }
    }
    const origin = headers.origin;
    if (origin !== undefined && origin.toLowerCase() !== `${listen.tls ? "https" : "http"}://${host}`) {
      return `Origin "${origin}" is not this server (cross-origin requests are refused)`;
    }
    return undefined;
  };
}
