// WebSocket frames (RFC 6455, section 5.2) read from one direction of a connection as its
// bytes arrive: FIN, RSV1 (permessage-deflate's "compressed"), the opcode, the payload length
// (7, 16 or 64 bits) and the client's masking key, then the payload, unmasked. At most
// `maxBytes` of a payload are kept — the length is read before anything is allocated, and the
// rest is counted. Plain data out.

export interface WsFrame {
  fin: boolean;
  /** RSV1: with permessage-deflate, the message (its first frame says) is compressed. */
  rsv1: boolean;
  opcode: number;
  /** The payload's length on the wire. */
  size: number;
  /** The payload, unmasked; its first `maxBytes` bytes. */
  payload: Uint8Array;
}

export interface FrameReader {
  /** The frames `bytes` completed, in order (`bytes` is only read during the call). */
  push(bytes: Uint8Array): WsFrame[];
  /** A length that no frame can have was read: the stream is not WebSocket frames (anymore). */
  readonly broken: boolean;
}

export function createFrameReader(maxBytes: number): FrameReader {
  const head = new Uint8Array(14);
  let headHave = 0;
  /** Header bytes this frame needs (2, then more once the second byte is in). */
  let headNeed = 2;
  let size = 0;
  let arrived = 0;
  let payload: Uint8Array | undefined;
  let mask: Uint8Array | undefined;
  let broken = false;

  const headerLength = () => {
    const len7 = head[1]! & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (head[1]! & 0x80 ? 4 : 0);
  };

  const finishHeader = (): boolean => {
    const len7 = head[1]! & 0x7f;
    let at = 2;
    if (len7 === 126) {
      size = (head[2]! << 8) | head[3]!;
      at = 4;
    } else if (len7 === 127) {
      const hi = ((head[2]! << 24) | (head[3]! << 16) | (head[4]! << 8) | head[5]!) >>> 0;
      const lo = ((head[6]! << 24) | (head[7]! << 16) | (head[8]! << 8) | head[9]!) >>> 0;
      // The most significant bit must be 0; lengths past 2^53 are not frames anyone sends.
      if (hi >= 0x200000) return false;
      size = hi * 0x100000000 + lo;
      at = 10;
    } else size = len7;
    mask = head[1]! & 0x80 ? head.slice(at, at + 4) : undefined;
    payload = new Uint8Array(Math.min(size, maxBytes));
    arrived = 0;
    return true;
  };

  const frame = (): WsFrame => {
    const f = { fin: (head[0]! & 0x80) !== 0, rsv1: (head[0]! & 0x40) !== 0, opcode: head[0]! & 0x0f, size, payload: payload! };
    headHave = 0;
    headNeed = 2;
    payload = undefined;
    return f;
  };

  return {
    get broken() {
      return broken;
    },
    push(bytes) {
      const out: WsFrame[] = [];
      let at = 0;
      while (at < bytes.length && !broken) {
        if (!payload) {
          const n = Math.min(headNeed - headHave, bytes.length - at);
          head.set(bytes.subarray(at, at + n), headHave);
          headHave += n;
          at += n;
          if (headHave < headNeed) break;
          if (headNeed === 2 && headerLength() > 2) {
            headNeed = headerLength();
            continue;
          }
          if (!finishHeader()) {
            broken = true;
            break;
          }
          if (size === 0) {
            out.push(frame());
            continue;
          }
        }
        const n = Math.min(size - arrived, bytes.length - at);
        const room = payload!.length - arrived;
        if (room > 0) {
          const take = Math.min(n, room);
          if (mask) {
            for (let i = 0; i < take; i++) payload![arrived + i] = bytes[at + i]! ^ mask[(arrived + i) & 3]!;
          } else payload!.set(bytes.subarray(at, at + take), arrived);
        }
        arrived += n;
        at += n;
        if (arrived === size) out.push(frame());
      }
      return out;
    },
  };
}
