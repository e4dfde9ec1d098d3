// WebSocket messages from frames (RFC 6455): a data message is its first frame (text or
// binary) and its continuations up to FIN; control frames (close, ping, pong) stand alone and
// may come between fragments. With permessage-deflate (RFC 7692) a message whose first frame
// has RSV1 set is decompressed: the compressor's window carries over from message to message
// unless "no context takeover" was agreed, so the last 32 KiB of what each message
// decompressed to are the dictionary of the next. Plain data out.
import { constants, inflateRawSync } from "node:zlib";
import type { WsFrame } from "./frames.ts";

export interface WsMessage {
  /** "text", "binary", "close", "ping", "pong", or "opcode N" for another. */
  type: string;
  /** The payload as the application sees it (for text, its UTF-8); at most `maxBytes`. */
  data: Uint8Array;
  /** Its payload's length on the wire, all fragments together. */
  size: number;
  fragments: number;
  compressed: boolean;
  truncated: boolean;
  closeCode: number;
  closeReason: string;
  /** Why the payload could not be read (decompression), "" when it could. */
  error: string;
}

export interface MessageAssembler {
  /** The message this frame completed, if any. */
  frame(f: WsFrame): WsMessage | undefined;
}

const TYPES: Record<number, string> = { 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong" };
const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);
const textDecoder = new TextDecoder();
const WINDOW = 32 * 1024;
/** Compressed payload kept to be decompressed, at most (the frame reader keeps as much). */
export const DEFAULT_MAX_COMPRESSED = 1 << 20;

/**
 * `maxBytes`: data kept per message; `deflate`: permessage-deflate was agreed, and whether this
 * direction's sender keeps its context; compressed payloads are kept up to `maxCompressed` to
 * be decompressed (to at most `maxInflate` bytes), longer ones are not decompressed.
 */
export function createMessageAssembler(opts: { maxBytes: number; deflate?: { contextTakeover: boolean }; maxCompressed?: number; maxInflate?: number }): MessageAssembler {
  const maxInflate = Math.max(opts.maxInflate ?? 16 << 20, opts.maxBytes);
  const maxCompressed = opts.maxCompressed ?? DEFAULT_MAX_COMPRESSED;
  /** The data message in progress. */
  let current: { opcode: number; parts: Uint8Array[]; kept: number; size: number; fragments: number; compressed: boolean; cut: boolean } | undefined;
  let window: Uint8Array = new Uint8Array(0);
  /** The compressor's history is no longer known (a message not decompressed whole). */
  let contextLost = false;

  function complete(opcode: number, payload: Uint8Array, size: number, fragments: number, compressed: boolean, cut: boolean): WsMessage {
    let data = payload;
    let error = "";
    let truncated = cut;
    if (compressed) {
      if (cut) {
        error = "compressed message longer than kept: not decompressed";
        contextLost = true;
      } else if (contextLost && opts.deflate?.contextTakeover) {
        error = "an earlier message was not decompressed whole: the compression context is lost";
      } else {
        try {
          const input = new Uint8Array(payload.length + 4);
          input.set(payload);
          input.set(TAIL, payload.length);
          const takeover = opts.deflate?.contextTakeover ?? false;
          const out = new Uint8Array(inflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: maxInflate, ...(takeover && window.length ? { dictionary: window } : {}) }));
          if (takeover) {
            const joined = new Uint8Array(Math.min(WINDOW, window.length + out.length));
            const fromWindow = joined.length - Math.min(out.length, joined.length);
            joined.set(window.subarray(window.length - fromWindow), 0);
            joined.set(out.subarray(out.length - (joined.length - fromWindow)), fromWindow);
            window = joined;
          }
          data = out.length > opts.maxBytes ? out.slice(0, opts.maxBytes) : out;
          truncated = out.length > opts.maxBytes;
        } catch (e) {
          error = `permessage-deflate: ${(e as Error).message}`;
          contextLost = true;
        }
      }
    }
    let closeCode = 0;
    let closeReason = "";
    if (opcode === 8 && data.length >= 2) {
      closeCode = (data[0]! << 8) | data[1]!;
      closeReason = textDecoder.decode(data.subarray(2));
    }
    return { type: TYPES[opcode] ?? `opcode ${opcode}`, data, size, fragments, compressed, truncated, closeCode, closeReason, error };
  }

  return {
    frame(f) {
      if (f.opcode >= 8) return complete(f.opcode, f.payload, f.size, 1, false, f.payload.length < f.size);
      if (f.opcode !== 0 || !current) {
        // A new data message (a continuation without a start begins one of unknown type).
        current = { opcode: f.opcode, parts: [], kept: 0, size: 0, fragments: 0, compressed: f.rsv1 && !!opts.deflate, cut: false };
      }
      const c = current;
      c.fragments++;
      c.size += f.size;
      if (f.payload.length < f.size) c.cut = true;
      const room = (c.compressed ? maxCompressed : opts.maxBytes) - c.kept;
      if (room > 0 && f.payload.length) {
        // A cut payload is copied: a view would keep the whole frame's buffer alive.
        const part = f.payload.length <= room ? f.payload : f.payload.slice(0, room);
        c.parts.push(part);
        c.kept += part.length;
        if (part.length < f.payload.length) c.cut = true;
      } else if (f.payload.length) c.cut = true;
      if (!f.fin) return undefined;
      current = undefined;
      const payload = c.parts.length === 1 ? c.parts[0]! : Buffer.concat(c.parts, c.kept);
      return complete(c.opcode, payload, c.size, c.fragments, c.compressed, c.cut);
    },
  };
}
