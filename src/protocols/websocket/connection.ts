// Both directions of a WebSocket connection after its upgrade: frames into messages, with the
// permessage-deflate the 101 response agreed on (RFC 7692: its Sec-WebSocket-Extensions
// value, and which side keeps its compression context). Plain data out.
import { createFrameReader, type FrameReader } from "./frames.ts";
import { createMessageAssembler, DEFAULT_MAX_COMPRESSED, type MessageAssembler, type WsMessage } from "./messages.ts";

export interface WebSocketConnection {
  /** The messages `bytes` (from the client, or from the server) completed. */
  push(fromClient: boolean, bytes: Uint8Array): WsMessage[];
  /** Bytes of one direction were lost: its frames can no longer be found; it is not read on. */
  lose(fromClient: boolean): void;
  /** A close frame went each way: the connection is over. */
  readonly closed: boolean;
  /** A direction stopped being read (lost bytes, or what cannot be a frame). */
  readonly unreadable: boolean;
}

/** What permessage-deflate a Sec-WebSocket-Extensions response value agreed on, if any. */
export function permessageDeflate(extensions: string): { clientContextTakeover: boolean; serverContextTakeover: boolean } | undefined {
  for (const ext of extensions.split(",")) {
    const [name, ...params] = ext.split(";").map((p) => p.trim().toLowerCase());
    if (name !== "permessage-deflate") continue;
    const names = params.map((p) => p.split("=")[0]!.trim());
    return { clientContextTakeover: !names.includes("client_no_context_takeover"), serverContextTakeover: !names.includes("server_no_context_takeover") };
  }
  return undefined;
}

/** `joined`: the upgrade was not seen, so permessage-deflate is assumed, with context
 * takeover — the frames' RSV1 bit says which messages are compressed, and a message that
 * refers to history from before the join fails to decompress (zlib checks every distance),
 * said on the message, never read wrong. */
export function createWebSocketConnection(opts: { extensions: string; maxBytes: number; joined?: boolean }): WebSocketConnection {
  const deflate = opts.joined ? { clientContextTakeover: true, serverContextTakeover: true } : permessageDeflate(opts.extensions);
  const frameBound = Math.max(opts.maxBytes, DEFAULT_MAX_COMPRESSED);
  const side = (contextTakeover: boolean) => ({
    frames: createFrameReader(frameBound) as FrameReader,
    messages: createMessageAssembler({ maxBytes: opts.maxBytes, deflate: deflate && { contextTakeover }, maxCompressed: frameBound }) as MessageAssembler,
    closed: false,
    lost: false,
  });
  const client = side(deflate?.clientContextTakeover ?? false);
  const server = side(deflate?.serverContextTakeover ?? false);
  return {
    push(fromClient, bytes) {
      const s = fromClient ? client : server;
      if (s.lost) return [];
      const out: WsMessage[] = [];
      for (const f of s.frames.push(bytes)) {
        const m = s.messages.frame(f);
        if (!m) continue;
        if (m.type === "close") s.closed = true;
        out.push(m);
      }
      return out;
    },
    lose(fromClient) {
      (fromClient ? client : server).lost = true;
    },
    get closed() {
      return client.closed && server.closed;
    },
    get unreadable() {
      return client.lost || server.lost || client.frames.broken || server.frames.broken;
    },
  };
}
