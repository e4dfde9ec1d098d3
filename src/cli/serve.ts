// `tapwire serve`: capture, keep a bounded history, and serve TapwireService over Connect,
// gRPC and gRPC-Web on one port — HTTP/1.1 and HTTP/2 (cleartext: told apart by the client
// preface; TLS: by ALPN). Loopback by default; a token is required elsewhere unless the
// user says --insecure. The port answers from the start; until capture is attached calls get
// `unavailable`. tapwire's own connections (its API clients, the Trayce push) are not
// captured from either end.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { TapwireService } from "../gen/tapwire/v1/service_pb.ts";
import { createFlowStore } from "../flows/flow-store.ts";
import { createFlowBroadcast } from "../flows/flow-broadcast.ts";
import { tapwireService } from "../api/tapwire-service.ts";
import { connectTrayce, type TrayceLink } from "../api/trayce.ts";
import { createRequestGuard } from "../api/request-guard.ts";
import { UsageError, type ServeArgs } from "./args.ts";
import { startCapture, type CaptureEngine } from "./engine.ts";
import { stopSignal } from "./signals.ts";
import { fileError } from "./file-errors.ts";
import pkg from "../../package.json" with { type: "json" };

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export async function serve(args: ServeArgs): Promise<number> {
  const stop = stopSignal();
  const store = createFlowStore({ maxFlows: args.historyFlows, maxBytes: args.historyBytes });
  const broadcast = createFlowBroadcast();
  let engine: CaptureEngine | undefined;
  let trayce: TrayceLink | undefined;
  const features = ["http1", "http2", "grpc", ...(args.tls ? ["tls"] : []), ...(args.redact.length ? ["redact"] : [])];
  const running = () => {
    if (!engine) throw new ConnectError("tapwire is starting: capture is not attached yet, try again in a moment", Code.Unavailable);
    return engine;
  };
  const connect = connectNodeAdapter({
    interceptors: args.token ? [bearer(args.token)] : [],
    routes(router) {
      router.service(TapwireService, tapwireService({ version: pkg.version, engine: running, store, broadcast, ports: args.ports, features, trayce: () => trayce?.stats }));
    },
  });
  // The port is known once listening (it may be 0): the guard reads it then.
  let refuse: ((headers: http.IncomingHttpHeaders) => string | undefined) | undefined;
  const handler: Handler = (req, res) => {
    const why = refuse?.(req.headers);
    if (why) {
      const r = res as http.ServerResponse;
      r.writeHead(403, { "content-type": "text/plain" });
      r.end(`${why}\n`);
      return;
    }
    connect(req as http.IncomingMessage, res as http.ServerResponse);
  };
  const server = args.tlsCert ? secureServer(args, handler) : cleartextServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => reject(new UsageError(`--listen ${args.host}:${args.port}: ${e.code ?? e.message}`)));
    server.listen(args.port, args.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  refuse = createRequestGuard({ host: args.host, port: address.port, tls: !!args.tlsCert });

  try {
    engine = await startCapture({ ...args, selfListeners: [{ ip: address.address, port: address.port }] }, {
      onFlow(flow) {
        store.add(flow);
        broadcast.publish(flow);
        trayce?.send(flow);
      },
    });
  } catch (e) {
    server.close();
    throw e;
  }
  // Connected once capture is attached: its connection is then known as tapwire's own.
  trayce = args.trayce
    ? connectTrayce({
        address: args.trayce,
        version: pkg.version,
        log: (l) => process.stderr.write(l + "\n"),
        containers: () => engine?.containers.running() ?? [],
        batchBytes: args.trayceBatchBytes,
      })
    : undefined;
  const scheme = args.tlsCert ? "https" : "http";
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  process.stderr.write(`${engine.readyLine}; serving ${scheme}://${host}:${address.port}${args.token ? " (token required)" : ""}\n`);
  await stop.signalled;
  server.close();
  trayce?.close();
  const summary = await engine.stop();
  const t = trayce?.stats;
  process.stderr.write(summary + (t ? `; trayce: ${t.sent} flows sent, ${t.dropped} dropped (queue full), ${t.refused} refused by the GUI, ${t.truncated} cut to fit` : "") + "\n");
  return 0;
}

/** One port for both HTTP versions: a connection that opens with the preface is HTTP/2. */
function cleartextServer(handler: Handler): net.Server {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer({}, handler);
  return net.createServer((socket) => {
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const n = Math.min(first.length, PREFACE.length);
      (first.subarray(0, n).equals(PREFACE.subarray(0, n)) ? h2 : h1).emit("connection", socket);
      socket.resume();
    });
    socket.on("error", () => socket.destroy());
  });
}

function secureServer(args: ServeArgs, handler: Handler): net.Server {
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`${flag} ${fileError(path, e)}`);
    }
  };
  const cert = read("--tls-cert", args.tlsCert);
  const key = read("--tls-key", args.tlsKey);
  return http2.createSecureServer({ cert, key, allowHTTP1: true }, handler) as unknown as net.Server;
}

/** Bearer tokens compared in constant time (digests of equal length). */
function bearer(token: string): Interceptor {
  const want = createHash("sha256").update(token).digest();
  return (next) => async (req) => {
    const got = /^Bearer (.+)$/.exec(req.header.get("authorization") ?? "")?.[1] ?? "";
    if (!timingSafeEqual(createHash("sha256").update(got).digest(), want)) throw new ConnectError("a valid bearer token is required", Code.Unauthenticated);
    return await next(req);
  };
}
