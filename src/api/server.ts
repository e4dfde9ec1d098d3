// The API's server: TapwireService over Connect, gRPC and gRPC-Web on one port, HTTP/1.1 and
// HTTP/2 — in cleartext told apart by the client preface, over TLS by ALPN. Every request
// passes the request guard (Host and Origin: request-guard.ts) and, when a token is set, the
// bearer check (compared in constant time).
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { createHash, timingSafeEqual } from "node:crypto";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Code, ConnectError, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { TapwireService } from "../gen/tapwire/v1/service_pb.ts";
import { startsWithH2Preface } from "../protocols/sniff.ts";
import { createRequestGuard } from "./request-guard.ts";

export interface ApiServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** Required as "Authorization: Bearer TOKEN" when not empty. */
  token: string;
  /** Host names besides loopback's that requests may name (request-guard.ts). */
  allowHosts?: string[];
  tls?: { cert: Uint8Array; key: Uint8Array };
  service: ServiceImpl<typeof TapwireService>;
  /** Plain HTTP endpoints beside the API (the web page, HAR), by exact path. They pass the
   *  same Host/Origin guard; each checks the token itself where it exposes flows. */
  pages?: Record<string, PageHandler>;
}

/** `authorized`: the request carried the token (always true when none is set). */
export type PageHandler = (req: http.IncomingMessage, res: http.ServerResponse, ctx: { authorized: boolean; url: URL }) => void;

export interface ApiServer {
  /** Where it listens (the port it got, when asked for 0). */
  readonly address: { ip: string; port: number; family: "IPv4" | "IPv6" };
  close(): void;
}

/** The address could not be listened on (in use, not ours): the user's to fix. */
export class ListenError extends Error {}

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const connect = connectNodeAdapter({
    interceptors: opts.token ? [bearer(opts.token)] : [],
    routes(router) {
      router.service(TapwireService, opts.service);
    },
  });
  // The port is known once listening (it may be 0): the guard is made at the first request.
  let refuse: ((headers: http.IncomingHttpHeaders) => string | undefined) | undefined;
  const handler: Handler = (req, res) => {
    refuse ??= createRequestGuard({ host: opts.host, port: (server.address() as net.AddressInfo).port, tls: !!opts.tls, allowHosts: opts.allowHosts });
    const why = refuse(req.headers);
    if (why) {
      const r = res as http.ServerResponse;
      r.writeHead(403, { "content-type": "text/plain" });
      r.end(`${why}\n`);
      return;
    }
    const url = new URL(req.url ?? "/", "http://tapwire");
    const page = opts.pages?.[url.pathname];
    if (page && (req.method === "GET" || req.method === "HEAD")) {
      page(req as http.IncomingMessage, res as http.ServerResponse, { authorized: !opts.token || tokenMatches(req.headers.authorization, opts.token), url });
      return;
    }
    connect(req as http.IncomingMessage, res as http.ServerResponse);
  };
  const server = opts.tls ? (http2.createSecureServer({ cert: Buffer.from(opts.tls.cert), key: Buffer.from(opts.tls.key), allowHTTP1: true }, handler) as unknown as net.Server) : cleartextServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => reject(new ListenError(`${opts.host}:${opts.port}: ${e.code === "EADDRINUSE" ? "the address is in use" : e.code === "EACCES" ? "permission denied" : (e.code ?? e.message)}`)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    address: { ip: address.address, port: address.port, family: address.family === "IPv6" ? "IPv6" : "IPv4" },
    close: () => void server.close(),
  };
}

/** One port for both HTTP versions: a connection that opens with the preface is HTTP/2. */
function cleartextServer(handler: Handler): net.Server {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer({}, handler);
  return net.createServer((socket) => {
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      (startsWithH2Preface(first, 1) ? h2 : h1).emit("connection", socket);
      socket.resume();
    });
    socket.on("error", () => socket.destroy());
  });
}

/** Bearer tokens compared in constant time (digests of equal length). */
function tokenMatches(authorization: string | undefined | null, token: string): boolean {
  const got = /^Bearer (.+)$/.exec(authorization ?? "")?.[1] ?? "";
  return timingSafeEqual(createHash("sha256").update(got).digest(), createHash("sha256").update(token).digest());
}

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    if (!tokenMatches(req.header.get("authorization"), token)) throw new ConnectError("a valid bearer token is required", Code.Unauthenticated);
    return await next(req);
  };
}
