// gRPC's length-prefixed messages read as their bytes arrive, one side of one stream: each
// message comes out as soon as its last byte is in. Its length is read from the prefix
// before anything is allocated, and at most `maxBytes` of it are kept (the rest counted):
// a peer announcing a 4 GB message costs `maxBytes`, not 4 GB. Plain data out.
import { wireMessage, type GrpcWireMessage } from "./messages.ts";

export interface EnvelopeReader {
  /** The messages that `bytes` completed, in order (`bytes` is only read during the call). */
  push(bytes: Uint8Array): GrpcWireMessage[];
  /** Messages completed so far. */
  readonly count: number;
  /** The message being read when its stream ended, cut (undefined when none had begun). */
  rest(): GrpcWireMessage | undefined;
}

export function createEnvelopeReader(encoding: string, maxBytes: number): EnvelopeReader {
  const prefix = new Uint8Array(5);
  let prefixHave = 0;
  /** Of the message being read: its length, what is kept of it, and how much has arrived. */
  let size = 0;
  let kept: Uint8Array | undefined;
  let arrived = 0;
  let count = 0;

  const finish = (out: GrpcWireMessage[]) => {
    const body = kept!.subarray(0, Math.min(arrived, kept!.length));
    // A message longer than what is kept is cut: what was kept is not the whole message.
    out.push(wireMessage(prefix[0] === 1, size, body, arrived > body.length, encoding, maxBytes));
    count++;
    prefixHave = 0;
    kept = undefined;
  };

  return {
    get count() {
      return count;
    },
    rest() {
      if (prefixHave < 5 || !kept) return undefined;
      return wireMessage(prefix[0] === 1, size, kept.subarray(0, Math.min(arrived, kept.length)), true, encoding, maxBytes);
    },
    push(bytes) {
      const out: GrpcWireMessage[] = [];
      let at = 0;
      while (at < bytes.length) {
        if (prefixHave < 5) {
          const n = Math.min(5 - prefixHave, bytes.length - at);
          prefix.set(bytes.subarray(at, at + n), prefixHave);
          prefixHave += n;
          at += n;
          if (prefixHave < 5) break;
          size = ((prefix[1]! << 24) | (prefix[2]! << 16) | (prefix[3]! << 8) | prefix[4]!) >>> 0;
          kept = new Uint8Array(Math.min(size, maxBytes));
          arrived = 0;
          if (size === 0) {
            finish(out);
            continue;
          }
        }
        const n = Math.min(size - arrived, bytes.length - at);
        const room = kept!.length - arrived;
        if (room > 0) kept!.set(bytes.subarray(at, at + Math.min(n, room)), arrived);
        arrived += n;
        at += n;
        if (arrived === size) finish(out);
      }
      return out;
    },
  };
}
